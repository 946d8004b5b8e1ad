// The kernel of softsign::soft_sign_step_ for CUDA devices: one chunked multi-tensor launch
// per dtype, element math from soft_sign_step.h (Note [soft-sign element math]). Device
// code under nvcc (soft_sign_step_kernel.cu registers it) and host code for the cuda_host
// tests, which run it with tiny launch limits (device_api.cuh).
//
// Everything here has internal linkage: the GPU library and the host tests each get their
// own copy, so neither can ever bind the other's instantiation.
#pragma once

#include <cmath>

#include "kernel_common.cuh"

namespace softsign::ops {
namespace {

template <typename scalar_t, bool kBuf>
struct SoftSignStepOp {
  using opmath_t = at::opmath_type<scalar_t>;
  static constexpr int kDepth = kBuf ? 3 : 2;
  using VecT = mt::Vec<scalar_t, mt::kILP>;

  StepScalars s;
  double lr;
  DeviceScalar lr_tensor, temperature, grad_scale, found_inf;
  bool float_math;  // some tensor of the call computes in float32

  // Per-block values, read once from the device scalars.
  struct Ctx {
    opmath_t lr, weight_decay, tau, scale;
    bool soft, scaled;
  };

  __device__ __forceinline__ void update(const Ctx& c, scalar_t& p, scalar_t g_in,
                                         scalar_t& b) const {
    opmath_t g = static_cast<opmath_t>(g_in);
    if (c.scaled) g = g / c.scale;
    if (s.maximize) g = -g;
    // On the first step the buffer may be uninitialized memory: never read it.
    opmath_t buf = (kBuf && !s.first_step) ? static_cast<opmath_t>(b) : opmath_t(0);
    const opmath_t d = momentum_direction(g, buf, s);
    if constexpr (kBuf) b = static_cast<scalar_t>(buf);
    p = static_cast<scalar_t>(
        apply_update(static_cast<opmath_t>(p), soft_sign(d, c.soft, c.tau), c.lr, c.weight_decay));
  }

