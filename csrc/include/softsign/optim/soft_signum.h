// softsign::optim::SoftSignum and Signum: torch::optim optimizers over the softsign ops
// (docs/algorithms.md sections 2-4). They run the same fused kernels as the Python optimizers,
// through the op API in <softsign/ops.h>.
#pragma once

#include <c10/core/Device.h>
#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "softsign/optim/group_schedule.h"

namespace softsign::optim {

// Options of SoftSignum (docs/algorithms.md section 4). Defaults follow the paper; see
// docs/algorithms.md. Besides the options, an instance holds its group's step count and temperature
// fit: torch::optim keeps per-group values in the options object, and these are serialized with
// them.
struct SoftSignumOptions : public torch::optim::OptimizerCloneableOptions<SoftSignumOptions> {
  SoftSignumOptions(double lr = 1e-3);  // NOLINT(google-explicit-constructor): torch's pattern
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, momentum) = 0.9;
  TORCH_ARG(double, dampening) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, nesterov) = false;
  TORCH_ARG(bool, maximize) = false;
  // Planned length of training; gives S = round(alpha_sign * total_steps), T = rest.
  TORCH_ARG(std::optional<int64_t>, total_steps) = std::nullopt;
  TORCH_ARG(double, alpha_sign) = 0.9;
  // Explicit phase lengths; each overrides the one derived from total_steps.
  TORCH_ARG(std::optional<int64_t>, sign_steps) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, transition_steps) = std::nullopt;
  TORCH_ARG(double, eps) = 1e-4;
  TORCH_ARG(int64_t, newton_iters) = 10;
  TORCH_ARG(double, tmax) = 1e9;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
  // Equal options and equal group state (step count and fit).
  friend bool operator==(const SoftSignumOptions& lhs, const SoftSignumOptions& rhs);

  // Group state: steps taken by this group (k of the spec), and the fit once known.
  int64_t step_count() const { return schedule_.step_count; }
  bool fitted() const { return schedule_.fitted; }
  double fit_median() const { return schedule_.median; }
  double fit_mad() const { return schedule_.mad; }

 private:
  friend class SoftSignum;
  detail::GroupSchedule schedule_;
};

// Options of Signum: SoftSignum's update rule with the sign phase forever.
struct SignumOptions : public torch::optim::OptimizerCloneableOptions<SignumOptions> {
  SignumOptions(double lr = 1e-3);  // NOLINT(google-explicit-constructor): torch's pattern
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, momentum) = 0.9;
  TORCH_ARG(double, dampening) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, nesterov) = false;
  TORCH_ARG(bool, maximize) = false;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
  friend bool operator==(const SignumOptions& lhs, const SignumOptions& rhs);
};

// Per-parameter state of both optimizers: the heavy-ball buffer, created on the first
// step on which the parameter has a gradient (none when momentum is 0).
struct SoftSignumParamState
    : public torch::optim::OptimizerCloneableParamState<SoftSignumParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};
using SignumParamState = SoftSignumParamState;

// S and T of a SoftSignum group (see resolve_phases in group_schedule.h).
Phases resolve_phases(const SoftSignumOptions& options);

// SoftSignum (docs/algorithms.md section 4): Signum for S steps, then tanh(tau_j * d) with the
// temperature schedule fitted once, at step S + 1, to the median and MAD of the group's
// momentum directions d. step() never synchronizes with the device: on an accelerator the
// fit's status is read from pinned memory at a later step, once its event has completed.
//
// Group options given to the constructor (or to add_param_group of this class) inherit
// every field left at its SoftSignumOptions() default from `defaults`, as torch's own
// optimizers do (Optimizer::_merge_by_comparison); each group starts at step 0, unfitted.
// Throws c10::Error ("Invalid ...") for invalid options and complex params.
class SoftSignum : public torch::optim::Optimizer {
 public:
  explicit SoftSignum(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                      SoftSignumOptions defaults = {});
  explicit SoftSignum(std::vector<torch::Tensor> params, SoftSignumOptions defaults = {});

  // One step of every group; returns the closure's loss (undefined without a closure).
  // Checks every group (no sparse gradients, no complex params) and fits every due
  // temperature before it changes any parameter. The fit waits for a step on which the
  // group has a gradient with elements. Any layout works (the op steps dense stand-ins,
  // Note [step layouts]); a buffer of other strides than its param is re-laid out like
  // it once, so that the stand-in is not needed at every step.
  torch::Tensor step(LossClosure closure = nullptr) override;

  // Validates and merges the group's options (see above), checks its params, then adds it.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);

  // The temperature the group's last step used (tau_j, j = min(k - S - 1, T - 1));
  // nullopt in the sign phase or before the fit. Waits for an in-flight fit: for logging.
  std::optional<double> temperature(size_t group = 0);

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 private:
  SoftSignumOptions& group_options(size_t group);
};

// Signum: SoftSignum without a transition (SoftSignum with S >= the number of steps
// computes exactly the same parameters). Groups and layouts as SoftSignum.
class Signum : public torch::optim::Optimizer {
 public:
  explicit Signum(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                  SignumOptions defaults = {});
  explicit Signum(std::vector<torch::Tensor> params, SignumOptions defaults = {});

  torch::Tensor step(LossClosure closure = nullptr) override;
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;
};

}  // namespace softsign::optim
