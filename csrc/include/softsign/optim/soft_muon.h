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

#include "softsign/optim/options.h"
#include "softsign/optim/scheduled_optimizer.h"

namespace softsign::optim {

// SoftMuon's options (Note [one option list]). use_muon picks the update of a group's
// params: the matrix path (Newton-Schulz, then the soft map) or the auxiliary AdamW with
// the adamw_* values. soft_map is "newton_schulz" or "accurate"; adjust_lr "original" or
// "match_rms_adamw". transposed: the group's matrices are stored as (in, out), like
// transformers' Conv1D; the update scale is computed for the (out, in) matrix.
#define SOFTSIGN_MUON_OPTIONS(X)                        \
  X(double, lr, 0.02)                                   \
  X(double, momentum, 0.95)                             \
  X(bool, nesterov, true)                               \
  X(double, weight_decay, 0.0)                          \
  X(int64_t, ns_steps, 5)                               \
  X(std::string, soft_map, "newton_schulz")             \
  X(int64_t, soft_steps, 5)                             \
  X(std::string, adjust_lr, "original")                 \
  X(bool, transposed, false)                            \
  X(bool, use_muon, true)                               \
  X(double, adamw_lr, 3e-4)                             \
  X(betas_t, adamw_betas, (std::make_tuple(0.9, 0.95))) \
  X(double, adamw_eps, 1e-10)                           \
  X(double, adamw_weight_decay, 0.0)
#define SOFTSIGN_SOFT_MUON_OPTIONS(X) SOFTSIGN_MUON_OPTIONS(X) SOFTSIGN_SCHEDULE_OPTIONS(X)

// Options of a SoftMuon/Muon param group; Muon leaves the schedule options unset.
// get_lr/set_lr act on the rate the group uses (lr or adamw_lr), so an LR scheduler scales
// every group. Besides the options, an instance holds its group's step count and
// temperature fit, serialized with them.
struct SoftMuonOptions : public torch::optim::OptimizerCloneableOptions<SoftMuonOptions> {
  using Self = SoftMuonOptions;
  SoftMuonOptions() = default;
  SoftMuonOptions(double lr) { lr_ = lr; }  // NOLINT(google-explicit-constructor): torch's
  double get_lr() const override { return use_muon_ ? lr_ : adamw_lr_; }
  void set_lr(const double lr) override { (use_muon_ ? lr_ : adamw_lr_) = lr; }
  SOFTSIGN_OPTIONS_BODY(SoftMuonOptions, SOFTSIGN_SOFT_MUON_OPTIONS)
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

struct MuonRule {
  using Options = SoftMuonOptions;
  using ParamState = SoftMuonParamState;
  struct Work;  // soft_muon.cpp
  static constexpr const char* kName = "Muon";
  static constexpr const char* kKind = "algebraic";
  static constexpr const char* kStatistic = "the gradients' singular values";
  static void validate(const Options& o, bool transition);
  static void check_param(const Options& o, const at::Tensor& p, size_t index);
  static bool scheduled(const Options& o) { return o.use_muon(); }
  SOFTSIGN_RULE_WORK_HOOKS
};
extern template class ScheduledOptimizer<MuonRule>;

// SoftMuon (docs/algorithms.md section 5): Muon for S steps, then the soft spectral map
// Phi_tau_j with the schedule fitted once, at step S + 1, to the singular values of the
// group's raw gradients; AdamW for groups with use_muon(false). Same-shape matrices are
// batched. Throws c10::Error ("Invalid ...") for a use_muon group with a parameter of fewer
// than 2 dims, or of other than 2 with transposed(true). Group options, checks and
// save/load: ScheduledOptimizer.
class SoftMuon : public ScheduledOptimizer<MuonRule> {
 public:
  explicit SoftMuon(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                    SoftMuonOptions defaults = {});
  // As the Python class routes a plain list: params of 2 or more dims in a group with the
  // defaults, the others in a group with the defaults and use_muon(false) (all of them
  // there when the defaults say use_muon(false)). Warns once when both kinds exist:
  // embeddings and output heads are matrices too, and belong in a use_muon(false) group.
  explicit SoftMuon(std::vector<torch::Tensor> params, SoftMuonOptions defaults = {});

 protected:
  SoftMuon(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
           SoftMuonOptions defaults, bool transition);
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
