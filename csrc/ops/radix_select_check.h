// Input contract of softsign::radix_select_histogram, shared by its CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <optional>

#include "radix_select.h"

namespace softsign::ops {

// Validates one histogram call and returns its pass description. Throws before any work.
radix::PassSpec check_radix_select_histogram(at::TensorList grads, at::TensorList momentum_buffers,
                                             const at::Tensor& state, int64_t stage, int64_t pass,
                                             int64_t digit_bits, int64_t key_bits,
                                             const std::optional<at::Tensor>& grad_scale);

}  // namespace softsign::ops
