// Shared by the CPU and CUDA kernels of softsign::soft_sign_step_: the input contract
// check and the element math. Note [soft-sign element math]: both kernels and the
// composite soft_sign_direction compute exactly this, in float32 registers. The momentum
// rules live in momentum_rules.h (Note [momentum rules]): the CPU kernels and the composite
// call them; the CUDA kernels call momentum_direction there, the same rules in one formula.
// test_ops.py holds them to the reference, the cuda_host suite the CUDA kernels to the CPU.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cmath>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "momentum_rules.h"
#include "op_signatures.h"

namespace softsign::ops {

// The kernels' scalars of a call: the rule looked up by name in kRuleSpecs (Note [momentum
// rules]) and its coefficients checked against it, before anything is read or written.
inline StepScalars step_scalars(double momentum, double dampening, double weight_decay,
                                bool nesterov, bool maximize, bool first_step,
                                c10::string_view momentum_rule, at::ArrayRef<double> rule_coeffs) {
  StepScalars s{momentum, dampening, weight_decay, nesterov, maximize, first_step};
  const RuleSpec* spec = nullptr;
  for (const RuleSpec& r : kRuleSpecs) {
    if (momentum_rule == r.name) spec = &r;
  }
  if (spec == nullptr) {
    std::string known;
    for (const RuleSpec& r : kRuleSpecs) known += (known.empty() ? "" : ", ") + std::string(r.name);
    TORCH_CHECK(false, "softsign: unknown momentum_rule '", momentum_rule, "', expected one of ",
                known);
  }
  TORCH_CHECK(static_cast<int>(rule_coeffs.size()) == spec->coeffs, "softsign: momentum_rule '",
              spec->name, "' takes ", spec->coeffs, " rule_coeffs, got ", rule_coeffs.size());
  TORCH_CHECK(spec->nesterov || !nesterov, "softsign: momentum_rule '", spec->name,
              "' has no Nesterov form: expected nesterov=False");
  s.rule = spec->id;
  for (size_t i = 0; i < rule_coeffs.size(); ++i) s.coeffs[i] = rule_coeffs[i];
  return s;
}

// Validates a soft_sign_step_ call (lists, shapes, devices, dtypes, optional scalars).
// Throws before anything is written.
void check_soft_sign_step(at::TensorList params, at::TensorList grads,
                          at::TensorList momentum_buffers, const StepScalars& s,
                          const std::optional<at::Tensor>& lr_tensor,
                          const std::optional<at::Tensor>& temperature,
                          const std::optional<at::Tensor>& grad_scale,
                          const std::optional<at::Tensor>& found_inf);

// One soft_sign_step_ call, its scalars formed and its inputs checked: what each device's
// entry steps.
struct SoftSignStepCall {
  at::TensorList params, grads, momentum_buffers;
  StepScalars s;
  double lr;
  const std::optional<at::Tensor>& lr_tensor;
  const std::optional<at::Tensor>& temperature;
  const std::optional<at::Tensor>& grad_scale;
  const std::optional<at::Tensor>& found_inf;
};

// The op's function (Note [one signature per op] in op_signatures.h) over a device's
// entry `run`: forms the kernels' scalars and validates the call before `run` steps it.
template <auto run>
void soft_sign_step_entry(SOFTSIGN_SOFT_SIGN_STEP_PARAMS) {
  const StepScalars s = step_scalars(momentum, dampening, weight_decay, nesterov, maximize,
                                     first_step, momentum_rule, rule_coeffs);
  check_soft_sign_step(params, grads, momentum_buffers, s, lr_tensor, temperature, grad_scale,
                       found_inf);
  run(SoftSignStepCall{params, grads, momentum_buffers, s, lr, lr_tensor, temperature, grad_scale,
                       found_inf});
}

// Note [step layouts]: the kernels walk a param, its grad and its buffer with one index,
// so they need dense params whose grad and buffer share their strides. That is the common
// case and costs one scan. Otherwise (a strided view as a parameter, a grad assigned with
// other strides, buffers made before the model went channels_last) the call steps dense
// stand-ins and copies them back: the same values as stepping a contiguous copy, never an
// error halfway through a step.
class StepLayout {
 public:
  StepLayout(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers);
  at::TensorList params() const { return copied_ ? at::TensorList(params_) : orig_params_; }
  at::TensorList grads() const { return copied_ ? at::TensorList(grads_) : orig_grads_; }
  at::TensorList momentum_buffers() const { return copied_ ? at::TensorList(bufs_) : orig_bufs_; }
  // Copies the stepped stand-ins into the caller's params and buffers (queued on the
  // device's stream: no wait).
  void write_back() const;

 private:
  at::TensorList orig_params_, orig_grads_, orig_bufs_;
  std::vector<at::Tensor> params_, grads_, bufs_;
  bool copied_ = false;
};

// sign(d) (with sign(0) = 0, as torch.sign) when soft is false, else tanh(tau * d).
template <typename T>
C10_HOST_DEVICE inline T soft_sign(T d, bool soft, T tau) {
  if (soft) return std::tanh(tau * d);
  return static_cast<T>((d > T(0)) - (d < T(0)));
}

// Note [temperature range]: one call has one outcome. A float64 temperature beyond
// float32's range (1e39, say) is finite for float64 tensors and inf for the others, where
// tanh(inf * 0) would write NaN. So the call decides once, from the narrowest math type
// among its tensors, before any tensor is touched, and both devices decide alike: the
// temperature must be finite in float32 when any tensor computes in float32 (float32,
// bfloat16, float16), in float64 otherwise. An unusable temperature makes the whole call
// a no-op, as a failed fit's NaN does.
C10_HOST_DEVICE inline bool temperature_usable(double tau, bool float_math) {
  // float(tau) is finite iff |tau| < 2^128 - 2^103: halfway between FLT_MAX and 2^128,
  // round-to-nearest-even goes up to infinity. Written so that NaN gives false.
  constexpr double kFloatBound = (0x1p25 - 1.0) * 0x1p103;
  const double a = tau < 0 ? -tau : tau;
  return float_math ? a < kFloatBound : a <= 0x1.fffffffffffffp1023;
}

// Whether any tensor of a call computes in float32 (its opmath type); an empty tensor
// computes nothing and does not count.
inline bool computes_in_float(at::TensorList params) {
  for (const auto& p : params) {
    if (p.numel() > 0 && p.scalar_type() != at::kDouble) return true;
  }
  return false;
}

// New parameter value: decoupled weight decay before the update, one rounding at the end.
template <typename T>
C10_HOST_DEVICE inline T apply_update(T p, T u, T lr, T weight_decay) {
  const T decay = T(1) - mul_rn(lr, weight_decay);
  return add_rn(mul_rn(p, decay), -mul_rn(lr, u));
}

}  // namespace softsign::ops
