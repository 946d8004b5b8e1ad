// CPU kernel of softsign::radix_select_histogram (Note [radix selection] in
// radix_select.h): one pass over the directions of every tensor, read in place, each
// thread counting into its own histogram; the histograms are summed at the end. Also the
// CPU driver's candidate finish (Note [candidate finish] in cpu/radix_select_cpu.h).
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <utility>
#include <vector>

#include "cpu/radix_select_cpu.h"
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

// Calls visit(i, key) for each element of a chunk whose key's digits above this pass's
// equal the prefix (every element on pass 0), and nan() for each NaN statistic on pass 0.
// The stage and the key width are template arguments, and the context is copied into
// locals, so the loop carries no per-element branching on them.
template <typename scalar_t, int kStage, bool kKey64, typename Visit, typename Nan>
inline void for_each_key(const scalar_t* g, const scalar_t* b, int64_t n, const HistContext& c,
                         Visit&& visit, Nan&& nan) {
  using opmath_t = at::opmath_type<scalar_t>;
  const StepScalars step = c.step;
  const opmath_t scale = static_cast<opmath_t>(c.grad_scale);
  const bool scaled = c.grad_scale != 1.0;
  const bool check = c.spec.pass > 0;
  const int high = radix::digit_shift(c.spec) + c.spec.digit_bits;  // < 64 when check
  const uint64_t prefix_high = check ? c.prefix >> high : 0;
  const double mu = c.mu;
  for (int64_t i = 0; i < n; ++i) {
    opmath_t g_i = static_cast<opmath_t>(g[i]);
    if (scaled) g_i = g_i / scale;
    if (step.maximize) g_i = -g_i;
    opmath_t buf = b != nullptr ? static_cast<opmath_t>(b[i]) : opmath_t(0);
    const opmath_t d = momentum_direction(g_i, buf, step);
    uint64_t key;
    if constexpr (kStage == 0) {
      if (d != d) {
        if (!check) nan();
        continue;
      }
      key = kKey64 ? radix::key_of(static_cast<double>(d)) : radix::key_of(static_cast<float>(d));
    } else {
      const double dev = static_cast<double>(d) - mu;
      const double a = std::fabs(dev);  // branch-free: the sign of dev is a coin flip
      if (a != a) {
        if (!check) nan();
        continue;
      }
      key = radix::key_of(a);
    }
    if (check && (key >> high) != prefix_high) continue;
    visit(i, key);
  }
}

// for_each_key over one chunk of a tensor of any floating dtype, with the stage and key
// width of `c` as template arguments.
template <typename Visit, typename Nan>
void visit_chunk(const at::Tensor& g, const at::Tensor* b, int64_t begin, int64_t len,
                 const HistContext& c, Visit&& visit, Nan&& nan) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, g.scalar_type(), "radix_cpu", [&] {
    const scalar_t* gp = g.const_data_ptr<scalar_t>() + begin;
    const scalar_t* bp = b != nullptr ? b->const_data_ptr<scalar_t>() + begin : nullptr;
    if (c.spec.stage == 1) {
      for_each_key<scalar_t, 1, true>(gp, bp, len, c, visit, nan);
    } else if (c.spec.key_bits == 64) {
      for_each_key<scalar_t, 0, true>(gp, bp, len, c, visit, nan);
    } else {
      for_each_key<scalar_t, 0, false>(gp, bp, len, c, visit, nan);
    }
  });
}

