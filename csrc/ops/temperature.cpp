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

// 1 - x as the kernels form it: in the opmath type (float32: 1 - float(x)).
double one_minus(double x, at::ScalarType op) {
  return op == at::kDouble ? 1.0 - x : static_cast<double>(1.0f - static_cast<float>(x));
}

std::vector<at::Tensor> soft_sign_direction_impl(at::TensorList grads,
                                                 at::TensorList momentum_buffers, double momentum,
                                                 double dampening, bool nesterov, bool maximize,
                                                 bool first_step,
                                                 const std::optional<at::Tensor>& grad_scale,
                                                 std::optional<double> lion_beta1) {
  TORCH_CHECK(momentum_buffers.empty() || momentum_buffers.size() == grads.size(),
              "softsign: expected one momentum buffer per grad or none, got ",
              momentum_buffers.size(), " for ", grads.size());
  std::vector<at::Tensor> out;
  out.reserve(grads.size());
  for (size_t i = 0; i < grads.size(); ++i) {
    const auto op = opmath_of(grads[i]);
    at::Tensor g = grads[i].to(op);
    if (grad_scale.has_value()) g = g / grad_scale->to(op);
    if (maximize) g = -g;
    if (lion_beta1.has_value()) {  // Note [lion rule]: the buffer before its update
      const at::Tensor mixed = one_minus(*lion_beta1, op) * g;
      out.push_back(first_step || momentum_buffers.empty()
                        ? *lion_beta1 * at::zeros_like(g) + mixed
                        : *lion_beta1 * momentum_buffers[i].to(op) + mixed);
      continue;
    }
    if (momentum == 0.0) {
      out.push_back(g.clone());  // a fresh tensor even when g is the grad itself
      continue;
    }
    const double undamped = one_minus(dampening, op);
    const at::Tensor buf = first_step ? g : momentum * momentum_buffers[i].to(op) + undamped * g;
    out.push_back(nesterov ? g + momentum * buf : buf.clone());
  }
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
