// Shared by the CPU and CUDA kernels of softsign::soft_sign_step_: the input contract
// check and the element math. Note [soft-sign element math]: both kernels and the
// composite soft_sign_direction compute exactly this, in float32 registers. The CUDA
// kernel calls these functions; the CPU kernel spells the same expressions out on vectors,
// one loop per momentum case (soft_sign_step_kernel.cpp), so that a change here must be
// made there too (test_ops.py holds both to the reference).
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cmath>
#include <optional>

namespace softsign::ops {

// Plain-number options of one fused call, as the kernels see them.
// Kept in double so float64 params get the exact options; float32 math rounds them once.
struct StepScalars {
  double momentum;
  double dampening;
  double weight_decay;
  bool nesterov;
  bool maximize;
  bool first_step;
};

// Validates a soft_sign_step_ call (lists, shapes, devices, dtypes, optional scalars).
// Throws before anything is written.
void check_soft_sign_step(at::TensorList params, at::TensorList grads,
                          at::TensorList momentum_buffers, double momentum,
                          const std::optional<at::Tensor>& lr_tensor,
                          const std::optional<at::Tensor>& temperature,
                          const std::optional<at::Tensor>& grad_scale,
                          const std::optional<at::Tensor>& found_inf);

// Momentum update of one element in opmath type T (float32, float64 for double params);
// returns the direction d and writes the new buffer. g is already unscaled and
// sign-flipped for maximize.
template <typename T>
C10_HOST_DEVICE inline T momentum_direction(T g, T& buf, const StepScalars& s) {
  if (s.momentum == 0.0) return g;
  const T m = static_cast<T>(s.momentum);
  buf = s.first_step ? g : m * buf + (T(1) - static_cast<T>(s.dampening)) * g;
  return s.nesterov ? g + m * buf : buf;
}

// sign(d) (with sign(0) = 0, as torch.sign) when soft is false, else tanh(tau * d).
template <typename T>
C10_HOST_DEVICE inline T soft_sign(T d, bool soft, T tau) {
  if (soft) return std::tanh(tau * d);
  return static_cast<T>((d > T(0)) - (d < T(0)));
}

// New parameter value: decoupled weight decay before the update, one rounding at the end.
template <typename T>
C10_HOST_DEVICE inline T apply_update(T p, T u, T lr, T weight_decay) {
  return p * (T(1) - lr * weight_decay) - lr * u;
}

}  // namespace softsign::ops
