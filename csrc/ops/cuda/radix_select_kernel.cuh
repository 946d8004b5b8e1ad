// The kernel of softsign::radix_select_histogram for CUDA devices (Note [radix selection]):
// one pass's digit histogram of d = momentum_direction(g, buf), one chunked multi-tensor
// launch per dtype. Device code under nvcc (radix_select_kernel.cu registers it) and host
// code for the cuda_host tests (device_api.cuh). Internal linkage, as in
// soft_sign_step_kernel.cuh.
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernel_common.cuh"
#include "radix_select.h"
#include "radix_select_contract.h"
#include "radix_select_driver.h"
#include "softsign/ops.h"

namespace softsign::ops {
namespace {

constexpr int kDigitBits = radix::kDeviceDigitBits;
constexpr int kBins = radix::histogram_size(kDigitBits);  // the digit bins, then the NaN count
constexpr int kWarps = mt::kBlockSize / 32;
constexpr int kAdvanceThreads = 256;
static_assert(mt::kBlockSize >= kBins, "the merge gives each bin its own thread");

using WarpCounts = unsigned[kWarps][kBins];

// Lanes holding the same slot add their count once, from the lowest of them: on the
// skewed keys of gradients (most elements of a pass in one or two bins) that is one
// shared atomic per warp and bin instead of 32 colliding ones. Every lane of the warp
// must call it (slot -1: nothing to count).
__device__ __forceinline__ void add_to_slot(unsigned* h, int slot) {
  const unsigned peers = dev::match_any(static_cast<unsigned>(slot));
  if (slot >= 0 && dev::lowest_lane(peers) == (dev::thread_index() & 31)) {
    dev::atomic_add(h + slot, static_cast<unsigned>(dev::popcount(peers)));
  }
}

// Per-warp counts zeroed in shared memory (one copy per warp: warps do not wait on each
// other's counters) and merged into the global histogram; a chunk has at most 65536
// elements, so no 32-bit counter overflows.
__device__ __forceinline__ void zero_counts(WarpCounts& sh) {
  for (int i = dev::thread_index(); i < kWarps * kBins; i += mt::kBlockSize) (&sh[0][0])[i] = 0u;
}
__device__ __forceinline__ void merge_counts(const WarpCounts& sh, unsigned long long* hist) {
  const int tid = dev::thread_index();
  if (tid < kBins) {
    unsigned total = 0;
    for (int w = 0; w < kWarps; ++w) total += sh[w][tid];
    if (total != 0) dev::atomic_add(hist + tid, static_cast<unsigned long long>(total));
  }
}

// Reads the directions d = momentum_direction(g, buf) of a chunk, with the same element
// math as the step kernels, so the selected statistic is that of the d they will apply;
// the buffer is only read (its update is the step's job).
template <typename scalar_t, bool kBuf>
struct DirectionReader {
  using scalar_type = scalar_t;
  static constexpr bool kHasBuf = kBuf;
  using opmath_t = at::opmath_type<scalar_t>;
  static constexpr int kDepth = kBuf ? 2 : 1;
  using VecT = mt::Vec<scalar_t, mt::kILP>;

  StepScalars s;
  DeviceScalar grad_scale;

  // The grad scale of the call, read once per block (1 when there is none).
  __device__ __forceinline__ opmath_t scale() const {
    return grad_scale.ptr != nullptr ? grad_scale.get<opmath_t>() : opmath_t(1);
  }

  __device__ __forceinline__ opmath_t direction(scalar_t g_in, scalar_t b_in,
                                                opmath_t scale) const {
    opmath_t g = static_cast<opmath_t>(g_in);
    if (grad_scale.ptr != nullptr) g = g / scale;
    if (s.maximize) g = -g;
    opmath_t buf = kBuf ? static_cast<opmath_t>(b_in) : opmath_t(0);
    return momentum_direction(g, buf, s);
  }

