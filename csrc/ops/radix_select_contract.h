// Input contract of softsign::radix_select_histogram, shared by its CPU and CUDA kernels.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

#include "radix_select.h"
#include "soft_sign_step.h"
#include "softsign/ops.h"

namespace softsign::ops {

// Validates one histogram call and returns its pass description. Throws before any work.
radix::PassSpec check_radix_select_histogram(at::TensorList grads, at::TensorList momentum_buffers,
                                             const at::Tensor& state, int64_t stage, int64_t pass,
                                             int64_t digit_bits, int64_t key_bits,
                                             const std::optional<at::Tensor>& grad_scale);

// Validates one radix_select_advance_ call (state, histogram, pass). Throws before any work.
void check_radix_select_advance(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                                int64_t pass, int64_t digit_bits, int64_t key_bits);

// Whether the directions of `src` read its momentum buffers (heavy ball or Lion's rule).
inline bool reads_buffers(const SelectionSource& src) {
  return src.momentum != 0.0 || src.lion_beta1.has_value();
}

// The kernels' scalars for the directions of `src`; first_step for its first_step_grads.
inline StepScalars scalars_of(const SelectionSource& src, bool first_step) {
  return step_scalars(src.momentum, src.dampening, 0.0, src.nesterov, src.maximize, first_step,
                      src.lion_beta1);
}

// The CUDA driver of the selection, with the candidate finish on the device
// (radix_select_kernel.cu); run_selection calls it for CUDA tensors without a hook.
std::tuple<at::Tensor, at::Tensor> select_median_mad_cuda(const SelectionSource& src);

}  // namespace softsign::ops
