// Registers the CUDA kernel of softsign::soft_sign_step_ (soft_sign_step_kernel.cuh).
#include <torch/library.h>

#include <type_traits>

#include "op_signatures.h"
#include "soft_sign_step_kernel.cuh"

// Note [one signature per op].
static_assert(
    std::is_same_v<
        decltype(softsign::ops::soft_sign_step_entry<&softsign::ops::soft_sign_step_launch<>>),
        softsign::ops::sig::SoftSignStep>);

TORCH_LIBRARY_IMPL(softsign, CUDA, m) {
  m.impl("soft_sign_step_",
         &softsign::ops::soft_sign_step_entry<&softsign::ops::soft_sign_step_launch<>>);
}
