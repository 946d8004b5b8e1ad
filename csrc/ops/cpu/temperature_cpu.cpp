// The CPU entries of the temperature ops: quantile_temperature per index, in a plain loop
// (each index is independent, and a step asks for one).
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "temperature.h"

namespace softsign::ops {
namespace {

void temperature_range_cpu(const at::Tensor& median, const at::Tensor& mad, int64_t first,
                           const TemperatureRule& rule, const at::Tensor& out) {
  const double mu = *median.const_data_ptr<double>();
  const double s = *mad.const_data_ptr<double>();
  double* tau = out.mutable_data_ptr<double>();
  const int64_t n = out.numel();
  at::parallel_for(0, n, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) tau[i] = quantile_temperature(mu, s, first + i, rule);
  });
}

}  // namespace
}  // namespace softsign::ops

TORCH_LIBRARY_IMPL(softsign, CPU, m) {
  softsign::ops::register_temperature_ops<&softsign::ops::temperature_range_cpu>(m);
}
