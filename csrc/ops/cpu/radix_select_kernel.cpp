// CPU kernel of softsign::radix_select_histogram (Note [radix selection] in
// radix_select.h): one pass over the directions of every tensor, read in place, each
// thread counting into its own histogram; the histograms are summed at the end.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
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

template <typename scalar_t>
void count_chunk(const scalar_t* g, const scalar_t* b, int64_t n, const HistContext& c,
                 int64_t* hist) {
  using opmath_t = at::opmath_type<scalar_t>;
  const opmath_t scale = static_cast<opmath_t>(c.grad_scale);
  for (int64_t i = 0; i < n; ++i) {
    opmath_t g_i = static_cast<opmath_t>(g[i]) / scale;
    if (c.step.maximize) g_i = -g_i;
    opmath_t buf = b != nullptr ? static_cast<opmath_t>(b[i]) : opmath_t(0);
    const opmath_t d = momentum_direction(g_i, buf, c.step);
    const int64_t bin = radix::bin_of_value(d, c.prefix, c.mu, c.spec);
    if (bin >= 0) {
      ++hist[bin];
    } else if (bin == -2) {
      ++hist[c.bins];
    }
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
  const int threads = at::get_num_threads();
  std::vector<int64_t> local(static_cast<size_t>(threads) * (bins + 1), 0);
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), 1, [&](int64_t lo, int64_t hi) {
    int64_t* hist = local.data() + static_cast<size_t>(at::get_thread_num()) * (bins + 1);
    for (int64_t i = lo; i < hi; ++i) {
      const Chunk& ch = chunks[i];
      const at::Tensor& g = grads[ch.tensor];
      AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, g.scalar_type(), "radix_cpu", [&] {
        const scalar_t* b = read_buffers
                                ? momentum_buffers[ch.tensor].const_data_ptr<scalar_t>() + ch.begin
                                : nullptr;
        count_chunk(g.const_data_ptr<scalar_t>() + ch.begin, b, ch.end - ch.begin, c, hist);
      });
    }
  });
  at::Tensor out = at::zeros({bins + 1}, state.options());
  int64_t* o = out.data_ptr<int64_t>();
  for (int t = 0; t < threads; ++t) {
    const int64_t* h = local.data() + static_cast<size_t>(t) * (bins + 1);
    for (int64_t i = 0; i <= bins; ++i) o[i] += h[i];
  }
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CPU, m) {
  m.impl("radix_select_histogram", &radix_select_histogram_cpu);
}

}  // namespace softsign::ops
