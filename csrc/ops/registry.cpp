// The one place that spells softsign's op schemas, and the C++ op API over them.
// Kernels register implementations in their own files (TORCH_LIBRARY_IMPL); a CPU-only
// build simply has no CUDA file.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "op_signatures.h"
#include "softsign/ops.h"

TORCH_LIBRARY(softsign, m) {
  m.def(
      "soft_sign_step_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, *, "
      "float lr, Tensor? lr_tensor, float momentum, float dampening, float weight_decay, "
      "bool nesterov, bool maximize, bool first_step, Tensor? temperature, "
      "Tensor? grad_scale, Tensor? found_inf, str momentum_rule=\"heavy_ball\", float[] "
      "rule_coeffs=[]) -> ()");
  m.def(
      "soft_sign_direction(Tensor[] grads, Tensor[] momentum_buffers, *, float momentum, "
      "float dampening, bool nesterov, bool maximize, bool first_step, Tensor? grad_scale, "
      "str momentum_rule=\"heavy_ball\", float[] rule_coeffs=[]) -> Tensor[]");
  m.def("median_mad(Tensor[] tensors) -> (Tensor, Tensor)");
  m.def(
      "direction_median_mad(Tensor[] grads, Tensor[] momentum_buffers, "
      "Tensor[] first_step_grads, *, float momentum, float dampening, bool nesterov, "
      "bool maximize, Tensor? grad_scale, str momentum_rule=\"heavy_ball\", float[] "
      "rule_coeffs=[]) -> (Tensor, Tensor)");
  m.def(
      "radix_select_histogram(Tensor[] grads, Tensor[] momentum_buffers, Tensor state, *, "
      "int stage, int pass_, int digit_bits, int key_bits, float momentum, float dampening, "
      "bool nesterov, bool maximize, bool first_step, Tensor? grad_scale, "
      "str momentum_rule=\"heavy_ball\", float[] rule_coeffs=[]) -> Tensor");
  m.def("radix_select_plan(Device device, *, bool wide_keys) -> int[]");
  m.def(
      "radix_select_advance_(Tensor(a!) state, Tensor histogram, *, int stage, int pass_, "
      "int digit_bits, int key_bits) -> ()");
  m.def("radix_select_result(Tensor state, *, int key_bits) -> (Tensor, Tensor)");
  m.def(
      "temperature_schedule(Tensor median, Tensor mad, int steps, *, float eps, "
      "int newton_iters, float tmax, str kind) -> Tensor");
  m.def(
      "temperature_at(Tensor median, Tensor mad, int index, int steps, *, float eps, "
      "int newton_iters, float tmax, str kind) -> Tensor");
  m.def("fit_temperature(Tensor median, Tensor mad, *, Tensor? found_inf) -> (Tensor, Tensor)");
  m.def("newton_schulz5(Tensor matrices, *, int steps=5) -> Tensor");
  m.def(
      "soft_spectral_map(Tensor matrices, Tensor tau, *, str method=\"newton_schulz\", "
      "int steps=5) -> Tensor");
  m.def("singular_values(Tensor[] tensors) -> Tensor[]");
  m.def(
      "muon_step_(Tensor(a!)[] params, Tensor[] grads, Tensor(b!)[] momentum_buffers, *, "
      "float lr, float momentum, bool nesterov, float weight_decay, int ns_steps, "
      "str adjust_lr, Tensor? temperature, str soft_map, int soft_steps, "
      "Tensor? found_inf=None) -> ()");
  m.def(
      "muon_momentum_(Tensor[] grads, Tensor(a!)[] momentum_buffers, Tensor(b!)[] directions, "
      "*, float momentum, bool nesterov, Tensor? found_inf=None) -> ()");
  m.def(
      "muon_orthogonalize(Tensor[] directions, *, int ns_steps, Tensor? temperature, "
      "str soft_map, int soft_steps) -> Tensor[]");
  m.def(
      "muon_apply_(Tensor(a!)[] params, Tensor[] updates, *, float lr, float weight_decay, "
      "str adjust_lr, int[]? matrix_dims=None, Tensor? found_inf=None) -> ()");
}

namespace softsign::ops {
namespace {

c10::OperatorHandle find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

}  // namespace

void soft_sign_step_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                     const SoftSignStepArgs& args, const std::optional<at::Tensor>& lr_tensor,
                     const std::optional<at::Tensor>& temperature,
                     const std::optional<at::Tensor>& grad_scale,
                     const std::optional<at::Tensor>& found_inf) {
  static auto op = find_op("softsign::soft_sign_step_").typed<sig::SoftSignStep>();
  op.call(params, grads, momentum_buffers, args.lr, lr_tensor, args.momentum, args.dampening,
          args.weight_decay, args.nesterov, args.maximize, args.first_step, temperature, grad_scale,
          found_inf, args.momentum_rule, args.rule_coeffs);
}

std::vector<at::Tensor> soft_sign_direction(at::TensorList grads, at::TensorList momentum_buffers,
                                            const SoftSignStepArgs& args,
                                            const std::optional<at::Tensor>& grad_scale) {
  static auto op = find_op("softsign::soft_sign_direction").typed<sig::SoftSignDirection>();
  return op.call(grads, momentum_buffers, args.momentum, args.dampening, args.nesterov,
                 args.maximize, args.first_step, grad_scale, args.momentum_rule, args.rule_coeffs);
}

