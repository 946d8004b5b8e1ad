// The softsign op API: thin C++ entry points that call through the dispatcher.
// Every schema is spelled once, in csrc/ops/registry.cpp; these functions only
// look the op up and call it, so C++ optimizers and Python run the same kernels.
#pragma once

#include <ATen/ATen.h>

#include <functional>
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
  // The momentum rule by name and its own coefficients: "heavy_ball" takes none (momentum =
  // 0 is plain d = g). Every rule, with its coefficients and how it reads momentum and
  // dampening, is listed in kRuleSpecs (Note [momentum rules] in csrc/ops/momentum_rules.h);
  // an unknown name or a wrong number of coefficients is refused before anything changes.
  std::string momentum_rule = "heavy_ball";
  std::vector<double> rule_coeffs;
};

// In-place fused SoftSignum/Signum step over many tensors (docs/algorithms.md section 4):
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

// Called with every selection histogram before its bin is picked (Note [radix selection]
// in csrc/ops/radix_select.h); may change it in place, e.g. all-reduce it across ranks so
// the selection runs over the values of every rank without gathering them.
using HistogramHook = std::function<void(at::Tensor& histogram)>;

// Exact lower median mu and MAD median(|x - mu|) over all elements of all tensors,
// as float64 0-dim tensors on the tensors' device. Lower median: the element of rank
// floor((n - 1) / 2), what torch.median returns. No concatenated copy is made: a few
// histogram passes read the tensors in place. Any NaN makes both results NaN.
std::tuple<at::Tensor, at::Tensor> median_mad(at::TensorList tensors,
                                              const HistogramHook& hook = nullptr);

// The statistic of the SoftSignum temperature fit: the post-momentum directions d of
// `grads` (with their buffers; none when momentum is 0) and of `first_step_grads` (whose
// buffers are created this step), computed on the fly as soft_sign_step_ would.
struct SelectionSource {
  at::TensorList grads;
  at::TensorList momentum_buffers;
  at::TensorList first_step_grads;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  bool maximize = false;
  std::optional<at::Tensor> grad_scale;
  std::string momentum_rule = "heavy_ball";  // and its coefficients (see SoftSignStepArgs)
  std::vector<double> rule_coeffs;
};

// median_mad of the directions of `src`, without materializing them.
std::tuple<at::Tensor, at::Tensor> direction_median_mad(const SelectionSource& src,
                                                        const HistogramHook& hook = nullptr);

// The per-pass ops of the selection, for drivers with their own hook (e.g. Python).
// radix_select_plan gives what such a driver runs for tensors on `device`: [state size,
// digit_bits, key_bits, passes of stage 0, passes of stage 1, histogram size];
// wide_keys asks for 64-bit stage-0 keys (a float64 tensor, or a hook: every rank must
// run the same passes whatever dtypes its shards hold).
std::vector<int64_t> radix_select_plan(c10::Device device, bool wide_keys);
at::Tensor radix_select_histogram(at::TensorList grads, at::TensorList momentum_buffers,
                                  const at::Tensor& state, int64_t stage, int64_t pass,
                                  int64_t digit_bits, int64_t key_bits,
                                  const SelectionSource& options, bool first_step,
                                  const std::optional<at::Tensor>& grad_scale);
void radix_select_advance_(const at::Tensor& state, const at::Tensor& histogram, int64_t stage,
                           int64_t pass, int64_t digit_bits, int64_t key_bits);
std::tuple<at::Tensor, at::Tensor> radix_select_result(const at::Tensor& state, int64_t key_bits);

// Temperatures tau_0..tau_{steps-1} (float64, on median's device) of the folded-Cauchy
// quantile schedule (docs/algorithms.md section 3). kind is "tanh" (SoftSignum) or "algebraic"
// (SoftMuon). Each entry is temperature_at of its index: the same bits on one device.
at::Tensor temperature_schedule(const at::Tensor& median, const at::Tensor& mad, int64_t steps,
                                double eps, int64_t newton_iters, double tmax,
                                const std::string& kind);

// The temperature tau_index of that schedule alone, a 0-dim float64 tensor on median's
// device, computed there (no host read) at a cost independent of steps; an index past the
// end gives the last temperature (the phase after the transition). A NaN median or MAD
// gives NaN.
at::Tensor temperature_at(const at::Tensor& median, const at::Tensor& mad, int64_t index,
                          int64_t steps, double eps, int64_t newton_iters, double tmax,
                          const std::string& kind);

// Fit status codes stored in fit_temperature's stats[2]. Named once here; the Python
// optimizers mirror them in softsign/_fit.py.
enum class FitStatus : int { kPending = 0, kOk = 1, kZeroMad = 2, kNonFinite = 3 };

// The temperature fit on the device from the statistic's median and MAD (see
// median_mad), with no host synchronization: stats = float64 [median, mad, status] and
// fit = float64 [median, mad] to compute temperatures from (temperature_at). status is
// kPending when found_inf != 0 (AMP skipped this step: fit again later), kNonFinite when
// the median or MAD is not finite, kZeroMad when the MAD is 0 (the schedule uses
// q = |median|), else kOk. Unless the status is kOk or kZeroMad, fit is NaN, so every
// temperature from it is NaN and a step using one is a no-op.
std::tuple<at::Tensor, at::Tensor> fit_temperature(
    const at::Tensor& median, const at::Tensor& mad,
    const std::optional<at::Tensor>& found_inf = std::nullopt);

