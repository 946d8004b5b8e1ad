// The CPU driver's shortcut through the last passes of a selection stage.
//
// Note [candidate finish]
// Every histogram pass reads all grads and buffers, but after the first pass of a stage
// only the elements in the chosen bin can still be the answer: for 124M Gaussian
// directions, about 1.8M are left after the first MAD pass, and a few dozen after the
// second. On the CPU the driver can read that count for free (no device to wait on). When
// it is small, one more pass collects the candidates' keys, and std::nth_element picks the
// wanted rank among them. The MAD stage then takes 2 full passes instead of 4, and the
// result is the same key (so the same value) the remaining passes would have picked. The
// extra memory is 8 bytes per candidate, at most max(2^20, n / 32) of them.
#pragma once

#include <ATen/ATen.h>

#include "softsign/ops.h"

namespace softsign::ops {

// After `pass` of `stage` has been advanced on the CPU `state` from `histogram` (the
// pass's summed counts): if collecting saves at least one pass (two or more remain) and
// the chosen bin holds few enough candidates, finishes the stage (writes the selected key,
// remaining rank 0) and returns true; otherwise leaves the state alone and returns false.
bool finish_among_candidates_cpu(const SelectionSource& src, const at::Tensor& state,
                                 const at::Tensor& histogram, int64_t stage, int64_t pass,
                                 int64_t digit_bits, int64_t key_bits);

}  // namespace softsign::ops