at::Tensor radix_select_histogram(at::TensorList grads, at::TensorList momentum_buffers,
                                  const at::Tensor& state, int64_t stage, int64_t pass,
                                  int64_t digit_bits, int64_t key_bits,
                                  const SelectionSource& options, bool first_step,
                                  const std::optional<at::Tensor>& grad_scale) {
  static auto op = find_op("softsign::radix_select_histogram").typed<sig::RadixSelectHistogram>();
  return op.call(grads, momentum_buffers, state, stage, pass, digit_bits, key_bits,
                 options.momentum, options.dampening, options.nesterov, options.maximize,
                 first_step, grad_scale, options.momentum_rule, options.rule_coeffs);
}

std::vector<int64_t> radix_select_plan(c10::Device device, bool wide_keys) {
  static auto op =
      find_op("softsign::radix_select_plan").typed<std::vector<int64_t>(c10::Device, bool)>();
  return op.call(device, wide_keys);
}

void radix_select_advance_(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                           int64_t pass, int64_t digit_bits, int64_t key_bits) {
  static auto op = find_op("softsign::radix_select_advance_").typed<sig::RadixSelectAdvance>();
  op.call(state, histogram, stage, pass, digit_bits, key_bits);
}

std::tuple<at::Tensor, at::Tensor> radix_select_result(const at::Tensor& state, int64_t key_bits) {
  static auto op = find_op("softsign::radix_select_result")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, int64_t)>();
  return op.call(state, key_bits);
}

at::Tensor temperature_schedule(const at::Tensor& median, const at::Tensor& mad, int64_t steps,
                                double eps, int64_t newton_iters, double tmax,
                                const std::string& kind) {
  static auto op = find_op("softsign::temperature_schedule").typed<sig::TemperatureSchedule>();
  return op.call(median, mad, steps, eps, newton_iters, tmax, kind);
}

at::Tensor temperature_at(const at::Tensor& median, const at::Tensor& mad, int64_t index,
                          int64_t steps, double eps, int64_t newton_iters, double tmax,
                          const std::string& kind) {
  static auto op = find_op("softsign::temperature_at").typed<sig::TemperatureAt>();
  return op.call(median, mad, index, steps, eps, newton_iters, tmax, kind);
}

std::tuple<at::Tensor, at::Tensor> fit_temperature(const at::Tensor& median, const at::Tensor& mad,
                                                   const std::optional<at::Tensor>& found_inf) {
  static auto op = find_op("softsign::fit_temperature").typed<sig::FitTemperature>();
  return op.call(median, mad, found_inf);
}

at::Tensor newton_schulz5(const at::Tensor& matrices, int64_t steps) {
  static auto op =
      find_op("softsign::newton_schulz5").typed<at::Tensor(const at::Tensor&, int64_t)>();
  return op.call(matrices, steps);
}

at::Tensor soft_spectral_map(const at::Tensor& matrices, const at::Tensor& tau,
                             const std::string& method, int64_t steps) {
  static auto op =
      find_op("softsign::soft_spectral_map")
          .typed<at::Tensor(const at::Tensor&, const at::Tensor&, c10::string_view, int64_t)>();
  return op.call(matrices, tau, method, steps);
}

std::vector<at::Tensor> singular_values(at::TensorList tensors) {
  static auto op =
      find_op("softsign::singular_values").typed<std::vector<at::Tensor>(at::TensorList)>();
  return op.call(tensors);
}

void muon_step_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                const MuonStepArgs& args, const std::optional<at::Tensor>& temperature,
                const std::optional<at::Tensor>& found_inf) {
  static auto op =
      find_op("softsign::muon_step_")
          .typed<void(at::TensorList, at::TensorList, at::TensorList, double, double, bool, double,
                      int64_t, c10::string_view, const std::optional<at::Tensor>&, c10::string_view,
                      int64_t, const std::optional<at::Tensor>&)>();
  op.call(params, grads, momentum_buffers, args.lr, args.momentum, args.nesterov, args.weight_decay,
          args.ns_steps, args.adjust_lr, temperature, args.soft_map, args.soft_steps, found_inf);
}

void muon_momentum_(at::TensorList grads, at::TensorList momentum_buffers,
                    at::TensorList directions, const MuonStepArgs& args,
                    const std::optional<at::Tensor>& found_inf) {
  static auto op = find_op("softsign::muon_momentum_")
                       .typed<void(at::TensorList, at::TensorList, at::TensorList, double, bool,
                                   const std::optional<at::Tensor>&)>();
  op.call(grads, momentum_buffers, directions, args.momentum, args.nesterov, found_inf);
}

std::vector<at::Tensor> muon_orthogonalize(at::TensorList directions, const MuonStepArgs& args,
                                           const std::optional<at::Tensor>& temperature) {
  static auto op =
      find_op("softsign::muon_orthogonalize")
          .typed<std::vector<at::Tensor>(at::TensorList, int64_t, const std::optional<at::Tensor>&,
                                         c10::string_view, int64_t)>();
  return op.call(directions, args.ns_steps, temperature, args.soft_map, args.soft_steps);
}

void muon_apply_(at::TensorList params, at::TensorList updates, const MuonStepArgs& args,
                 at::OptionalIntArrayRef matrix_dims, const std::optional<at::Tensor>& found_inf) {
  static auto op = find_op("softsign::muon_apply_")
                       .typed<void(at::TensorList, at::TensorList, double, double, c10::string_view,
                                   at::OptionalIntArrayRef, const std::optional<at::Tensor>&)>();
  op.call(params, updates, args.lr, args.weight_decay, args.adjust_lr, matrix_dims, found_inf);
}

}  // namespace softsign::ops
