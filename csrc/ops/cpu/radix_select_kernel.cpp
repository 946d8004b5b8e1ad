// CPU kernel of softsign::radix_select_histogram (Note [radix selection] in
// radix_select.h): one pass over the directions of every tensor, read in place, each
// thread counting into its own histogram; the histograms are summed at the end.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "radix_select.h"
#include "radix_select_check.h"
#include "soft_sign_step.h"

namespace softsign::ops {
namespace {

constexpr int64_t kChunk = 1 << 16;

struct Chunk {
  int64_t tensor;
  int64_t begin;
  int64_t end;
};

struct HistContext {
  StepScalars step;
  double grad_scale;
  radix::PassSpec spec;
  uint64_t prefix;
  double mu;
  int64_t bins;
};

// Two interleaved histograms per thread: equal keys in a row (common: many directions
// share their top digits) would otherwise wait on each other's increment of one counter.
constexpr int kCopies = 2;

// One chunk's counts. The stage and the key width are template arguments, and the context
// is copied into locals, so the loop carries no per-element branching on them.
template <typename scalar_t, int kStage, bool kKey64>
void count_chunk(const scalar_t* g, const scalar_t* b, int64_t n, const HistContext& c,
                 uint32_t* hist) {
  using opmath_t = at::opmath_type<scalar_t>;
  const StepScalars step = c.step;
  const opmath_t scale = static_cast<opmath_t>(c.grad_scale);
  const bool scaled = c.grad_scale != 1.0;
  const bool check = c.spec.pass > 0;
  const int shift = radix::digit_shift(c.spec);
  const int high = shift + c.spec.digit_bits;  // < 64 whenever check is true
  const uint64_t prefix_high = check ? c.prefix >> high : 0;
  const uint64_t mask = (uint64_t{1} << c.spec.digit_bits) - 1;
  const double mu = c.mu;
  const int64_t stride = c.bins + 1;
  uint32_t* nan_count = hist + c.bins;
  for (int64_t i = 0; i < n; ++i) {
    opmath_t g_i = static_cast<opmath_t>(g[i]);
    if (scaled) g_i = g_i / scale;
    if (step.maximize) g_i = -g_i;
    opmath_t buf = b != nullptr ? static_cast<opmath_t>(b[i]) : opmath_t(0);
    const opmath_t d = momentum_direction(g_i, buf, step);
    uint64_t key;
    if constexpr (kStage == 0) {
      if (d != d) {
        *nan_count += check ? 0 : 1;
        continue;
      }
      key = kKey64 ? radix::key_of(static_cast<double>(d)) : radix::key_of(static_cast<float>(d));
    } else {
      const double dev = static_cast<double>(d) - mu;
      const double a = std::fabs(dev);  // branch-free: the sign of dev is a coin flip
      if (a != a) {
        *nan_count += check ? 0 : 1;
        continue;
      }
      key = radix::key_of(a);
    }
    if (check && (key >> high) != prefix_high) continue;
    ++hist[(i & (kCopies - 1)) * stride + ((key >> shift) & mask)];
  }
}

at::Tensor radix_select_histogram_cpu(at::TensorList grads, at::TensorList momentum_buffers,
                                      const at::Tensor& state, int64_t stage, int64_t pass,
                                      int64_t digit_bits, int64_t key_bits, double momentum,
                                      double dampening, bool nesterov, bool maximize,
                                      bool first_step,
                                      const std::optional<at::Tensor>& grad_scale) {
  const radix::PassSpec spec = check_radix_select_histogram(grads, momentum_buffers, state, stage,
                                                            pass, digit_bits, key_bits, grad_scale);
  TORCH_CHECK(digit_bits == 8 || digit_bits == 16,
              "softsign: the CPU radix selection takes digit_bits 8 or 16, got ", digit_bits);
  const int64_t bins = int64_t{1} << digit_bits;
  const auto st = state.contiguous();
  const int64_t* s = st.const_data_ptr<int64_t>();
  const HistContext c{
      StepScalars{momentum, dampening, 0.0, nesterov, maximize, first_step},
      grad_scale.has_value() ? grad_scale->item<double>() : 1.0,  // a CPU tensor: no sync
      spec,
      static_cast<uint64_t>(s[2 * stage]),
      radix::median_of_prefix(static_cast<uint64_t>(s[0]), static_cast<int>(key_bits)),
      bins};
  const bool read_buffers = !momentum_buffers.empty();

  std::vector<Chunk> chunks;
  for (size_t t = 0; t < grads.size(); ++t) {
    const int64_t n = grads[t].numel();
    for (int64_t b = 0; b < n; b += kChunk) {
      chunks.push_back({static_cast<int64_t>(t), b, std::min(n, b + kChunk)});
    }
  }
  // 32-bit counts per thread and copy (half the cache of int64): a thread flushes them
  // into its int64 totals before 2^31 elements could have reached one counter.
  const int threads = at::get_num_threads();
  const size_t width = static_cast<size_t>(bins + 1);
  const size_t per_thread = kCopies * width;
  std::vector<uint32_t> local(threads * per_thread, 0);
  std::vector<int64_t> totals(threads * width, 0);
  std::vector<int64_t> pending(threads, 0);
  auto flush = [&](int t) {
    uint32_t* h = local.data() + t * per_thread;
    int64_t* tot = totals.data() + t * width;
    for (size_t k = 0; k < kCopies; ++k) {
      for (size_t i = 0; i < width; ++i) tot[i] += std::exchange(h[k * width + i], 0u);
    }
    pending[t] = 0;
  };
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    const int t = at::get_thread_num();
    uint32_t* hist = local.data() + t * per_thread;
    for (int64_t i = lo; i < hi; ++i) {
      const Chunk& ch = chunks[i];
      const at::Tensor& g = grads[ch.tensor];
      const int64_t len = ch.end - ch.begin;
      if (pending[t] + len >= (int64_t{1} << 31)) flush(t);
      pending[t] += len;
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, g.scalar_type(), "radix_cpu", [&] {
        const scalar_t* gp = g.const_data_ptr<scalar_t>() + ch.begin;
        const scalar_t* bp = read_buffers
                                 ? momentum_buffers[ch.tensor].const_data_ptr<scalar_t>() + ch.begin
                                 : nullptr;
        if (stage == 1) {
          count_chunk<scalar_t, 1, true>(gp, bp, len, c, hist);
        } else if (key_bits == 64) {
          count_chunk<scalar_t, 0, true>(gp, bp, len, c, hist);
        } else {
          count_chunk<scalar_t, 0, false>(gp, bp, len, c, hist);
        }
      });
    }
  });
  for (int t = 0; t < threads; ++t) flush(t);
  at::Tensor out = at::zeros({bins + 1}, state.options());
  int64_t* o = out.data_ptr<int64_t>();
  for (int t = 0; t < threads; ++t) {
    for (size_t i = 0; i < width; ++i) o[i] += totals[t * width + i];
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CPU, m) {
  m.impl("radix_select_histogram", &radix_select_histogram_cpu);
}

}  // namespace softsign::ops
