// CPU entry of softsign::soft_sign_step_: validates, reads the (CPU) scalar tensors,
// applies the no-op rule and runs the kernel built for the best capability this CPU has.
#include <torch/library.h>

#include <cmath>

#include "cpu/capability.h"
#include "cpu/soft_sign_step_kernel.h"
#include "op_signatures.h"

namespace softsign::ops {
namespace {

double read_scalar(const std::optional<at::Tensor>& t, double fallback) {
  return t.has_value() ? t->item<double>() : fallback;  // CPU tensors: no device sync
}

sig::SoftSignStep soft_sign_step_cpu;  // Note [one signature per op]

void soft_sign_step_cpu(at::TensorList params, at::TensorList grads,
                        at::TensorList momentum_buffers, double lr,
                        const std::optional<at::Tensor>& lr_tensor, double momentum,
                        double dampening, double weight_decay, bool nesterov, bool maximize,
                        bool first_step, const std::optional<at::Tensor>& temperature,
                        const std::optional<at::Tensor>& grad_scale,
                        const std::optional<at::Tensor>& found_inf,
                        std::optional<double> lion_beta1) {
  const StepScalars s =
      step_scalars(momentum, dampening, weight_decay, nesterov, maximize, first_step, lion_beta1);
  check_soft_sign_step(params, grads, momentum_buffers, s, lr_tensor, temperature, grad_scale,
                       found_inf);
  if (read_scalar(found_inf, 0.0) != 0.0) return;
  const double tau = read_scalar(temperature, 0.0);
  // Unfitted, failed or out-of-range temperature: never write NaN (Note [temperature range]).
  if (temperature.has_value() && !temperature_usable(tau, computes_in_float(params))) return;
  const CpuStepArgs args{s, read_scalar(lr_tensor, lr), read_scalar(grad_scale, 1.0),
                         temperature.has_value(), tau};
  const StepLayout layout(params, grads, momentum_buffers);
  SOFTSIGN_CPU_DISPATCH(soft_sign_step_kernel, layout.params(), layout.grads(),
                        layout.momentum_buffers(), args);
  layout.write_back();
}

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CPU, m) { m.impl("soft_sign_step_", &soft_sign_step_cpu); }

}  // namespace softsign::ops
