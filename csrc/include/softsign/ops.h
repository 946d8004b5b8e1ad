// The softsign op API: thin C++ entry points that call through the dispatcher.
// Every schema is spelled once, in csrc/ops/registry.cpp; these functions only
// look the op up and call it, so C++ optimizers and Python run the same kernels.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace softsign::ops {

// Options of the fused soft-sign step that are plain numbers (see SoftSignStep).
struct SoftSignStepArgs {
  double lr = 1e-3;
  double momentum = 0.9;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
  bool maximize = false;
  // The momentum buffers are being created on this step: buf <- g instead of
  // buf <- momentum * buf + (1 - dampening) * g (SGD's convention).
  bool first_step = false;
};

// In-place fused SoftSignum/Signum step over many tensors (spec section 4):
//   p <- p * (1 - lr * wd); buf <- momentum update; d <- buf or nesterov;
//   p <- p - lr * (temperature ? tanh(tau * d) : sign(d)).
// Contract: params, grads and (when momentum != 0) momentum_buffers are equal-length
// lists of dense, same-shaped, same-device tensors; with momentum == 0 the buffer list
// is empty. lr_tensor, temperature, grad_scale and found_inf are optional 1-element
// device tensors read by the kernel, never by the host. The step is a no-op for the
// whole call (params and buffers untouched) when found_inf != 0 or the temperature is
// not finite: that is how an unfitted or failed temperature fit can never write NaN.
void soft_sign_step_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                     const SoftSignStepArgs& args,
                     const std::optional<at::Tensor>& lr_tensor = std::nullopt,
                     const std::optional<at::Tensor>& temperature = std::nullopt,
                     const std::optional<at::Tensor>& grad_scale = std::nullopt,
                     const std::optional<at::Tensor>& found_inf = std::nullopt);

// The post-momentum direction d of every tensor (float32 copies), computed exactly as
// soft_sign_step_ would, without changing anything. The statistic of the temperature fit.
std::vector<at::Tensor> soft_sign_direction(
    at::TensorList grads, at::TensorList momentum_buffers, const SoftSignStepArgs& args,
    const std::optional<at::Tensor>& grad_scale = std::nullopt);

// Exact lower median mu and MAD median(|x - mu|) over all elements of all tensors,
// as float64 0-dim tensors on the tensors' device. Lower median: the element of rank
// floor((n - 1) / 2), what torch.median returns.
std::tuple<at::Tensor, at::Tensor> median_mad(at::TensorList tensors);

// Temperatures tau_0..tau_{steps-1} (float64, on median's device) of the folded-Cauchy
// quantile schedule (spec section 3). kind is "tanh" (SoftSignum) or "algebraic" (SoftMuon).
at::Tensor temperature_schedule(const at::Tensor& median, const at::Tensor& mad, int64_t steps,
                                double eps, int64_t newton_iters, double tmax,
                                const std::string& kind);

// Fit status codes stored in fit_temperature's stats[2]. Named once here; the Python
// optimizers mirror them in softsign/_fit.py.
enum class FitStatus : int { kPending = 0, kOk = 1, kZeroMad = 2, kNonFinite = 3 };

// The whole temperature fit on the device, with no host synchronization:
// stats = float64 [median, mad, status] and the schedule. status is kPending when
// found_inf != 0 (AMP skipped this step: fit again later), kNonFinite when the median
// or MAD is not finite (the schedule is then all NaN, so a step using it is a no-op),
// kZeroMad when the MAD is 0 (schedule uses q = |median|), else kOk.
std::tuple<at::Tensor, at::Tensor> fit_temperature(
    at::TensorList statistic, int64_t steps, double eps, int64_t newton_iters, double tmax,
    const std::string& kind, const std::optional<at::Tensor>& found_inf = std::nullopt);

// Saturation constant c_eps of a soft-sign map: atanh(1 - eps) for "tanh",
// y / sqrt(1 - y^2) with y = 1 - eps for "algebraic".
double saturation_constant(const std::string& kind, double eps);

}  // namespace softsign::ops
