// Input contract of softsign::radix_select_histogram, shared by its CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "radix_select.h"
#include "softsign/ops.h"

namespace softsign::ops {

// Validates one histogram call and returns its pass description. Throws before any work.
radix::PassSpec check_radix_select_histogram(at::TensorList grads, at::TensorList momentum_buffers,
                                             const at::Tensor& state, int64_t stage, int64_t pass,
                                             int64_t digit_bits, int64_t key_bits,
                                             const std::optional<at::Tensor>& grad_scale);

// The CUDA driver of the selection, with the candidate finish on the device
// (radix_select_kernel.cu); run_selection calls it for CUDA tensors without a hook.
std::tuple<at::Tensor, at::Tensor> select_median_mad_cuda(const SelectionSource& src);

}  // namespace softsign::ops