  // Calls f(g, b, valid) for every element of the chunk. All 32 lanes of a warp make the
  // same number of calls (valid is false past the end), so f may use warp collectives.
  template <typename F>
  __device__ __forceinline__ void visit(void* const (&ptrs)[kDepth], int64_t start, int64_t n,
                                        F&& f) const {
    const scalar_t* g = static_cast<const scalar_t*>(ptrs[0]) + start;
    const scalar_t* b = kBuf ? static_cast<const scalar_t*>(ptrs[kDepth - 1]) + start : nullptr;
    const int lane = dev::thread_index() & 31;
    const int warp_first = dev::thread_index() - lane;
    int64_t tail = 0;
    if (mt::is_aligned<mt::kILP>(g) && (!kBuf || mt::is_aligned<mt::kILP>(b))) {
      const int64_t nvec = n / mt::kILP;
      for (int64_t v0 = warp_first; v0 < nvec; v0 += mt::kBlockSize) {
        const int64_t v = v0 + lane;
        const bool ok = v < nvec;
        VecT gv{}, bv{};
        if (ok) gv = reinterpret_cast<const VecT*>(g)[v];
        if (kBuf && ok) bv = reinterpret_cast<const VecT*>(b)[v];
#pragma unroll
        for (int k = 0; k < mt::kILP; ++k) f(gv.val[k], bv.val[k], ok);
      }
      tail = nvec * mt::kILP;  // fewer than kILP elements are left
    }
    for (int64_t i0 = tail + warp_first; i0 < n; i0 += mt::kBlockSize) {
      const int64_t i = i0 + lane;
      const bool ok = i < n;
      f(ok ? g[i] : scalar_t(0), kBuf && ok ? b[i] : scalar_t(0), ok);
    }
  }
};

// One pass's digit histogram of the directions (Note [radix selection]).
template <typename scalar_t, bool kBuf>
struct HistogramOp : DirectionReader<scalar_t, kBuf> {
  using Base = DirectionReader<scalar_t, kBuf>;
  radix::PassSpec spec;
  const int64_t* state;
  unsigned long long* hist;
  const int64_t* skip;  // nonzero: the stage finished among candidates (may be null)

  __device__ void operator()(void* const (&ptrs)[Base::kDepth], int64_t start, int64_t n) const {
    if (skip != nullptr && *skip != 0) return;
    SOFTSIGN_SHARED(WarpCounts, sh);
    zero_counts(sh);
    const uint64_t prefix = static_cast<uint64_t>(state[2 * spec.stage]);
    const double mu = spec.stage == 1
                          ? radix::median_of_prefix(static_cast<uint64_t>(state[0]), spec.key_bits)
                          : 0.0;
    const auto scale = this->scale();
    unsigned* h = sh[dev::thread_index() / 32];
    if (dev::thread_index() == 0) dev::note_reads(n);
    dev::sync_block();
    this->visit(ptrs, start, n, [&](scalar_t g, scalar_t b, bool ok) {
      int slot = -1;
      if (ok) {
        const int64_t bin = radix::bin_of_value(this->direction(g, b, scale), prefix, mu, spec);
        slot = bin >= 0 ? static_cast<int>(bin) : (bin == -2 ? kBins - 1 : -1);
      }
      add_to_slot(h, slot);
    });
    dev::sync_block();
    merge_counts(sh, hist);
  }
};

// Note [candidate finish on the device]
// The CPU driver finishes a stage among the few elements left in the chosen bin (Note
// [candidate finish]); it reads the count for free. On a GPU the host must not read it,
// so the device decides: after each pass that leaves two or more, the advance kernel sets
// `go` when the chosen bin holds at most `capacity` elements (and no NaN was seen); the
// collect kernel, launched every time, then copies those elements' keys into a buffer, or
// returns at once when `go` is 0. From then on the stage's histograms read the buffer
// instead of the model: the model kernels see `collected` and return at once, and the
// candidate kernel counts the buffer. The passes are the same passes over the same keys,
// so the selected key is the same; a 124M-element model is read 7 times instead of 12.
// Control words: ctrl[0] = go (this pass), ctrl[1 + stage] = collected.

// Collects the keys of the directions that match the prefix down to this pass's digit.
template <typename scalar_t, bool kBuf>
struct CollectOp : DirectionReader<scalar_t, kBuf> {
  using Base = DirectionReader<scalar_t, kBuf>;
  radix::PassSpec next;  // the next pass: its prefix test is the one wanted
  const int64_t* state;
  const int64_t* go;
  unsigned long long* keys;
  unsigned long long* count;
  int64_t capacity;

  __device__ void operator()(void* const (&ptrs)[Base::kDepth], int64_t start, int64_t n) const {
    if (*go == 0) return;
    const uint64_t prefix = static_cast<uint64_t>(state[2 * next.stage]);
    const double mu = next.stage == 1
                          ? radix::median_of_prefix(static_cast<uint64_t>(state[0]), next.key_bits)
                          : 0.0;
    const auto scale = this->scale();
    if (dev::thread_index() == 0) dev::note_reads(n);
    this->visit(ptrs, start, n, [&](scalar_t g, scalar_t b, bool ok) {
      uint64_t key = 0;
      if (!ok || !radix::stage_key(this->direction(g, b, scale), mu, next, key)) return;
      if (radix::bin_of(key, prefix, next) < 0) return;
      const unsigned long long at = dev::atomic_add(count, 1ull);
      if (at < static_cast<unsigned long long>(capacity)) keys[at] = key;
    });
  }
};

// The histogram of the collected candidates (a grid-stride pass over the buffer, whose
// fill is known on the device only).
struct CandidateHistogramOp {
  radix::PassSpec spec;
  const int64_t* state;
  const int64_t* collected;
  const unsigned long long* keys;
  const unsigned long long* count;
  int64_t capacity;
  unsigned long long* hist;
  int grid;