  __device__ void operator()(void* const (&ptrs)[kDepth], int64_t start, int64_t n) const {
    // The whole call is a no-op when AMP found inf/NaN or the temperature fit failed;
    // every block decides alone, so the host never synchronizes.
    if (found_inf.ptr != nullptr && found_inf.get<double>() != 0.0) return;
    Ctx c;
    c.soft = temperature.ptr != nullptr;
    // Decided from the whole call's narrowest math type, so every block of every dtype
    // decides alike (Note [temperature range]).
    if (c.soft && !temperature_usable(temperature.get<double>(), float_math)) return;
    c.tau = c.soft ? temperature.get<opmath_t>() : opmath_t(0);
    c.lr = lr_tensor.ptr != nullptr ? lr_tensor.get<opmath_t>() : static_cast<opmath_t>(lr);
    c.weight_decay = static_cast<opmath_t>(s.weight_decay);
    c.scaled = grad_scale.ptr != nullptr;
    c.scale = c.scaled ? grad_scale.get<opmath_t>() : opmath_t(1);

    scalar_t* p = static_cast<scalar_t*>(ptrs[0]) + start;
    const scalar_t* g = static_cast<const scalar_t*>(ptrs[1]) + start;
    scalar_t* b = kBuf ? static_cast<scalar_t*>(ptrs[kDepth - 1]) + start : nullptr;
    const bool read_buf = kBuf && !s.first_step;
    const int tid = dev::thread_index();

    if (mt::is_aligned<mt::kILP>(p) && mt::is_aligned<mt::kILP>(g) &&
        (!kBuf || mt::is_aligned<mt::kILP>(b))) {
      const int64_t nvec = n / mt::kILP;
      for (int64_t v = tid; v < nvec; v += mt::kBlockSize) {
        VecT pv = reinterpret_cast<const VecT*>(p)[v];
        const VecT gv = reinterpret_cast<const VecT*>(g)[v];
        VecT bv{};
        if (read_buf) bv = reinterpret_cast<const VecT*>(b)[v];
#pragma unroll
        for (int k = 0; k < mt::kILP; ++k) update(c, pv.val[k], gv.val[k], bv.val[k]);
        reinterpret_cast<VecT*>(p)[v] = pv;
        if constexpr (kBuf) reinterpret_cast<VecT*>(b)[v] = bv;
      }
      // Fewer than kILP elements end the chunk when n is not a multiple of kILP.
      for (int64_t i = nvec * mt::kILP + tid; i < n; i += mt::kBlockSize) {
        scalar_t bi = read_buf ? b[i] : scalar_t(0);
        update(c, p[i], g[i], bi);
        if constexpr (kBuf) b[i] = bi;
      }
      return;
    }

    // Unaligned views: still kILP independent elements in flight per thread, each
    // access coalesced across the block.
    for (int64_t base = 0; base < n; base += int64_t(mt::kBlockSize) * mt::kILP) {
      scalar_t pr[mt::kILP], gr[mt::kILP], br[mt::kILP];
#pragma unroll
      for (int k = 0; k < mt::kILP; ++k) {
        const int64_t i = base + tid + int64_t(k) * mt::kBlockSize;
        pr[k] = gr[k] = br[k] = scalar_t(0);
        if (i < n) {
          pr[k] = p[i];
          gr[k] = g[i];
          if (read_buf) br[k] = b[i];
        }
      }
#pragma unroll
      for (int k = 0; k < mt::kILP; ++k) {
        const int64_t i = base + tid + int64_t(k) * mt::kBlockSize;
        if (i < n) {
          update(c, pr[k], gr[k], br[k]);
          p[i] = pr[k];
          if constexpr (kBuf) b[i] = br[k];
        }
      }
    }
  }
};

// The op's CUDA entry (soft_sign_step_entry<&soft_sign_step_launch<>>) but the
// registration, with the launch limits as a parameter.
template <typename L = mt::DefaultLimits>
void soft_sign_step_launch(const SoftSignStepCall& call) {
  if (call.params.empty()) return;
#if defined(__CUDACC__)
  c10::cuda::CUDAGuard guard(call.params[0].device());
#endif
  const StepScalars& s = call.s;
  const double lr = call.lr;

  const bool use_buf = !call.momentum_buffers.empty() && s.buffered();
  const StepLayout layout(call.params, call.grads, call.momentum_buffers);

  std::vector<at::Tensor> keep;
  const DeviceScalar lr_s = device_scalar(call.lr_tensor, keep);
  const DeviceScalar temp_s = device_scalar(call.temperature, keep);
  const DeviceScalar scale_s = device_scalar(call.grad_scale, keep);
  const DeviceScalar inf_s = device_scalar(call.found_inf, keep);
  const bool float_math = computes_in_float(layout.params());

  using Lists = std::array<std::vector<at::Tensor>, 3>;
  std::vector<std::pair<at::ScalarType, Lists>> buckets;
  for (const auto& [dtype, members] : group_by_dtype(layout.params())) {
    Lists lists;
    for (const size_t i : members) {
      lists[0].push_back(layout.params()[i]);
      lists[1].push_back(layout.grads()[i]);
      if (use_buf) lists[2].push_back(layout.momentum_buffers()[i]);
    }
    buckets.emplace_back(dtype, std::move(lists));
  }

  for (auto& bucket : buckets) {
    Lists& lists = bucket.second;
    AT_DISPATCH_FLOATING_TYPES_AND2(
        at::kBFloat16, at::kHalf, bucket.first, "soft_sign_step_cuda", [&] {
          if (use_buf) {
            mt::apply<3, L>(lists, SoftSignStepOp<scalar_t, true>{s, lr, lr_s, temp_s, scale_s,
                                                                  inf_s, float_math});
          } else {
            mt::apply<2, L>(
                {std::move(lists[0]), std::move(lists[1])},
                SoftSignStepOp<scalar_t, false>{s, lr, lr_s, temp_s, scale_s, inf_s, float_math});
          }
        });
  }
  layout.write_back();
}

}  // namespace
}  // namespace softsign::ops
