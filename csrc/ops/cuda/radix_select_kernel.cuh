// The kernel of softsign::radix_select_histogram for CUDA devices (Note [radix selection]):
// one pass's digit histogram of d = momentum_direction(g, buf), one chunked multi-tensor
// launch per dtype. Device code under nvcc (radix_select_kernel.cu registers it) and host
// code for the cuda_host tests (device_api.cuh). Internal linkage, as in
// soft_sign_step_kernel.cuh.
#pragma once

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#include <array>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "device_api.cuh"
#include "device_scalar.cuh"
#include "dtype_buckets.h"
#include "multi_tensor.cuh"
#include "radix_select.h"
#include "radix_select_check.h"
#include "soft_sign_step.h"

#if defined(__CUDACC__)
#include <c10/cuda/CUDAGuard.h>
#endif

namespace softsign::ops {
namespace {

namespace mt = multi_tensor;

constexpr int kDigitBits = 8;
constexpr int kBins = (1 << kDigitBits) + 1;  // the digit bins, then the NaN count
constexpr int kWarps = mt::kBlockSize / 32;
static_assert(mt::kBlockSize >= kBins, "the merge gives each bin its own thread");

template <typename scalar_t, bool kBuf>
struct HistogramOp {
  using opmath_t = at::opmath_type<scalar_t>;
  static constexpr int kDepth = kBuf ? 2 : 1;
  using VecT = mt::Vec<scalar_t, mt::kILP>;

  StepScalars s;
  radix::PassSpec spec;
  const int64_t* state;
  DeviceScalar grad_scale;
  unsigned long long* hist;

  using Counts = unsigned[kWarps][kBins];

  struct Ctx {
    uint64_t prefix;
    double mu;
    opmath_t scale;
    bool scaled;
    unsigned* h;  // this warp's private histogram
  };

  // The same element math as the step kernels, so the selected statistic is that of the d
  // they will apply; the buffer is only read (its update is the step's job).
  __device__ __forceinline__ void count(const Ctx& c, scalar_t g_in, scalar_t b_in) const {
    opmath_t g = static_cast<opmath_t>(g_in);
    if (c.scaled) g = g / c.scale;
    if (s.maximize) g = -g;
    opmath_t buf = kBuf ? static_cast<opmath_t>(b_in) : opmath_t(0);
    const opmath_t d = momentum_direction(g, buf, s);
    const int64_t bin = radix::bin_of_value(d, c.prefix, c.mu, spec);
    if (bin >= 0) {
      dev::atomic_add(c.h + bin, 1u);
    } else if (bin == -2) {
      dev::atomic_add(c.h + (kBins - 1), 1u);
    }
  }

