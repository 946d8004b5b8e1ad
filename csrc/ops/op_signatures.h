// Note [one signature per op]: the C++ function type of every op with more than one
// implementation, matching its schema in registry.cpp argument for argument. Each kernel
// entry is declared with its op's type (`sig::SoftSignStep soft_sign_step_cpu;`) and the
// registry calls through `typed<sig::...>()`, so a kernel whose parameters drift from the
// schema fails to compile instead of failing at the first call.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <tuple>
#include <vector>

namespace softsign::ops::sig {

// soft_sign_step_'s parameters, named: its one definition (soft_sign_step_entry in
// soft_sign_step.h, over each device's entry) is written with them.
// clang-format off
#define SOFTSIGN_SOFT_SIGN_STEP_PARAMS                                                       \
  at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,              \
  double lr, const std::optional<at::Tensor>& lr_tensor, double momentum,                    \
  double dampening, double weight_decay, bool nesterov, bool maximize, bool first_step,      \
  const std::optional<at::Tensor>& temperature, const std::optional<at::Tensor>& grad_scale, \
  const std::optional<at::Tensor>& found_inf, c10::string_view momentum_rule,              \
  at::ArrayRef<double> rule_coeffs
// clang-format on
using SoftSignStep = void(SOFTSIGN_SOFT_SIGN_STEP_PARAMS);

using SoftSignDirection = std::vector<at::Tensor>(
    at::TensorList grads, at::TensorList momentum_buffers, double momentum, double dampening,
    bool nesterov, bool maximize, bool first_step, const std::optional<at::Tensor>& grad_scale,
    c10::string_view momentum_rule, at::ArrayRef<double> rule_coeffs);

using DirectionMedianMad = std::tuple<at::Tensor, at::Tensor>(
    at::TensorList grads, at::TensorList momentum_buffers, at::TensorList first_step_grads,
    double momentum, double dampening, bool nesterov, bool maximize,
    const std::optional<at::Tensor>& grad_scale, c10::string_view momentum_rule,
    at::ArrayRef<double> rule_coeffs);

using RadixSelectHistogram = at::Tensor(
    at::TensorList grads, at::TensorList momentum_buffers, const at::Tensor& state, int64_t stage,
    int64_t pass, int64_t digit_bits, int64_t key_bits, double momentum, double dampening,
    bool nesterov, bool maximize, bool first_step, const std::optional<at::Tensor>& grad_scale,
    c10::string_view momentum_rule, at::ArrayRef<double> rule_coeffs);

using RadixSelectAdvance = void(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                                int64_t pass, int64_t digit_bits, int64_t key_bits);

using TemperatureSchedule = at::Tensor(const at::Tensor& median, const at::Tensor& mad,
                                       int64_t steps, double eps, int64_t newton_iters, double tmax,
                                       c10::string_view kind);

using TemperatureAt = at::Tensor(const at::Tensor& median, const at::Tensor& mad, int64_t index,
                                 int64_t steps, double eps, int64_t newton_iters, double tmax,
                                 c10::string_view kind);

using FitTemperature = std::tuple<at::Tensor, at::Tensor>(
    const at::Tensor& median, const at::Tensor& mad, const std::optional<at::Tensor>& found_inf);

}  // namespace softsign::ops::sig
