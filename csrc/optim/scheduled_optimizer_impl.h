// The definitions of ScheduledOptimizer<Rule> (softsign/optim/scheduled_optimizer.h). A
// rule's .cpp file includes this after defining its Work and hooks, and instantiates the
// template once: `template class ScheduledOptimizer<SignumRule>;`.
#pragma once

#include <ATen/ATen.h>
#include <torch/optim/serialize.h>

#include <limits>
#include <memory>
#include <utility>

#include "softsign/optim/scheduled_optimizer.h"

namespace softsign::optim {

template <typename Rule>
ScheduledOptimizer<Rule>::ScheduledOptimizer(
    const std::vector<torch::optim::OptimizerParamGroup>& param_groups, Options defaults,
    bool transition)
    : Optimizer(std::vector<torch::optim::OptimizerParamGroup>(),
                std::make_unique<Options>(std::move(defaults))),
      transition_(transition) {
  Rule::validate(static_cast<const Options&>(*defaults_), transition_);
  for (const auto& group : param_groups) add_param_group(group);
}

template <typename Rule>
void ScheduledOptimizer<Rule>::add_param_group(
    const torch::optim::OptimizerParamGroup& param_group) {
  const auto& defaults = static_cast<const Options&>(*defaults_);
  const Options* user = &defaults;
  if (param_group.has_options()) {
    user = dynamic_cast<const Options*>(&param_group.options());
    TORCH_CHECK(user != nullptr, "softsign: ", transition_ ? "Soft" : "", Rule::kName,
                " expected param group options of its own options type");
  }
  Options options = detail::merge_options(defaults, *user);
  Rule::validate(options, transition_);
  const size_t index = param_groups_.size();
  for (const at::Tensor& p : param_group.params()) {
    TORCH_CHECK(!p.is_complex(), "softsign: complex parameters are not supported (param group ",
                index, ")");
    Rule::check_param(options, p, index);
  }
  Optimizer::add_param_group(torch::optim::OptimizerParamGroup(param_group.params()));
  param_groups_.back().set_options(std::make_unique<Options>(std::move(options)));
}

template <typename Rule>
typename ScheduledOptimizer<Rule>::Options& ScheduledOptimizer<Rule>::group_options(size_t group) {
  TORCH_CHECK(group < param_groups_.size(), "softsign: expected a param group index below ",
              param_groups_.size(), ", got ", group);
  return static_cast<Options&>(param_groups_[group].options());
}

template <typename Rule>
Phases ScheduledOptimizer<Rule>::phases_of(const Options& o) const {
  // The plain optimizer: S beyond any step count.
  if (!transition_) return Phases{std::numeric_limits<int64_t>::max(), 1};
  return resolve_phases(o.total_steps(), o.alpha_sign(), o.sign_steps(), o.transition_steps());
}

template <typename Rule>
detail::ScheduleParams ScheduledOptimizer<Rule>::schedule_params(const Options& o) const {
  return {o.eps(), o.newton_iters(), o.tmax(), Rule::kKind, Rule::kStatistic};
}

template <typename Rule>
c10::Device ScheduledOptimizer<Rule>::home_device(size_t group) const {
  const auto& params = param_groups_[group].params();
  return params.empty() ? c10::Device(c10::kCPU) : params.front().device();
}

template <typename Rule>
torch::Tensor ScheduledOptimizer<Rule>::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  const size_t n = param_groups_.size();
  // 1. Checks of every group, and fits whose status has arrived: may throw, changes nothing.
  std::vector<typename Rule::Work> work;
  work.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    work.push_back(Rule::gather(param_groups_[i], i, state_, group_options(i)));
  }
  for (size_t i = 0; i < n; ++i) {
    Options& o = group_options(i);
    if (Rule::scheduled(o)) o.schedule_.resolve_pending(/*wait=*/false, schedule_params(o));
  }
  // 2. Fits due at this step, for every group before any update: on CPU a non-finite
  // statistic throws here, while every parameter is still untouched.
  std::vector<std::optional<detail::FitLaunch>> fits(n);
  for (size_t i = 0; i < n; ++i) {
    Options& o = group_options(i);
    const Phases phases = phases_of(o);
    if (!transition_ || !Rule::scheduled(o) ||
        !o.schedule_.fit_due(phases, Rule::has_elements(work[i]))) {
      continue;
    }
    const auto [median, mad] = Rule::statistics(work[i], o, home_device(i));
    fits[i] = detail::GroupSchedule::launch(median, mad, schedule_params(o));
  }
  // 3. Commit: step counts, fit results, then the updates.
  for (size_t i = 0; i < n; ++i) {
    Options& o = group_options(i);
    ++o.schedule_.step_count;
    if (fits[i]) o.schedule_.commit(*fits[i], schedule_params(o));
  }
  for (size_t i = 0; i < n; ++i) {
    Options& o = group_options(i);
    const Phases phases = phases_of(o);
    const c10::Device home = home_device(i);
    StepTemperature temperature;
    if (Rule::scheduled(o)) {
      temperature.on = [&o, phases, home, this](const c10::Device& device) {
        return o.schedule_.temperature_at(o.schedule_.step_count, phases, device, home,
                                          schedule_params(o));
      };
      temperature.confirmed = o.schedule_.fitted;
    } else {
      temperature.on = [](const c10::Device&) -> std::optional<at::Tensor> { return std::nullopt; };
    }
    Rule::update(work[i], o, state_, temperature);
  }
  return loss;
}

template <typename Rule>
std::optional<double> ScheduledOptimizer<Rule>::temperature(size_t group) {
  Options& o = group_options(group);
  if (!transition_ || !Rule::scheduled(o)) return std::nullopt;
  return o.schedule_.last_temperature(phases_of(o), home_device(group), schedule_params(o));
}

template <typename Rule>
void ScheduledOptimizer<Rule>::save(torch::serialize::OutputArchive& archive) const {
  // A fit still in flight is awaited, so that the checkpoint holds it. save() is const in
  // torch::optim; completing the fit changes no observable value.
  auto* self = const_cast<ScheduledOptimizer*>(this);
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    Options& o = self->group_options(i);
    if (Rule::scheduled(o)) o.schedule_.resolve_pending(/*wait=*/true, schedule_params(o));
  }
  torch::optim::serialize<ParamState, Options>(archive, *this);
}

template <typename Rule>
void ScheduledOptimizer<Rule>::load(torch::serialize::InputArchive& archive) {
  // Replaces every group's options by copy assignment, which empties the schedule caches
  // (Note [schedule cache]).
  torch::optim::serialize<ParamState, Options>(archive, *this);
}

}  // namespace softsign::optim
