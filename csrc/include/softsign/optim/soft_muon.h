// softsign::optim::SoftMuon and Muon: torch::optim optimizers over the softsign ops (spec
// sections 2, 3 and 5), with the auxiliary AdamW for the parameters that are not hidden
// matrices. They run the same ops as the Python optimizers.
#pragma once

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "softsign/optim/group_schedule.h"

namespace softsign::optim {

// Options of a SoftMuon/Muon param group. use_muon picks the update of the group's
// params: the matrix path (Newton-Schulz, then the soft map) or the auxiliary AdamW with
// the adamw_* values. get_lr/set_lr act on the rate the group uses (lr or adamw_lr), so an
// LR scheduler scales every group. Besides the options, an instance holds its group's
// step count and temperature fit, serialized with them.
struct SoftMuonOptions : public torch::optim::OptimizerCloneableOptions<SoftMuonOptions> {
  using betas_t = std::tuple<double, double>;
  SoftMuonOptions(double lr = 0.02);  // NOLINT(google-explicit-constructor): torch's pattern
  TORCH_ARG(double, lr) = 0.02;
  TORCH_ARG(double, momentum) = 0.95;
  TORCH_ARG(bool, nesterov) = true;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(int64_t, ns_steps) = 5;
  TORCH_ARG(std::optional<int64_t>, total_steps) = std::nullopt;
  TORCH_ARG(double, alpha_sign) = 0.9;
  TORCH_ARG(std::optional<int64_t>, sign_steps) = std::nullopt;
  TORCH_ARG(std::optional<int64_t>, transition_steps) = std::nullopt;
  TORCH_ARG(double, eps) = 1e-4;
  TORCH_ARG(int64_t, newton_iters) = 10;
  TORCH_ARG(double, tmax) = 1e9;
  TORCH_ARG(std::string, soft_map) = "newton_schulz";  // or "accurate"
  TORCH_ARG(int64_t, soft_steps) = 5;
  TORCH_ARG(std::string, adjust_lr) = "original";  // or "match_rms_adamw"
  TORCH_ARG(bool, use_muon) = true;
  TORCH_ARG(double, adamw_lr) = 3e-4;
  TORCH_ARG(betas_t, adamw_betas) = std::make_tuple(0.9, 0.95);
  TORCH_ARG(double, adamw_eps) = 1e-10;
  TORCH_ARG(double, adamw_weight_decay) = 0;

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
  double get_lr() const override;
  void set_lr(const double lr) override;
  friend bool operator==(const SoftMuonOptions& lhs, const SoftMuonOptions& rhs);

  int64_t step_count() const { return schedule_.step_count; }
  bool fitted() const { return schedule_.fitted; }
  double fit_median() const { return schedule_.median; }
  double fit_mad() const { return schedule_.mad; }

 private:
  friend class SoftMuon;
  detail::GroupSchedule schedule_;
};
using MuonOptions = SoftMuonOptions;

// Per-parameter state: the momentum buffer (matrix groups), or AdamW's step count (a
// float32 tensor, as torch's fused AdamW keeps it) and moments.
struct SoftMuonParamState : public torch::optim::OptimizerCloneableParamState<SoftMuonParamState> {
  TORCH_ARG(torch::Tensor, momentum_buffer);
  TORCH_ARG(torch::Tensor, step);
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);

 public:
  void serialize(torch::serialize::InputArchive& archive) override;
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

// S and T of a SoftMuon group (see resolve_phases in group_schedule.h).
Phases resolve_phases(const SoftMuonOptions& options);

// SoftMuon (docs/algorithms.md section 5): Muon for S steps, then the soft spectral map Phi_tau_j
// with the schedule fitted once, at step S + 1, to the singular values of the group's raw
// gradients; AdamW for groups with use_muon(false). Same-shape matrices are batched.
// Group options inherit every field left at its SoftMuonOptions() default from
// `defaults`, as torch's own optimizers do (Optimizer::_merge_by_comparison); each group
// starts at step 0, unfitted. Throws c10::Error ("Invalid ...") for invalid options, and
// for a use_muon group with a parameter of fewer than 2 dims.
class SoftMuon : public torch::optim::Optimizer {
 public:
  explicit SoftMuon(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                    SoftMuonOptions defaults = {});
  // As the Python class routes a plain list: params of 2 or more dims in a group with the
  // defaults, the others in a group with the defaults and use_muon(false) (all of them
  // there when the defaults say use_muon(false)). Warns once when both kinds exist:
  // embeddings and output heads are matrices too, and belong in a use_muon(false) group.
  explicit SoftMuon(std::vector<torch::Tensor> params, SoftMuonOptions defaults = {});

  // One step of every group; checks every group and fits every due temperature before it
  // changes any parameter. The fit waits for a step on which the group has a gradient
  // with elements.
  torch::Tensor step(LossClosure closure = nullptr) override;
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);

  // The temperature the group's last step used; nullopt in the sign phase, before the fit
  // and for AdamW groups. Waits for an in-flight fit: for logging.
  std::optional<double> temperature(size_t group = 0);

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

 protected:
  // Muon: the sign phase forever.
  SoftMuon(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
           SoftMuonOptions defaults, bool transition);

 private:
  SoftMuonOptions& group_options(size_t group);
  bool transition_;
};

// Muon with the auxiliary AdamW: SoftMuon's sign phase forever (no schedule options).
class Muon : public SoftMuon {
 public:
  explicit Muon(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                MuonOptions defaults = {});
  // Routes a plain list as SoftMuon does.
  explicit Muon(std::vector<torch::Tensor> params, MuonOptions defaults = {});
};

}  // namespace softsign::optim
