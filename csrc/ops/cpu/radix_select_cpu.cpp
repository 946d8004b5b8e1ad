// CPU entry of softsign::radix_select_histogram and the CPU driver's candidate finish:
// validation, the pass context read from the CPU state, and the kernel build for this CPU
// (radix_select_kernel.h).
//
// Note [candidate finish]
// Every histogram pass reads all grads and buffers, but after the first pass of a stage
// only the elements in the chosen bin can still be the answer: for 124M Gaussian
// directions, about 1.8M are left after the first MAD pass, and a few dozen after the
// second. On the CPU the driver can read that count for free (no device to wait on). When
// it is small, one more pass collects the candidates' keys, and std::nth_element picks the
// wanted rank among them. The MAD stage then takes 2 full passes instead of 4, and the
// result is the same key (so the same value) the remaining passes would have picked. The
// extra memory is 8 bytes per candidate, at most max(2^20, n / 32) of them. The finish is
// the CPU's part of the driver (SelectionBackend in radix_select_driver.h).
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <vector>

#include "cpu/capability.h"
#include "cpu/radix_select_kernel.h"
#include "op_signatures.h"
#include "radix_select_contract.h"
#include "radix_select_driver.h"

namespace softsign::ops {
namespace {

void histogram(at::TensorList grads, at::TensorList bufs, const RadixContext& c, int64_t* hist) {
  SOFTSIGN_CPU_DISPATCH(radix_histogram_kernel, grads, bufs, c, hist);
}

void collect(at::TensorList grads, at::TensorList bufs, const RadixContext& c,
             const KeySink& sink) {
  SOFTSIGN_CPU_DISPATCH(radix_collect_kernel, grads, bufs, c, sink);
}

double mu_of(const int64_t* state, int64_t key_bits) {
  return radix::median_of_prefix(static_cast<uint64_t>(state[0]), static_cast<int>(key_bits));
}

sig::RadixSelectHistogram radix_select_histogram_cpu;  // Note [one signature per op]

at::Tensor radix_select_histogram_cpu(at::TensorList grads, at::TensorList momentum_buffers,
                                      const at::Tensor& state, int64_t stage, int64_t pass,
                                      int64_t digit_bits, int64_t key_bits, double momentum,
                                      double dampening, bool nesterov, bool maximize,
                                      bool first_step, const std::optional<at::Tensor>& grad_scale,
                                      c10::string_view momentum_rule,
                                      at::ArrayRef<double> rule_coeffs) {
  const radix::PassSpec spec = check_radix_select_histogram(grads, momentum_buffers, state, stage,
                                                            pass, digit_bits, key_bits, grad_scale);
  TORCH_CHECK(digit_bits == 8 || digit_bits == 16,
              "softsign: the CPU radix selection takes digit_bits 8 or 16, got ", digit_bits);
  const auto st = state.contiguous();
  const int64_t* s = st.const_data_ptr<int64_t>();
  const RadixContext c{
      step_scalars(momentum, dampening, 0.0, nesterov, maximize, first_step, momentum_rule,
                   rule_coeffs),
      grad_scale.has_value() ? grad_scale->item<double>() : 1.0,  // a CPU tensor: no sync
      spec, static_cast<uint64_t>(s[2 * stage]), mu_of(s, key_bits)};
  at::Tensor out = at::zeros({(int64_t{1} << digit_bits) + 1}, state.options());
  histogram(grads, momentum_buffers, c, out.data_ptr<int64_t>());
  return out;
}

// After `pass` of `stage` has been advanced on the CPU `state` from `histogram` (the
// pass's summed counts): if collecting saves at least one pass (two or more remain) and
// the chosen bin holds few enough candidates, finishes the stage (writes the selected key,
// remaining rank 0) and returns true; otherwise leaves the state alone and returns false.
bool finish_among_candidates_cpu(const SelectionSource& src, const at::Tensor& state,
                                 const at::Tensor& histogram, int64_t stage, int64_t pass,
                                 int64_t digit_bits, int64_t key_bits) {
  const radix::PassSpec spec{static_cast<int>(stage), static_cast<int>(pass),
                             static_cast<int>(digit_bits), static_cast<int>(key_bits)};
  // Collecting is a pass too: two must remain.
  if (pass + 2 >= radix::stage_passes(spec)) return false;
  int64_t* s = state.data_ptr<int64_t>();
  // NaN seen (a NaN value, or |x - mu| of an infinite median): that result is NaN whatever
  // follows, and the NaN elements are not among the counted candidates.
  if (s[4] != 0 || s[5] != 0) return false;
  const int shift = radix::digit_shift(spec);
  const uint64_t prefix = static_cast<uint64_t>(s[2 * stage]);
  const int64_t bin = static_cast<int64_t>((prefix >> shift) & ((uint64_t{1} << digit_bits) - 1));
  const int64_t count = histogram.const_data_ptr<int64_t>()[bin];
  int64_t n = 0;
  for (const auto& t : src.grads) n += t.numel();
  for (const auto& t : src.first_step_grads) n += t.numel();
  if (count > std::max<int64_t>(int64_t{1} << 20, n >> 5)) return false;

  // The candidates match the prefix down to this pass's digit: the test of a histogram of
  // the next pass, whose prefix is already extended by this one.
  radix::PassSpec next = spec;
  next.pass = static_cast<int>(pass + 1);
  const double scale = src.grad_scale.has_value() ? src.grad_scale->item<double>() : 1.0;
  std::vector<uint64_t> keys(static_cast<size_t>(count));
  std::atomic<int64_t> cursor{0};
  const KeySink sink{keys.data(), count, &cursor};
  // Grads with buffers, then those whose buffers start this step: one context each.
  auto context = [&](bool first_step) {
    return RadixContext{scalars_of(src, first_step), scale, next, prefix, mu_of(s, key_bits)};
  };
  if (!src.grads.empty()) {
    collect(src.grads, reads_buffers(src) ? src.momentum_buffers : at::TensorList(), context(false),
            sink);
  }
  if (!src.first_step_grads.empty()) collect(src.first_step_grads, {}, context(true), sink);
  const int64_t rank = s[2 * stage + 1];
  TORCH_CHECK(cursor.load() == count && rank >= 0 && rank < count,
              "softsign: internal error in the radix selection (", cursor.load(), " candidates, ",
              count, " counted, rank ", rank, ")");
  std::nth_element(keys.begin(), keys.begin() + rank, keys.end());
  s[2 * stage] = static_cast<int64_t>(keys[static_cast<size_t>(rank)]);
  s[2 * stage + 1] = 0;
  return true;
}

[[maybe_unused]] const bool registered =
    register_selection_backend(c10::DeviceType::CPU, {nullptr, &finish_among_candidates_cpu});

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CPU, m) {
  m.impl("radix_select_histogram", &radix_select_histogram_cpu);
}

}  // namespace softsign::ops
