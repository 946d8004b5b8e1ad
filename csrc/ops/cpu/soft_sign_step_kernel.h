// The CPU kernel of softsign::soft_sign_step_, compiled once per CPU capability
// (soft_sign_step_kernel.cpp with CPU_CAPABILITY = DEFAULT, and AVX2 and AVX512 on x86-64, as ATen
// builds its own kernels) so at::vec gets real SIMD; soft_sign_step_cpu.cpp picks one at
// run time. Inputs are validated and device scalars already read.
#pragma once

#include <ATen/ATen.h>

#include "cpu/capability.h"
#include "soft_sign_step.h"

namespace softsign::ops {

struct CpuStepArgs {
  StepScalars step;
  double lr;
  double grad_scale;
  bool soft;
  double tau;
};

SOFTSIGN_CPU_KERNEL_BUILDS(void soft_sign_step_kernel(at::TensorList params, at::TensorList grads,
                                                      at::TensorList momentum_buffers,
                                                      const CpuStepArgs& args);)

}  // namespace softsign::ops