  __device__ void operator()(void* const (&ptrs)[kDepth], int64_t start, int64_t n) const {
    // One copy per warp: many equal keys (zeros above all) would otherwise serialize the
    // whole block on one shared counter. A chunk has at most 65536 elements: no overflow.
    SOFTSIGN_SHARED(Counts, sh);
    const int tid = dev::thread_index();
    for (int i = tid; i < kWarps * kBins; i += mt::kBlockSize) (&sh[0][0])[i] = 0u;

    Ctx c;
    c.prefix = static_cast<uint64_t>(state[2 * spec.stage]);
    c.mu = spec.stage == 1 ? radix::median_of_prefix(static_cast<uint64_t>(state[0]), spec.key_bits)
                           : 0.0;
    c.scaled = grad_scale.ptr != nullptr;
    c.scale = c.scaled ? grad_scale.get<opmath_t>() : opmath_t(1);
    c.h = sh[tid / 32];
    dev::sync_block();

    const scalar_t* g = static_cast<const scalar_t*>(ptrs[0]) + start;
    const scalar_t* b = kBuf ? static_cast<const scalar_t*>(ptrs[kDepth - 1]) + start : nullptr;
    if (mt::is_aligned<mt::kILP>(g) && (!kBuf || mt::is_aligned<mt::kILP>(b))) {
      const int64_t nvec = n / mt::kILP;
      for (int64_t v = tid; v < nvec; v += mt::kBlockSize) {
        const VecT gv = reinterpret_cast<const VecT*>(g)[v];
        VecT bv{};
        if constexpr (kBuf) bv = reinterpret_cast<const VecT*>(b)[v];
#pragma unroll
        for (int k = 0; k < mt::kILP; ++k) count(c, gv.val[k], bv.val[k]);
      }
      for (int64_t i = nvec * mt::kILP + tid; i < n; i += mt::kBlockSize) {
        count(c, g[i], kBuf ? b[i] : scalar_t(0));
      }
    } else {
      for (int64_t i = tid; i < n; i += mt::kBlockSize) count(c, g[i], kBuf ? b[i] : scalar_t(0));
    }

    dev::sync_block();
    if (tid < kBins) {
      unsigned total = 0;
      for (int w = 0; w < kWarps; ++w) total += sh[w][tid];
      if (total != 0) dev::atomic_add(hist + tid, static_cast<unsigned long long>(total));
    }
  }
};

// The op's whole CUDA entry but the registration, with the launch limits as a parameter.
template <typename L = mt::DefaultLimits>
at::Tensor radix_select_histogram_launch(at::TensorList grads, at::TensorList momentum_buffers,
                                         const at::Tensor& state, int64_t stage, int64_t pass,
                                         int64_t digit_bits, int64_t key_bits, double momentum,
                                         double dampening, bool nesterov, bool maximize,
                                         bool first_step,
                                         const std::optional<at::Tensor>& grad_scale) {
  const radix::PassSpec spec = check_radix_select_histogram(grads, momentum_buffers, state, stage,
                                                            pass, digit_bits, key_bits, grad_scale);
  TORCH_CHECK(digit_bits == kDigitBits,
              "softsign: the CUDA radix selection takes digit_bits 8 only (its histogram lives "
              "in shared memory), got ",
              digit_bits);
#if defined(__CUDACC__)
  TORCH_CHECK(state.is_cuda(), "softsign: expected a CUDA selection state, got ", state.device());
  c10::cuda::CUDAGuard guard(state.device());
#endif
  at::Tensor hist = at::zeros({kBins}, state.options());
  if (grads.empty()) return hist;

  std::vector<at::Tensor> keep;
  const DeviceScalar scale_s = device_scalar(grad_scale, keep);
  keep.push_back(state.contiguous());
  const int64_t* state_ptr = keep.back().const_data_ptr<int64_t>();
  auto* hist_ptr = reinterpret_cast<unsigned long long*>(hist.data_ptr<int64_t>());
  const StepScalars s{momentum, dampening, 0.0, nesterov, maximize, first_step};
  // As on the CPU, a buffer only counts when momentum_direction would read it; on the first
  // step it may be uninitialized memory, so it is not even loaded.
  const bool read_buf = !momentum_buffers.empty() && momentum != 0.0 && !first_step;

  using Lists = std::array<std::vector<at::Tensor>, 2>;
  std::vector<std::pair<at::ScalarType, Lists>> buckets;
  for (const auto& [dtype, members] : group_by_dtype(grads)) {
    Lists lists;
    for (const size_t i : members) {
      lists[0].push_back(grads[i]);
      if (read_buf) lists[1].push_back(momentum_buffers[i]);
    }
    buckets.emplace_back(dtype, std::move(lists));
  }

  for (auto& bucket : buckets) {
    Lists& lists = bucket.second;
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kBFloat16, at::kHalf, bucket.first, "radix_select_histogram_cuda", [&] {
          if (read_buf) {
            mt::apply<2, L>(lists,
                            HistogramOp<scalar_t, true>{s, spec, state_ptr, scale_s, hist_ptr});
          } else {
            const std::array<std::vector<at::Tensor>, 1> grads_only{std::move(lists[0])};
            mt::apply<1, L>(grads_only,
                            HistogramOp<scalar_t, false>{s, spec, state_ptr, scale_s, hist_ptr});
          }
        });
  }
  return hist;
}

}  // namespace
}  // namespace softsign::ops