// Saturation constant c_eps of a soft-sign map: atanh(1 - eps) for "tanh",
// y / sqrt(1 - y^2) with y = 1 - eps for "algebraic".
double saturation_constant(const std::string& kind, double eps);

// ---- SoftMuon (docs/algorithms.md sections 1 and 5)
// -------------------------------------------------------

// Muon's quintic Newton-Schulz orthogonalization, batched over leading dims: on the wide
// side, X = M / (||M||_F + 1e-7), then `steps` times A = X X^T, X <- aX + (bA + cA^2) X
// with (a, b, c) = (3.4445, -4.7750, 2.0315). Runs in and returns bfloat16 (float64 for
// float64 input), shaped like `matrices`.
at::Tensor newton_schulz5(const at::Tensor& matrices, int64_t steps = 5);

// The soft spectral map Phi_tau(M) = U phi(tau sigma) V^T, phi(x) = x / sqrt(1 + x^2),
// batched over leading dims. tau is a 1-element tensor on M's device, never read by the
// host. method "newton_schulz": the public SoftMuon's coupled iteration with `steps`
// steps, in bfloat16 (its result dtype); "accurate": within the 1e-2 bound of docs/algorithms.md,
// in float32. float64 input runs in float64 in both.
at::Tensor soft_spectral_map(const at::Tensor& matrices, const at::Tensor& tau,
                             const std::string& method = "newton_schulz", int64_t steps = 5);

// The singular values (float32; float64 for float64 input) of each tensor's 2-D view for
// the schedule statistic: 1-D as 1 x n, 2-D as is, >= 3-D as (size0, -1).
std::vector<at::Tensor> singular_values(at::TensorList tensors);

// Options of the fused Muon/SoftMuon step that are plain numbers or names.
struct MuonStepArgs {
  double lr = 0.02;
  double momentum = 0.95;
  bool nesterov = true;
  double weight_decay = 0.0;
  int64_t ns_steps = 5;
  std::string adjust_lr = "original";      // or "match_rms_adamw"
  std::string soft_map = "newton_schulz";  // or "accurate"
  int64_t soft_steps = 5;
};

// In-place Muon step (docs/algorithms.md section 5) over matrix params (dim >= 2, conv weights as
// (size0, -1)) of one device: buf <- lerp(buf, g, 1 - momentum); d <- lerp(g, buf,
// momentum) or buf; O <- NS5(d) without a temperature, Phi_tau(d) with one; p <- p(1 - lr
// wd) - lr scale O. Same-shape params are batched. It is the composition of the three stage
// ops below, one call of each per same-shape bucket, and steps bit for bit as they do.
// A non-finite temperature zeroes the update (decided on the device); without found_inf,
// the weight decay and the momentum still apply. With `found_inf` (a one-element device
// tensor) the call is a no-op, buffers included, unless found_inf == 0 and the temperature
// (if any) is finite, also decided on the device: the optimizers pass it while a fit's
// status is unread, since a failed fit's gradients hold inf or NaN. It costs a copy of each
// bucket's buffers and params, so it is for the rare step that needs it.
void muon_step_(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers,
                const MuonStepArgs& args,
                const std::optional<at::Tensor>& temperature = std::nullopt,
                const std::optional<at::Tensor>& found_inf = std::nullopt);

// The stages of muon_step_, for callers that move matrices between them (a sharded model:
// the momentum and the apply on each rank's shards, the orthogonalization of whole
// matrices at one rank). Each is what muon_step_ runs, so the stages composed step bit for
// bit as muon_step_, given found_inf as muon_step_ forms it for them (nonzero also where
// the temperature is not finite).
//
// Stage 1: buf <- lerp(buf, g, 1 - args.momentum); writes the directions d = lerp(g, buf,
// momentum) with args.nesterov, else buf, into `directions` (same shapes, any floating
// dtype). Any same-shaped grads and buffers (shards too). A nonzero `found_inf` (a
// one-element device tensor) leaves the buffers unchanged (the directions are still
// written).
void muon_momentum_(at::TensorList grads, at::TensorList momentum_buffers,
                    at::TensorList directions, const MuonStepArgs& args,
                    const std::optional<at::Tensor>& found_inf = std::nullopt);

// Stage 2: NS5 (args.ns_steps) of each direction's (size0, -1) matrix without a
// temperature, Phi_tau (args.soft_map, args.soft_steps) with one, zero where the
// temperature is not finite; same-shape, same-dtype matrices in one batch. Results in each
// direction's shape and dtype.
std::vector<at::Tensor> muon_orthogonalize(
    at::TensorList directions, const MuonStepArgs& args,
    const std::optional<at::Tensor>& temperature = std::nullopt);

// Stage 3: p <- p (1 - args.lr args.weight_decay) - args.lr scale u, with u rounded to the
// param's dtype and scale of args.adjust_lr for each param's whole matrix: `matrix_dims`
// holds its rows and cols ([rows0, cols0, rows1, cols1, ...]; a shard's whole matrix is
// not its own), by default the param's own (size0, -1). A nonzero `found_inf` makes the
// call a no-op, decided on the device.
void muon_apply_(at::TensorList params, at::TensorList updates, const MuonStepArgs& args,
                 at::OptionalIntArrayRef matrix_dims = std::nullopt,
                 const std::optional<at::Tensor>& found_inf = std::nullopt);

}  // namespace softsign::ops
