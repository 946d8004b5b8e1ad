// The host-side contract of the radix-selection ops (Note [radix selection] in
// radix_select.h): the plan every driver follows (C++ or Python, through
// softsign::radix_select_plan), and the input checks of radix_select_histogram and
// radix_select_advance_ that their CPU and CUDA kernels share.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>

#include "radix_select.h"

namespace softsign::ops {

// The widths and pass counts of one selection.
struct RadixPlan {
  int64_t digit_bits;
  int64_t key_bits;  // of stage 0 (stage 1 is 64 bits wide)

  int64_t passes(int64_t stage) const {
    return radix::stage_passes(static_cast<int>(stage), static_cast<int>(key_bits),
                               static_cast<int>(digit_bits));
  }
  int64_t histogram_size() const { return radix::histogram_size(static_cast<int>(digit_bits)); }
};

// The plan for tensors on `device`: 64-bit stage-0 keys when `wide_keys` (a float64
// tensor, or a hook: every rank must run the same passes whatever dtypes its shards hold,
// and float32 values widen exactly), else 32.
RadixPlan radix_plan(const c10::Device& device, bool wide_keys);

// Validates one histogram call and returns its pass description. Throws before any work.
radix::PassSpec check_radix_select_histogram(at::TensorList grads, at::TensorList momentum_buffers,
                                             const at::Tensor& state, int64_t stage, int64_t pass,
                                             int64_t digit_bits, int64_t key_bits,
                                             const std::optional<at::Tensor>& grad_scale);

// Validates one radix_select_advance_ call (state, histogram, pass). Throws before any work.
void check_radix_select_advance(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                                int64_t pass, int64_t digit_bits, int64_t key_bits);

}  // namespace softsign::ops
