// CPU entry of softsign::soft_sign_step_: validates, reads the (CPU) scalar tensors,
// applies the no-op rule and runs the kernel built for the best capability this CPU has.
#include <torch/library.h>

#include <cmath>
#include <type_traits>

#include "cpu/capability.h"
#include "cpu/soft_sign_step_kernel.h"
#include "op_signatures.h"

namespace softsign::ops {
namespace {

double read_scalar(const std::optional<at::Tensor>& t, double fallback) {
  return t.has_value() ? t->item<double>() : fallback;  // CPU tensors: no device sync
}

void soft_sign_step_cpu(const SoftSignStepCall& call) {
  if (read_scalar(call.found_inf, 0.0) != 0.0) return;
  const double tau = read_scalar(call.temperature, 0.0);
  // Unfitted, failed or out-of-range temperature: never write NaN (Note [temperature range]).
  if (call.temperature.has_value() && !temperature_usable(tau, computes_in_float(call.params))) {
    return;
  }
  const CpuStepArgs args{call.s, read_scalar(call.lr_tensor, call.lr),
                         read_scalar(call.grad_scale, 1.0), call.temperature.has_value(), tau};
  const StepLayout layout(call.params, call.grads, call.momentum_buffers);
  SOFTSIGN_CPU_DISPATCH(soft_sign_step_kernel, layout.params(), layout.grads(),
                        layout.momentum_buffers(), args);
  layout.write_back();
}

// Note [one signature per op].
static_assert(
    std::is_same_v<decltype(soft_sign_step_entry<&soft_sign_step_cpu>), sig::SoftSignStep>);

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CPU, m) {
  m.impl("soft_sign_step_", &soft_sign_step_entry<&soft_sign_step_cpu>);
}

}  // namespace softsign::ops
