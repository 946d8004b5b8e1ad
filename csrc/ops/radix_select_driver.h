// What the drivers of the exact median/MAD selection (Note [radix selection] in
// radix_select.h) share across devices: the direction scalars of a SelectionSource, and
// the device-specific parts of the driver, which each device's kernel file registers when
// the library loads, so that the device-neutral driver (radix_select.cpp) includes no
// device's files.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <tuple>

#include "soft_sign_step.h"
#include "softsign/ops.h"

namespace softsign::ops {

// The kernels' scalars for the directions of `src`; first_step for its first_step_grads.
inline StepScalars scalars_of(const SelectionSource& src, bool first_step) {
  return step_scalars(src.momentum, src.dampening, 0.0, src.nesterov, src.maximize, first_step,
                      src.momentum_rule, src.rule_coeffs);
}

// Whether the directions of `src` read its momentum buffers (its rule keeps them).
inline bool reads_buffers(const SelectionSource& src) { return scalars_of(src, false).buffered(); }

// A device's own parts of the driver; either may be absent. Neither runs under a hook: a
// hook may sum other ranks' counts, whose elements are not here to collect.
struct SelectionBackend {
  // The whole selection on the device (CUDA: the driver runs there, finishing among the
  // candidates on the device).
  std::tuple<at::Tensor, at::Tensor> (*select)(const SelectionSource& src) = nullptr;
  // Called after `pass` of `stage` has been advanced from `histogram` (the pass's counts):
  // finishes the stage among the remaining candidates and returns true, or leaves the
  // state alone and returns false (CPU: Note [candidate finish] in
  // cpu/radix_select_cpu.cpp).
  bool (*finish)(const SelectionSource& src, const at::Tensor& state, const at::Tensor& histogram,
                 int64_t stage, int64_t pass, int64_t digit_bits, int64_t key_bits) = nullptr;
};

// Registers the parts of `type`'s driver; returns true, for a namespace-scope initializer.
bool register_selection_backend(c10::DeviceType type, const SelectionBackend& backend);

// The parts registered for `type` (none registered: both absent).
const SelectionBackend& selection_backend(c10::DeviceType type);

}  // namespace softsign::ops
