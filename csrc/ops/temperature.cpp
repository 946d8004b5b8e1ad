// The temperature fit (docs/algorithms.md section 3) as device-generic compositions of ATen
// ops: the direction statistic (materialized; the fit itself reads directions in place, see
// radix_select.h) and the fit with its status. Everything stays on the tensors' device: no
// host reads. Also the schedule's checks, which the temperature kernels share
// (temperature.h).
#include "temperature.h"

#include <ATen/ATen.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <type_traits>

#include "op_signatures.h"
#include "soft_sign_step.h"
#include "softsign/ops.h"

namespace softsign::ops {

double saturation_constant(const std::string& kind, double eps) {
  TORCH_CHECK(eps > 0.0 && eps < 1.0, "softsign: expected eps in (0, 1), got ", eps);
  const double y = 1.0 - eps;
  if (kind == "tanh") return std::atanh(y);
  if (kind == "algebraic") return y / std::sqrt(1.0 - y * y);
  TORCH_CHECK(false, "softsign: expected kind 'tanh' or 'algebraic', got '", kind, "'");
}

TemperatureRule temperature_rule(int64_t steps, double eps, int64_t newton_iters, double tmax,
                                 c10::string_view kind) {
  TORCH_CHECK(steps >= 1, "softsign: expected steps >= 1, got ", steps);
  TORCH_CHECK(newton_iters >= 0, "softsign: expected newton_iters >= 0, got ", newton_iters);
  TORCH_CHECK(tmax >= 1.0, "softsign: expected tmax >= 1, got ", tmax);
  return TemperatureRule{saturation_constant(std::string(kind), eps), newton_iters, tmax, steps};
}

std::pair<at::Tensor, at::Tensor> temperature_inputs(const at::Tensor& median,
                                                     const at::Tensor& mad) {
  TORCH_CHECK(median.numel() == 1 && mad.numel() == 1,
              "softsign: expected a 1-element median and MAD, got ", median.numel(), " and ",
              mad.numel(), " elements");
  TORCH_CHECK(median.device() == mad.device(), "softsign: expected the median and MAD on one ",
              "device, got ", median.device(), " and ", mad.device());
  TORCH_CHECK(at::isFloatingType(median.scalar_type()) && at::isFloatingType(mad.scalar_type()),
              "softsign: expected a floating median and MAD, got ", median.scalar_type(), " and ",
              mad.scalar_type());
  return {median.to(at::kDouble).contiguous(), mad.to(at::kDouble).contiguous()};
}

namespace {

at::ScalarType opmath_of(const at::Tensor& t) {
  return t.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

// Mirrors Note [soft-sign element math] with ATen ops, without writing anything.
sig::SoftSignDirection soft_sign_direction_impl;  // Note [one signature per op]

// The tensor arithmetic of Note [momentum rules]: a double coefficient times a tensor is
// computed in the tensor's dtype, as the kernels compute in their opmath type.
struct TensorMath {
  static at::Tensor mul(double c, const at::Tensor& t) { return c * t; }
  static at::Tensor add(const at::Tensor& a, const at::Tensor& b) { return a + b; }
};

// The rule's coefficients as the kernels round them in the opmath type `op`, held exactly
// in doubles (float32: 1 - float(x), not float(1 - x)).
template <typename Rule>
Coeffs<double> tensor_coeffs(const StepScalars& s, at::ScalarType op) {
  return op == at::kDouble ? Rule::template coeffs<double>(s)
                           : coeffs_as<double>(Rule::template coeffs<float>(s));
}

std::vector<at::Tensor> soft_sign_direction_impl(
    at::TensorList grads, at::TensorList momentum_buffers, double momentum, double dampening,
    bool nesterov, bool maximize, bool first_step, const std::optional<at::Tensor>& grad_scale,
    c10::string_view momentum_rule, at::ArrayRef<double> rule_coeffs) {
  TORCH_CHECK(momentum_buffers.empty() || momentum_buffers.size() == grads.size(),
              "softsign: expected one momentum buffer per grad or none, got ",
              momentum_buffers.size(), " for ", grads.size());
  const StepScalars s = step_scalars(momentum, dampening, 0.0, nesterov, maximize, first_step,
                                     momentum_rule, rule_coeffs);
  std::vector<at::Tensor> out;
  out.reserve(grads.size());
  with_form(s, [&](auto form) {
    using Form = decltype(form);
    for (size_t i = 0; i < grads.size(); ++i) {
      const auto op = opmath_of(grads[i]);
      at::Tensor g = grads[i].to(op);
      if (grad_scale.has_value()) g = g / grad_scale->to(op);
      if (maximize) g = -g;
      // A zero buffer where the kernels read none (first step, or no buffers passed).
      at::Tensor old = g;  // unread without a buffer
      if constexpr (Form::Rule::kBuffered) {
        old = Form::kReads && !momentum_buffers.empty() ? momentum_buffers[i].to(op)
                                                        : at::zeros_like(g);
      }
      at::Tensor d = Form::template direction<TensorMath>(
          g, old, static_cast<at::Tensor*>(nullptr), tensor_coeffs<typename Form::Rule>(s, op));
      // A fresh tensor even where d is the grad itself.
      out.push_back(d.is_same(grads[i]) ? d.clone() : d);
    }
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> fit_temperature_impl(
    const at::Tensor& median, const at::Tensor& mad, const std::optional<at::Tensor>& found_inf) {
  const at::Tensor mu = median.to(at::kDouble).reshape({});
  const at::Tensor s = mad.to(at::kDouble).reshape({});
  const auto f64 = mu.options();
  const at::Tensor non_finite = at::logical_not(at::isfinite(mu) & at::isfinite(s));
  auto code = [&](FitStatus st) { return at::full({}, static_cast<double>(st), f64); };
  at::Tensor status = at::where(non_finite, code(FitStatus::kNonFinite),
                                at::where(s == 0, code(FitStatus::kZeroMad), code(FitStatus::kOk)));
  if (found_inf.has_value()) {
    status =
        at::where(found_inf->to(mu.device()).reshape({}) != 0, code(FitStatus::kPending), status);
  }
  const at::Tensor usable = (status == static_cast<double>(FitStatus::kOk)) |
                            (status == static_cast<double>(FitStatus::kZeroMad));
  const at::Tensor fit = at::where(usable, at::stack({mu, s}),
                                   at::full({}, std::numeric_limits<double>::quiet_NaN(), f64));
  return {at::stack({mu, s, status}), fit};
}

static_assert(std::is_same_v<decltype(fit_temperature_impl), sig::FitTemperature>);

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CompositeExplicitAutograd, m) {
  m.impl("soft_sign_direction", &soft_sign_direction_impl);
  m.impl("fit_temperature", &fit_temperature_impl);
}

}  // namespace softsign::ops
