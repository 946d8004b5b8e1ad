// Registers the CUDA kernel of softsign::soft_sign_step_ (soft_sign_step_kernel.cuh).
#include <torch/library.h>

#include "soft_sign_step_kernel.cuh"

TORCH_LIBRARY_IMPL(softsign, CUDA, m) {
  m.impl("soft_sign_step_", &softsign::ops::soft_sign_step_launch<>);
}