  __device__ void operator()() const {
    if (*collected == 0) return;
    SOFTSIGN_SHARED(WarpCounts, sh);
    zero_counts(sh);
    const int64_t n = *count < static_cast<unsigned long long>(capacity)
                          ? static_cast<int64_t>(*count)
                          : capacity;
    const uint64_t prefix = static_cast<uint64_t>(state[2 * spec.stage]);
    unsigned* h = sh[dev::thread_index() / 32];
    const int lane = dev::thread_index() & 31;
    dev::sync_block();
    const int64_t stride = int64_t(grid) * mt::kBlockSize;
    for (int64_t i0 = int64_t(dev::block_index()) * mt::kBlockSize + dev::thread_index() - lane;
         i0 < n; i0 += stride) {
      const int64_t i = i0 + lane;
      add_to_slot(h, i < n ? static_cast<int>(radix::bin_of(keys[i], prefix, spec)) : -1);
    }
    dev::sync_block();
    merge_counts(sh, hist);
  }
};

// radix_select_advance_ in one block (Note [radix selection]): picks the bin holding the
// wanted rank with a block-wide prefix sum of the counts (CUB's BlockScan on the GPU), and
// extends the prefix; with ctrl, also decides the candidate finish (Note [candidate finish
// on the device]). Equal, state for state, to the ATen-op driver in radix_select.cpp.
struct AdvanceOp {
  int64_t* state;
  const int64_t* hist;
  int stage, pass, digit_bits, key_bits;
  int64_t* ctrl;     // may be null: no candidate finish
  int64_t capacity;  // with ctrl: the candidate buffer's size
  bool may_collect;  // with ctrl: collecting would still save a pass

