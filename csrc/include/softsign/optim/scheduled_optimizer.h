// softsign::optim::ScheduledOptimizer: the one skeleton of every softsign optimizer
// (docs/algorithms.md sections 2-5). It owns the constructor, add_param_group with its
// option merge and validation, the temperature schedule and its fit, save/load and the
// three-phase step; an optimizer is an update rule plus its options.
//
// A Rule provides (CONTRIBUTING.md, "Adding an optimizer"):
//   Options, ParamState          the options struct (SOFTSIGN_OPTIONS_BODY) and param state
//   Work                         what one group's step works on (defined in the rule's .cpp)
//   kKind, kStatistic            the soft map ("tanh" or "algebraic") and what the fit reads
//   kName                        the plain optimizer's name ("Signum"; "SoftSignum" with a
//                                transition), for messages
//   validate(options, transition)            throws c10::Error ("Invalid ...")
//   check_param(options, param, group index) throws for a param the rule cannot step
//   scheduled(options)           whether the group follows the schedule (SoftMuon's AdamW
//                                groups do not)
//   gather(group, index, state, options)     checks gradients; changes nothing
//   has_elements(work)           whether the group's gradients have an element to fit to
//   statistics(work, options, home)          the fit statistic's (median, MAD) on home
//   update(work, options, state, temperature) stores new state and runs the fused ops
// and the implementation is instantiated in the rule's .cpp file
// (csrc/optim/scheduled_optimizer_impl.h).
#pragma once

#include <c10/core/Device.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>
#include <torch/types.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "softsign/optim/group_schedule.h"
#include "softsign/optim/options.h"

namespace softsign::optim {

// torch::optim::Optimizer's per-parameter state.
using StateMap = ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>;

// The temperature of the step on a device: a 1-element device tensor, nullopt in the sign
// phase; `confirmed` is false while the fit's status is still on its way from the device
// (the temperature may then be NaN: a failed fit).
struct StepTemperature {
  std::function<std::optional<at::Tensor>(const c10::Device&)> on;
  bool confirmed = true;
};

// The declarations of a Rule's work hooks (see above), for the rule structs' bodies; each
// rule defines them in its .cpp file.
#define SOFTSIGN_RULE_WORK_HOOKS                                                           \
  static Work gather(const torch::optim::OptimizerParamGroup& group, size_t index,         \
                     const StateMap& state, const Options& o);                             \
  static bool has_elements(const Work& work);                                              \
  static std::tuple<at::Tensor, at::Tensor> statistics(const Work& work, const Options& o, \
                                                       const c10::Device& home);           \
  static void update(Work& work, const Options& o, StateMap& state,                        \
                     const StepTemperature& temperature);

template <typename Rule>
class ScheduledOptimizer : public torch::optim::Optimizer {
 public:
  using Options = typename Rule::Options;
  using ParamState = typename Rule::ParamState;

  // One step of every group; returns the closure's loss (undefined without a closure).
  // Checks every group and fits every due temperature before it changes any parameter.
  // The fit waits for a step on which the group has a gradient with elements. step() never
  // synchronizes with the device: on an accelerator the fit's status is read from pinned
  // memory at a later step, once its event has completed.
  torch::Tensor step(LossClosure closure = nullptr) override;

  // Merges the group's options with the defaults (fields left at their Options() default
  // inherit, as in torch's optimizers), validates them and the params, then adds the group
  // at step 0, unfitted. Throws c10::Error ("Invalid ...") and leaves the optimizer as it was.
  void add_param_group(const torch::optim::OptimizerParamGroup& param_group);

  // The temperature the group's last step used (tau_j, j = min(k - S - 1, T - 1)); nullopt in
  // the sign phase, before the fit, without a transition and for unscheduled groups. Waits
  // for an in-flight fit: for logging.
  std::optional<double> temperature(size_t group = 0);

  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  // False for the plain optimizers (Signum, Lion, Muon): the sign phase forever.
  bool has_transition() const { return transition_; }

 protected:
  ScheduledOptimizer(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                     Options defaults, bool transition);
  Options& group_options(size_t group);

 private:
  Phases phases_of(const Options& o) const;
  detail::ScheduleParams schedule_params(const Options& o) const;
  c10::Device home_device(size_t group) const;

  bool transition_;
};

// The constructors of a soft optimizer (Soft<X>: the transition on): from param groups
// or a plain parameter list, with the defaults for every group. A soft optimizer class is
// `class SoftX : public SoftOptimizer<XRule> { using SoftOptimizer::SoftOptimizer; };`.
template <typename Rule>
class SoftOptimizer : public ScheduledOptimizer<Rule> {
 public:
  using Options = typename Rule::Options;
  explicit SoftOptimizer(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                         Options defaults = {})
      : SoftOptimizer(param_groups, std::move(defaults), /*transition=*/true) {}
  explicit SoftOptimizer(std::vector<torch::Tensor> params, Options defaults = {})
      : SoftOptimizer(std::move(params), std::move(defaults), /*transition=*/true) {}

 protected:
  SoftOptimizer(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                Options defaults, bool transition)
      : ScheduledOptimizer<Rule>(param_groups, std::move(defaults), transition) {}
  SoftOptimizer(std::vector<torch::Tensor> params, Options defaults, bool transition)
      : SoftOptimizer({torch::optim::OptimizerParamGroup(std::move(params))}, std::move(defaults),
                      transition) {}
};

// The plain optimizer of a soft one (X of SoftX): the same class with the transition off,
// the sign phase forever. `class X : public PlainOptimizer<SoftX> { using
// PlainOptimizer::PlainOptimizer; };`.
template <typename Soft>
class PlainOptimizer : public Soft {
 public:
  using Options = typename Soft::Options;
  explicit PlainOptimizer(const std::vector<torch::optim::OptimizerParamGroup>& param_groups,
                          Options defaults = {})
      : Soft(param_groups, std::move(defaults), /*transition=*/false) {}
  explicit PlainOptimizer(std::vector<torch::Tensor> params, Options defaults = {})
      : Soft(std::move(params), std::move(defaults), /*transition=*/false) {}
};

// Validates the shared schedule options of `o` (docs/algorithms.md section 2) of optimizer
// Soft<plain> (transition) or <plain>, whose options must then leave total_steps,
// sign_steps and transition_steps unset. Warns for a transition shorter than
// kMinTransitionSteps.
void validate_schedule(const char* plain, bool transition, std::optional<int64_t> total_steps,
                       double alpha_sign, std::optional<int64_t> sign_steps,
                       std::optional<int64_t> transition_steps, double eps, int64_t newton_iters,
                       double tmax);

// S and T of a soft optimizer's group options (see resolve_phases in group_schedule.h).
template <typename Options>
Phases resolve_phases(const Options& o) {
  return resolve_phases(o.total_steps(), o.alpha_sign(), o.sign_steps(), o.transition_steps());
}

template <typename Options>
void validate_schedule(const char* plain, bool transition, const Options& o) {
  validate_schedule(plain, transition, o.total_steps(), o.alpha_sign(), o.sign_steps(),
                    o.transition_steps(), o.eps(), o.newton_iters(), o.tmax());
}

}  // namespace softsign::optim
