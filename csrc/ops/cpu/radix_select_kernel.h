// The CPU kernels of the radix selection (Note [radix selection] in radix_select.h),
// compiled once per CPU capability like soft_sign_step_kernel.h: one pass over the
// directions of every tensor, read in place, either counting a histogram or collecting
// the keys that match the prefix (Note [candidate finish]). radix_select_cpu.cpp
// validates, builds the context and picks the build.
#pragma once

#include <ATen/ATen.h>

#include <atomic>
#include <cstdint>
#include <vector>

#include "cpu/capability.h"
#include "radix_select.h"
#include "soft_sign_step.h"

namespace softsign::ops {

// What one pass needs, read from the CPU state by the caller.
struct RadixContext {
  StepScalars step;  // momentum options; first_step marks grads without buffers
  double grad_scale;
  radix::PassSpec spec;
  uint64_t prefix;  // of the current stage
  double mu;        // the stage-0 result (stage 1 only)
};

// Where collected keys go: an array of exactly the expected count, filled through
// per-thread buffers claimed with the cursor.
struct KeySink {
  uint64_t* keys;
  int64_t capacity;
  std::atomic<int64_t>* cursor;
};

SOFTSIGN_CPU_KERNEL_BUILDS(
    // Adds this pass's counts ((1 << digit_bits) bins, then the NaN count) to `hist`.
    void radix_histogram_kernel(at::TensorList grads, at::TensorList bufs, const RadixContext& c,
                                int64_t* hist);
    // Appends the key of every element that matches the prefix above this pass's digit.
    void radix_collect_kernel(at::TensorList grads, at::TensorList bufs, const RadixContext& c,
                              const KeySink& sink);)

}  // namespace softsign::ops