std::vector<Chunk> chunks_of(at::TensorList tensors) {
  std::vector<Chunk> chunks;
  for (size_t t = 0; t < tensors.size(); ++t) {
    const int64_t n = tensors[t].numel();
    for (int64_t b = 0; b < n; b += kChunk) {
      chunks.push_back({static_cast<int64_t>(t), b, std::min(n, b + kChunk)});
    }
  }
  return chunks;
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
  const std::vector<Chunk> chunks = chunks_of(grads);
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
  const int shift = radix::digit_shift(spec);
  const uint64_t mask = (uint64_t{1} << digit_bits) - 1;
  const int64_t stride = bins + 1;
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    const int t = at::get_thread_num();
    uint32_t* hist = local.data() + t * per_thread;
    for (int64_t i = lo; i < hi; ++i) {
      const Chunk& ch = chunks[i];
      const int64_t len = ch.end - ch.begin;
      if (pending[t] + len >= (int64_t{1} << 31)) flush(t);
      pending[t] += len;
      // Two interleaved histograms (kCopies) by element parity.
      visit_chunk(
          grads[ch.tensor], read_buffers ? &momentum_buffers[ch.tensor] : nullptr, ch.begin, len, c,
          [&](int64_t e, uint64_t key) {
            ++hist[(e & (kCopies - 1)) * stride + ((key >> shift) & mask)];
          },
          [&] { ++hist[bins]; });
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

bool finish_among_candidates_cpu(const SelectionSource& src, const at::Tensor& state,
                                 const at::Tensor& histogram, int64_t stage, int64_t pass,
                                 int64_t digit_bits, int64_t key_bits) {
  const radix::PassSpec spec{static_cast<int>(stage), static_cast<int>(pass),
                             static_cast<int>(digit_bits), static_cast<int>(key_bits)};
  const int64_t passes = radix::stage_key_bits(spec) / digit_bits;
  if (pass + 2 >= passes) return false;  // collecting is a pass too: two must remain
  int64_t* s = state.data_ptr<int64_t>();
  if (s[4] != 0) return false;  // NaN seen: the result is NaN whatever follows
  const int shift = radix::digit_shift(spec);
  const uint64_t prefix = static_cast<uint64_t>(s[2 * stage]);
  const int64_t bin = static_cast<int64_t>((prefix >> shift) & ((uint64_t{1} << digit_bits) - 1));
  const int64_t count = histogram.const_data_ptr<int64_t>()[bin];
  int64_t n = 0;
  for (const auto& t : src.grads) n += t.numel();
  for (const auto& t : src.first_step_grads) n += t.numel();
  if (count > std::max<int64_t>(int64_t{1} << 20, n >> 5)) return false;

  // The candidates are the elements whose key matches the prefix down to this pass's
  // digit: the same test as a histogram of the next pass, with the prefix already
  // extended by this pass. Each thread collects into its own vector.
  radix::PassSpec next = spec;
  next.pass = static_cast<int>(pass + 1);
  const double mu =
      radix::median_of_prefix(static_cast<uint64_t>(s[0]), static_cast<int>(key_bits));
  double scale = 1.0;
  if (src.grad_scale.has_value()) scale = src.grad_scale->item<double>();  // a CPU tensor
  // Exactly `count` keys are wanted: one array of that size, filled through small
  // per-thread buffers claimed with an atomic cursor (no growth, no merge copy).
  std::vector<uint64_t> keys(static_cast<size_t>(count));
  std::atomic<int64_t> cursor{0};
  constexpr int64_t kBuffer = 1024;
  auto claim = [&](const uint64_t* buf, int64_t len) {
    const int64_t at = cursor.fetch_add(len);
    TORCH_CHECK(at + len <= count, "softsign: internal error in the radix selection (more ",
                "candidates than counted)");
    std::copy(buf, buf + len, keys.data() + at);
  };
  auto collect = [&](at::TensorList grads, at::TensorList bufs, bool first_step) {
    if (grads.empty()) return;
    const HistContext c{
        StepScalars{src.momentum, src.dampening, 0.0, src.nesterov, src.maximize, first_step},
        scale,
        next,
        prefix,
        mu,
        int64_t{1} << digit_bits};
    const bool read_buffers = !bufs.empty() && src.momentum != 0.0;
    const std::vector<Chunk> chunks = chunks_of(grads);
    at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
      uint64_t buf[kBuffer];
      int64_t held = 0;
      for (int64_t i = lo; i < hi; ++i) {
        const Chunk& ch = chunks[i];
        visit_chunk(
            grads[ch.tensor], read_buffers ? &bufs[ch.tensor] : nullptr, ch.begin,
            ch.end - ch.begin, c,
            [&](int64_t, uint64_t key) {
              buf[held++] = key;
              if (held == kBuffer) {
                claim(buf, held);
                held = 0;
              }
            },
            [] {});
      }
      if (held > 0) claim(buf, held);
    });
  };
  collect(src.grads, src.momentum_buffers, /*first_step=*/false);
  collect(src.first_step_grads, {}, /*first_step=*/true);
  const int64_t rank = s[2 * stage + 1];
  TORCH_CHECK(cursor.load() == count && rank >= 0 && rank < count,
              "softsign: internal error in the radix selection (", cursor.load(), " candidates, ",
              count, " counted, rank ", rank, ")");
  std::nth_element(keys.begin(), keys.begin() + rank, keys.end());
  s[2 * stage] = static_cast<int64_t>(keys[static_cast<size_t>(rank)]);
  s[2 * stage + 1] = 0;
  return true;
}

TORCH_LIBRARY_IMPL(softsign, CPU, m) {
  m.impl("radix_select_histogram", &radix_select_histogram_cpu);
}

}  // namespace softsign::ops
