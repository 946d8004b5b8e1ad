// The temperature ops' entries, shared by the CPU and CUDA registrations: argument checks
// and output allocation around one device's `range` function, which writes
// tau_first, tau_first+1, ... into `out` (quantile_temperature over indices).
#pragma once

#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <type_traits>

#include "op_signatures.h"
#include "temperature_math.h"

namespace softsign::ops {

// Checks the schedule options (the same bounds as the optimizers' options) and forms the
// rule the kernels read.
TemperatureRule temperature_rule(int64_t steps, double eps, int64_t newton_iters, double tmax,
                                 c10::string_view kind);

// median and mad as contiguous 1-element float64 tensors on one device (a device-side
// conversion: nothing is read on the host).
std::pair<at::Tensor, at::Tensor> temperature_inputs(const at::Tensor& median,
                                                     const at::Tensor& mad);

// Writes tau_{first + i} for i < out.numel() into out (float64, on the inputs' device).
using TemperatureRange = void(const at::Tensor& median, const at::Tensor& mad, int64_t first,
                              const TemperatureRule& rule, const at::Tensor& out);

template <TemperatureRange* range>
at::Tensor temperature_schedule_entry(const at::Tensor& median, const at::Tensor& mad,
                                      int64_t steps, double eps, int64_t newton_iters, double tmax,
                                      c10::string_view kind) {
  const TemperatureRule rule = temperature_rule(steps, eps, newton_iters, tmax, kind);
  const auto [mu, s] = temperature_inputs(median, mad);
  at::Tensor out = at::empty({steps}, mu.options());
  range(mu, s, 0, rule, out);
  return out;
}

// The temperature of transition step `index` (0-based; indices past the end hold the last
// temperature, as the phase after the transition does), a 0-dim tensor: O(1) in steps.
template <TemperatureRange* range>
at::Tensor temperature_at_entry(const at::Tensor& median, const at::Tensor& mad, int64_t index,
                                int64_t steps, double eps, int64_t newton_iters, double tmax,
                                c10::string_view kind) {
  TORCH_CHECK(index >= 0, "softsign: expected index >= 0, got ", index);
  const TemperatureRule rule = temperature_rule(steps, eps, newton_iters, tmax, kind);
  const auto [mu, s] = temperature_inputs(median, mad);
  at::Tensor out = at::empty({}, mu.options());
  range(mu, s, std::min(index, steps - 1), rule, out);
  return out;
}

// Registers both ops of one device over its range function, each entry checked against its
// op's function type (Note [one signature per op]).
template <TemperatureRange* range>
void register_temperature_ops(torch::Library& m) {
  static_assert(
      std::is_same_v<decltype(&temperature_schedule_entry<range>), sig::TemperatureSchedule*>);
  static_assert(std::is_same_v<decltype(&temperature_at_entry<range>), sig::TemperatureAt*>);
  m.impl("temperature_schedule", &temperature_schedule_entry<range>);
  m.impl("temperature_at", &temperature_at_entry<range>);
}

}  // namespace softsign::ops
