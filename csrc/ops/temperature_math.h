// The temperature of one step of the quantile schedule (docs/algorithms.md section 3), as a
// function of the step's index alone: the CPU entries and the CUDA kernel both call it, so
// a step's temperature costs the same at any transition length, and the full schedule
// (temperature_schedule) is this function over every index, the same bits on one device.
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>

namespace softsign::ops {

// The schedule's constants, checked on the host (temperature_rule in temperature.h).
struct TemperatureRule {
  double c_eps;  // saturation constant of the soft map
  int64_t newton_iters;
  double tmax;
  int64_t steps;  // T, the transition's length
};

// tau_j of the folded-Cauchy quantile schedule fitted to median mu and MAD s. A NaN mu or s
// (a fit that is pending or failed) gives NaN, which the step kernels treat as "change
// nothing". Newton runs on q as in the spec; a zero MAD uses q = |mu| for every j.
C10_HOST_DEVICE inline double quantile_temperature(double mu, double s, int64_t j,
                                                   const TemperatureRule& rule) {
  constexpr double kPi = 3.14159265358979323846;
  if (std::isnan(mu) || std::isnan(s)) return mu + s;  // NaN, without a NaN constant
  double q = std::fabs(mu);
  if (s != 0.0) {
    const double p = static_cast<double>(j) / static_cast<double>(rule.steps);
    q = s * std::tan((kPi / 2) * p) + std::fabs(mu);
    for (int64_t it = 0; it < rule.newton_iters; ++it) {
      const double z1 = (q - mu) / s;
      const double z2 = (-q - mu) / s;
      const double f = (std::atan(z1) - std::atan(z2)) / kPi;
      const double fp = (1.0 / (kPi * (1.0 + z1 * z1)) + 1.0 / (kPi * (1.0 + z2 * z2))) / s;
      q = q - (f - p) / fp;
      q = q < 0.0 ? 0.0 : q;  // a NaN stays NaN, as clamp_min keeps it
    }
  }
  if (q == 0.0) return rule.tmax;
  const double tau = rule.c_eps / q;
  if (std::isnan(tau)) return tau;
  return tau < 1.0 ? 1.0 : (tau > rule.tmax ? rule.tmax : tau);
}

}  // namespace softsign::ops
