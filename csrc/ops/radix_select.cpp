// The device-side driver of the exact median/MAD selection (Note [radix selection] in
// radix_select.h): picking the bin of each pass, decoding the result, and running the
// passes. Built from ATen ops on the state tensor, so the host never reads a count.
#include "radix_select.h"

#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include <array>
#include <limits>
#include <vector>

#include "op_signatures.h"
#include "radix_select_contract.h"
#include "radix_select_driver.h"
#include "softsign/ops.h"

namespace softsign::ops {
namespace {

void check_selection_state(const at::Tensor& state) {
  TORCH_CHECK(state.scalar_type() == at::kLong && state.numel() == radix::kStateSize,
              "softsign: expected an int64 selection state of ", radix::kStateSize,
              " elements, got ", state.scalar_type(), " of ", state.numel());
}

}  // namespace

RadixPlan radix_plan(const c10::Device& device, bool wide_keys) {
  return RadixPlan{device.is_cpu() ? radix::kCpuDigitBits : radix::kDeviceDigitBits,
                   wide_keys ? 64 : 32};
}

namespace {

using BackendTable =
    std::array<SelectionBackend,
               static_cast<size_t>(c10::DeviceType::COMPILE_TIME_MAX_DEVICE_TYPES)>;

// Filled by the kernel files' initializers when the library loads, before any op runs; a
// function-local table, so it exists whichever file initializes first.
BackendTable& backends() {
  static BackendTable table;
  return table;
}

}  // namespace

bool register_selection_backend(c10::DeviceType type, const SelectionBackend& backend) {
  backends().at(static_cast<size_t>(type)) = backend;
  return true;
}

const SelectionBackend& selection_backend(c10::DeviceType type) {
  return backends().at(static_cast<size_t>(type));
}

radix::PassSpec check_radix_select_histogram(at::TensorList grads, at::TensorList momentum_buffers,
                                             const at::Tensor& state, int64_t stage, int64_t pass,
                                             int64_t digit_bits, int64_t key_bits,
                                             const std::optional<at::Tensor>& grad_scale) {
  TORCH_CHECK(stage == 0 || stage == 1, "softsign: expected stage 0 or 1, got ", stage);
  TORCH_CHECK(key_bits == 32 || key_bits == 64, "softsign: expected key_bits 32 or 64, got ",
              key_bits);
  TORCH_CHECK(digit_bits > 0 && 32 % digit_bits == 0,
              "softsign: expected digit_bits dividing 32, got ", digit_bits);
  const radix::PassSpec spec{static_cast<int>(stage), static_cast<int>(pass),
                             static_cast<int>(digit_bits), static_cast<int>(key_bits)};
  TORCH_CHECK(pass >= 0 && pass < radix::stage_passes(spec), "softsign: pass ", pass,
              " out of range for stage ", stage);
  check_selection_state(state);
  TORCH_CHECK(momentum_buffers.empty() || momentum_buffers.size() == grads.size(),
              "softsign: expected no momentum buffers or one per grad, got ",
              momentum_buffers.size(), " for ", grads.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    const at::Tensor& g = grads[i];
    TORCH_CHECK(g.device() == state.device(), "softsign: expected every tensor on ", state.device(),
                ", got ", g.device(), " at index ", i);
    TORCH_CHECK(
        g.layout() == at::kStrided && g.is_floating_point() && g.is_non_overlapping_and_dense(),
        "softsign: expected dense real floating tensors, got ", g.scalar_type(), " ", g.layout(),
        " at index ", i);
    if (!momentum_buffers.empty()) {
      const at::Tensor& b = momentum_buffers[i];
      TORCH_CHECK(b.device() == g.device() && b.scalar_type() == g.scalar_type() &&
                      b.sizes() == g.sizes() && b.strides() == g.strides(),
                  "softsign: expected momentum buffer like its grad at index ", i);
    }
  }
  if (grad_scale.has_value()) {
    TORCH_CHECK(grad_scale->numel() == 1 && grad_scale->device() == state.device(),
                "softsign: expected a one-element grad_scale on ", state.device());
  }
  return spec;
}

void check_radix_select_advance(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                                int64_t pass, int64_t digit_bits, int64_t key_bits) {
  check_selection_state(state);
  TORCH_CHECK(digit_bits > 0 && digit_bits <= 16 && 32 % digit_bits == 0,
              "softsign: expected digit_bits dividing 32, at most 16, got ", digit_bits);
  TORCH_CHECK(stage == 0 || stage == 1, "softsign: expected stage 0 or 1, got ", stage);
  TORCH_CHECK(key_bits == 32 || key_bits == 64, "softsign: expected key_bits 32 or 64, got ",
              key_bits);
  const RadixPlan plan{digit_bits, key_bits};
  TORCH_CHECK(histogram.numel() == plan.histogram_size() && histogram.scalar_type() == at::kLong,
              "softsign: expected an int64 histogram of ", plan.histogram_size(), " counts, got ",
              histogram.numel());
  TORCH_CHECK(pass >= 0 && pass < plan.passes(stage), "softsign: pass ", pass,
              " out of range for stage ", stage);
  TORCH_CHECK(histogram.device() == state.device(), "softsign: expected the histogram on ",
              state.device(), ", got ", histogram.device());
}

namespace {

bool any_double(at::TensorList a, at::TensorList b) {
  for (const at::TensorList list : {a, b}) {
    for (const auto& t : list) {
      if (t.scalar_type() == at::kDouble) return true;
    }
  }
  return false;
}

// [state_size, digit_bits, key_bits, passes of stage 0, passes of stage 1, histogram
// size]: what a driver outside C++ (softsign/_select.py) runs.
std::vector<int64_t> radix_select_plan_impl(c10::Device device, bool wide_keys) {
  const RadixPlan plan = radix_plan(device, wide_keys);
  return {radix::kStateSize, plan.digit_bits, plan.key_bits,
          plan.passes(0),    plan.passes(1),  plan.histogram_size()};
}

void radix_select_advance_impl(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                               int64_t pass, int64_t digit_bits, int64_t key_bits) {
  check_radix_select_advance(state, histogram, stage, pass, digit_bits, key_bits);
  const int64_t bins = int64_t{1} << digit_bits;
  const at::Tensor counts = histogram.narrow(0, 0, bins);
  const at::Tensor cum = counts.cumsum(0);
  at::Tensor rank;
  if (pass == 0) {
    // The wanted rank comes from the (possibly all-reduced) counts themselves.
    rank = at::clamp_min(at::div(cum[bins - 1] - 1, 2, "floor"), 0);
    const at::Tensor has_nan = (histogram[bins] > 0).to(at::kLong);
    state[4 + stage].copy_(at::maximum(state[4 + stage], has_nan));
  } else {
    rank = state[2 * stage + 1].clone();
  }
  const at::Tensor bin =
      at::searchsorted(cum, rank.reshape({1}), /*out_int32=*/false, /*right=*/true)
          .clamp_max(bins - 1);
  const at::Tensor below = (cum - counts).index_select(0, bin).reshape({});
  state[2 * stage + 1].copy_(rank - below);
  const int64_t shift = (stage == 0 ? key_bits : 64) - (pass + 1) * digit_bits;
  const at::Tensor digit = at::bitwise_left_shift(bin.reshape({}), shift);
  state[2 * stage].copy_(pass == 0 ? digit : at::bitwise_or(state[2 * stage], digit));
}

// Stage-0 (and stage-1) keys back to float64 values, with ATen integer ops on the device.
at::Tensor decode(const at::Tensor& key, int64_t key_bits) {
  if (key_bits == 64) {
    const at::Tensor bits =
        at::where(key < 0, at::bitwise_and(key, INT64_MAX), at::bitwise_not(key));
    return bits.view(at::kDouble);
  }
  const at::Tensor low = at::bitwise_and(key, 0xffffffffLL);
  at::Tensor bits = at::where(low >= 0x80000000LL, at::bitwise_and(low, 0x7fffffffLL),
                              at::bitwise_and(at::bitwise_not(low), 0xffffffffLL));
  bits = at::where(bits >= 0x80000000LL, bits - 0x100000000LL, bits);  // as int32
  return bits.to(at::kInt).view(at::kFloat).to(at::kDouble);
}

std::tuple<at::Tensor, at::Tensor> radix_select_result_impl(const at::Tensor& state,
                                                            int64_t key_bits) {
  check_selection_state(state);
  const at::Tensor nan =
      at::full({}, std::numeric_limits<double>::quiet_NaN(), state.options().dtype(at::kDouble));
  const at::Tensor nan_values = state[4] != 0;
  return {at::where(nan_values, nan, decode(state[0], key_bits)),
          at::where(at::logical_or(nan_values, state[5] != 0), nan, decode(state[2], 64))};
}

// The passes of Note [radix selection]; each histogram goes through the dispatcher, so the
// device's kernel runs it. `hook` (may be empty) sees every histogram before its bin is
// picked: all-reducing it there selects over every rank's values.
std::tuple<at::Tensor, at::Tensor> run_selection(const SelectionSource& src,
                                                 const HistogramHook& hook) {
  int64_t n = 0;
  for (const auto& t : src.grads) n += t.numel();
  for (const auto& t : src.first_step_grads) n += t.numel();
  TORCH_CHECK(!src.grads.empty() || !src.first_step_grads.empty(),
              "softsign: median_mad needs at least one tensor");
  TORCH_CHECK(n > 0 || hook, "softsign: median_mad needs at least one element");
  const at::Tensor& any = src.grads.empty() ? src.first_step_grads[0] : src.grads[0];
  // The device's own parts of the driver; a hook may sum other ranks' counts, whose
  // elements are not here to collect, so it gets neither.
  const SelectionBackend none;
  const SelectionBackend& backend = hook ? none : selection_backend(any.device().type());
  if (backend.select != nullptr) return backend.select(src);
  const RadixPlan plan =
      radix_plan(any.device(), hook || any_double(src.grads, src.first_step_grads));
  const int64_t digit_bits = plan.digit_bits, key_bits = plan.key_bits;
  const at::Tensor state = at::zeros({radix::kStateSize}, any.options().dtype(at::kLong));
  std::optional<at::Tensor> scale = src.grad_scale;
  if (scale.has_value()) scale = scale->to(any.device(), /*non_blocking=*/true);
  const at::TensorList buffers = reads_buffers(src) ? src.momentum_buffers : at::TensorList();
  for (int64_t stage = 0; stage < 2; ++stage) {
    for (int64_t pass = 0; pass < plan.passes(stage); ++pass) {
      at::Tensor hist = radix_select_histogram(src.grads, buffers, state, stage, pass, digit_bits,
                                               key_bits, src, /*first_step=*/false, scale);
      if (!src.first_step_grads.empty()) {
        hist.add_(radix_select_histogram(src.first_step_grads, {}, state, stage, pass, digit_bits,
                                         key_bits, src, /*first_step=*/true, scale));
      }
      if (hook) hook(hist);
      radix_select_advance_(state, hist, stage, pass, digit_bits, key_bits);
      if (backend.finish != nullptr &&
          backend.finish(src, state, hist, stage, pass, digit_bits, key_bits)) {
        break;
      }
    }
  }
  return radix_select_result(state, key_bits);
}

std::tuple<at::Tensor, at::Tensor> direction_median_mad_impl(
    at::TensorList grads, at::TensorList momentum_buffers, at::TensorList first_step_grads,
    double momentum, double dampening, bool nesterov, bool maximize,
    const std::optional<at::Tensor>& grad_scale, c10::string_view momentum_rule,
    at::ArrayRef<double> rule_coeffs) {
  // The histograms read a grad and its buffer with one index (Note [step layouts]):
  // dense copies where a grad is a strided view or its buffer is laid out otherwise.
  std::vector<at::Tensor> gs(grads.begin(), grads.end());
  std::vector<at::Tensor> bs(momentum_buffers.begin(), momentum_buffers.end());
  std::vector<at::Tensor> fs(first_step_grads.begin(), first_step_grads.end());
  for (size_t i = 0; i < gs.size(); ++i) {
    if (!gs[i].is_non_overlapping_and_dense()) gs[i] = gs[i].contiguous();
    if (i < bs.size() && bs[i].strides() != gs[i].strides()) {
      bs[i] = at::empty_like(gs[i]).copy_(bs[i]);
    }
  }
  for (auto& f : fs) {
    if (!f.is_non_overlapping_and_dense()) f = f.contiguous();
  }
  const SelectionSource src{gs,
                            bs,
                            fs,
                            momentum,
                            dampening,
                            nesterov,
                            maximize,
                            grad_scale,
                            std::string(momentum_rule),
                            rule_coeffs.vec()};
  return run_selection(src, nullptr);
}

std::tuple<at::Tensor, at::Tensor> median_mad_impl(at::TensorList tensors) {
  for (const auto& t : tensors) {
    TORCH_CHECK(!t.is_complex() && t.is_floating_point(),
                "softsign: median_mad expects real floating tensors, got ", t.scalar_type());
  }
  std::vector<at::Tensor> dense;
  dense.reserve(tensors.size());
  for (const auto& t : tensors)
    dense.push_back(t.is_non_overlapping_and_dense() ? t : t.contiguous());
  return run_selection(SelectionSource{dense, {}, {}, 0.0, 0.0, false, false, {}}, nullptr);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> direction_median_mad(const SelectionSource& src,
                                                        const HistogramHook& hook) {
  if (hook) return run_selection(src, hook);
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("softsign::direction_median_mad", "")
                       .typed<sig::DirectionMedianMad>();
  return op.call(src.grads, src.momentum_buffers, src.first_step_grads, src.momentum, src.dampening,
                 src.nesterov, src.maximize, src.grad_scale, src.momentum_rule, src.rule_coeffs);
}

std::tuple<at::Tensor, at::Tensor> median_mad(at::TensorList tensors, const HistogramHook& hook) {
  if (hook)
    return run_selection(SelectionSource{tensors, {}, {}, 0.0, 0.0, false, false, {}}, hook);
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("softsign::median_mad", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(at::TensorList)>();
  return op.call(tensors);
}

TORCH_LIBRARY_IMPL(softsign, CompositeExplicitAutograd, m) {
  m.impl("radix_select_plan", &radix_select_plan_impl);
  m.impl("radix_select_advance_", &radix_select_advance_impl);
  m.impl("radix_select_result", &radix_select_result_impl);
  m.impl("direction_median_mad", &direction_median_mad_impl);
  m.impl("median_mad", &median_mad_impl);
}

}  // namespace softsign::ops