  __device__ void operator()() const {
    using Scan = dev::BlockExclusiveSum<int64_t, kAdvanceThreads>;
    using Pick = int64_t[3];  // chosen bin, counts below it, total
    SOFTSIGN_SHARED(typename Scan::TempStorage, temp);
    SOFTSIGN_SHARED(Pick, pick);
    const int t = dev::thread_index();
    const int64_t bins = int64_t{1} << digit_bits;
    const int64_t per = bins > kAdvanceThreads ? bins / kAdvanceThreads : 1;
    const int64_t first = t * per;
    const int64_t last = first + per < bins ? first + per : bins;
    int64_t mine = 0;
    for (int64_t j = first; j < last; ++j) mine += hist[j];
    const int64_t below_mine = Scan()(temp, mine);
    if (t == kAdvanceThreads - 1) pick[2] = below_mine + mine;
    if (t == 0) pick[1] = -1;
    dev::sync_block();
    const int64_t total = pick[2];
    const int64_t rank = pass == 0 ? (total > 0 ? (total - 1) / 2 : 0) : state[2 * stage + 1];
    if (below_mine <= rank && rank < below_mine + mine) {  // one thread at most
      int64_t below = below_mine;
      for (int64_t j = first; j < last; ++j) {
        if (rank < below + hist[j]) {
          pick[0] = j;
          pick[1] = below;
          break;
        }
        below += hist[j];
      }
    }
    dev::sync_block();
    if (t != 0) return;
    int64_t bin = pick[0], below = pick[1];
    if (below < 0) {  // the rank lies past every count: the last bin, as searchsorted clamps
      bin = bins - 1;
      below = total - hist[bins - 1];
    }
    if (pass == 0 && hist[bins] > 0) state[4 + stage] = 1;
    state[2 * stage + 1] = rank - below;
    const int shift = (stage == 0 ? key_bits : 64) - (pass + 1) * digit_bits;
    const int64_t digit = static_cast<int64_t>(static_cast<uint64_t>(bin) << shift);
    state[2 * stage] = pass == 0 ? digit : (state[2 * stage] | digit);
    if (ctrl != nullptr) {
      const bool go = may_collect && ctrl[1 + stage] == 0 && hist[bin] <= capacity &&
                      state[4] == 0 && state[5] == 0;
      ctrl[0] = go ? 1 : 0;
      if (go) ctrl[1 + stage] = 1;
    }
  }
};

// Queues the per-chunk op make(reader) over the directions of `grads` (with their buffers
// when momentum_direction reads them), one launch series per dtype; `reader` is the
// DirectionReader of the dtype and buffer case.
template <typename L, typename Make>
void over_directions(at::TensorList grads, at::TensorList buffers, const StepScalars& s,
                     const DeviceScalar& scale, const Make& make) {
  // As on the CPU, a buffer only counts when momentum_direction would read it; on the
  // first step it may be uninitialized memory, so it is not even loaded.
  const bool read_buf = !buffers.empty() && s.buffered() && !s.first_step;
  for (const auto& [dtype, members] : group_by_dtype(grads)) {
    std::array<std::vector<at::Tensor>, 2> lists;
    for (const size_t i : members) {
      lists[0].push_back(grads[i]);
      if (read_buf) lists[1].push_back(buffers[i]);
    }
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, dtype, "radix_select_pass", [&] {
      if (read_buf) {
        mt::apply<2, L>(lists, make(DirectionReader<scalar_t, true>{s, scale}));
      } else {
        mt::apply<1, L>({std::move(lists[0])}, make(DirectionReader<scalar_t, false>{s, scale}));
      }
    });
  }
}

// Queues one histogram pass of `grads` (and buffers) into `hist`.
template <typename L>
void histogram_into(const at::Tensor& hist, at::TensorList grads, at::TensorList buffers,
                    const at::Tensor& state, const radix::PassSpec& spec, const StepScalars& s,
                    const DeviceScalar& scale, const int64_t* skip) {
  const int64_t* state_ptr = state.const_data_ptr<int64_t>();
  auto* hist_ptr = reinterpret_cast<unsigned long long*>(hist.data_ptr<int64_t>());
  over_directions<L>(grads, buffers, s, scale, [&](auto reader) {
    using R = decltype(reader);
    return HistogramOp<typename R::scalar_type, R::kHasBuf>{reader, spec, state_ptr, hist_ptr,
                                                            skip};
  });
}

// Queues the collection of the candidates of `next` (Note [candidate finish on the device]).
template <typename L>
void collect_into(at::TensorList grads, at::TensorList buffers, const at::Tensor& state,
                  const radix::PassSpec& next, const StepScalars& s, const DeviceScalar& scale,
                  const int64_t* go, const at::Tensor& keys, const at::Tensor& count) {
  const int64_t* state_ptr = state.const_data_ptr<int64_t>();
  auto* keys_ptr = reinterpret_cast<unsigned long long*>(keys.data_ptr<int64_t>());
  auto* count_ptr = reinterpret_cast<unsigned long long*>(count.data_ptr<int64_t>());
  over_directions<L>(grads, buffers, s, scale, [&](auto reader) {
    using R = decltype(reader);
    return CollectOp<typename R::scalar_type, R::kHasBuf>{reader,   next,      state_ptr,   go,
                                                          keys_ptr, count_ptr, keys.numel()};
  });
}

// radix_select_advance_'s kernel: one block.
inline void advance_launch(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                           int64_t pass, int64_t digit_bits, int64_t key_bits,
                           int64_t* ctrl = nullptr, int64_t capacity = 0,
                           bool may_collect = false) {
  mt::launch_grid<kAdvanceThreads>(
      1, AdvanceOp{state.data_ptr<int64_t>(), histogram.const_data_ptr<int64_t>(),
                   static_cast<int>(stage), static_cast<int>(pass), static_cast<int>(digit_bits),
                   static_cast<int>(key_bits), ctrl, capacity, may_collect});
}

// The op's whole CUDA entry but the registration, with the launch limits as a parameter.
template <typename L = mt::DefaultLimits>
at::Tensor radix_select_histogram_launch(
    at::TensorList grads, at::TensorList momentum_buffers, const at::Tensor& state, int64_t stage,
    int64_t pass, int64_t digit_bits, int64_t key_bits, double momentum, double dampening,
    bool nesterov, bool maximize, bool first_step, const std::optional<at::Tensor>& grad_scale,
    c10::string_view momentum_rule, at::ArrayRef<double> rule_coeffs) {
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
  const StepScalars s = step_scalars(momentum, dampening, 0.0, nesterov, maximize, first_step,
                                     momentum_rule, rule_coeffs);
  histogram_into<L>(hist, grads, momentum_buffers, keep.back(), spec, s, scale_s, nullptr);
  return hist;
}

// radix_select_advance_'s whole CUDA entry but the registration.
inline void radix_select_advance_entry(const at::Tensor& state, const at::Tensor& histogram,
                                       int64_t stage, int64_t pass, int64_t digit_bits,
                                       int64_t key_bits) {
  check_radix_select_advance(state, histogram, stage, pass, digit_bits, key_bits);
#if defined(__CUDACC__)
  c10::cuda::CUDAGuard guard(state.device());
#endif
  const at::Tensor counts = histogram.contiguous();
  if (state.is_contiguous()) {
    advance_launch(state, counts, stage, pass, digit_bits, key_bits);
  } else {
    const at::Tensor dense = state.contiguous();
    advance_launch(dense, counts, stage, pass, digit_bits, key_bits);
    state.copy_(dense);
  }
}

// The exact median/MAD selection on the device (Note [radix selection]) with the candidate
// finish (Note [candidate finish on the device]); `capacity` candidates at most (default:
// max(2^16, n / 128), 1/16 byte per element).
template <typename L = mt::DefaultLimits>
std::tuple<at::Tensor, at::Tensor> select_median_mad_launch(const SelectionSource& src,
                                                            int64_t capacity = -1) {
  int64_t n = 0;
  int64_t key_bits = 32;
  for (const at::TensorList list : {src.grads, src.first_step_grads}) {
    for (const auto& t : list) {
      n += t.numel();
      if (t.scalar_type() == at::kDouble) key_bits = 64;
    }
  }
  const at::Tensor& any = src.grads.empty() ? src.first_step_grads[0] : src.grads[0];
#if defined(__CUDACC__)
  c10::cuda::CUDAGuard guard(any.device());
#endif
  if (capacity < 0) capacity = std::max<int64_t>(int64_t{1} << 16, n / 128);
  const auto opts = any.options().dtype(at::kLong);
  const at::Tensor state = at::zeros({radix::kStateSize}, opts);
  const at::Tensor ctrl = at::zeros({3}, opts);
  const at::Tensor keys = at::empty({std::max<int64_t>(capacity, 1)}, opts);
  const at::Tensor count = at::zeros({1}, opts);
  std::vector<at::Tensor> keep;
  std::optional<at::Tensor> scale = src.grad_scale;
  if (scale.has_value()) scale = scale->to(any.device(), /*non_blocking=*/true);
  const DeviceScalar scale_s = device_scalar(scale, keep);
  const StepScalars s = scalars_of(src, false);
  const StepScalars s_first = scalars_of(src, true);
  const at::TensorList bufs = s.buffered() ? src.momentum_buffers : at::TensorList();
  int64_t* ctrl_ptr = ctrl.data_ptr<int64_t>();
  const int cand_grid =
      static_cast<int>(std::min<int64_t>((capacity + mt::kBlockSize - 1) / mt::kBlockSize, 1024));
  for (int stage = 0; stage < 2; ++stage) {
    const int passes = radix::stage_passes(stage, static_cast<int>(key_bits), kDigitBits);
    if (stage == 1) count.zero_();
    const int64_t* collected = ctrl_ptr + 1 + stage;
    for (int pass = 0; pass < passes; ++pass) {
      const radix::PassSpec spec{stage, pass, kDigitBits, static_cast<int>(key_bits)};
      const at::Tensor hist = at::zeros({kBins}, opts);
      histogram_into<L>(hist, src.grads, bufs, state, spec, s, scale_s, collected);
      if (!src.first_step_grads.empty()) {
        histogram_into<L>(hist, src.first_step_grads, {}, state, spec, s_first, scale_s, collected);
      }
      if (pass > 0 && capacity > 0) {
        mt::launch_grid<mt::kBlockSize>(
            cand_grid,
            CandidateHistogramOp{
                spec, state.const_data_ptr<int64_t>(), collected,
                reinterpret_cast<const unsigned long long*>(keys.const_data_ptr<int64_t>()),
                reinterpret_cast<const unsigned long long*>(count.const_data_ptr<int64_t>()),
                capacity, reinterpret_cast<unsigned long long*>(hist.data_ptr<int64_t>()),
                cand_grid});
      }
      const bool may_collect = capacity > 0 && pass + 2 < passes;
      advance_launch(state, hist, stage, pass, kDigitBits, key_bits, ctrl_ptr, capacity,
                     may_collect);
      if (may_collect) {
        radix::PassSpec next = spec;
        next.pass = pass + 1;
        collect_into<L>(src.grads, bufs, state, next, s, scale_s, ctrl_ptr, keys, count);
        if (!src.first_step_grads.empty()) {
          collect_into<L>(src.first_step_grads, {}, state, next, s_first, scale_s, ctrl_ptr, keys,
                          count);
        }
      }
    }
  }
  return radix_select_result(state, key_bits);
}

}  // namespace
}  // namespace softsign::ops
