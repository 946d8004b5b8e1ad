// SoftMuon and Muon over the softsign op API (matrix groups) and torch's fused AdamW op
// (the other groups). The optimizers only organize the calls.
#include "softsign/optim/soft_muon.h"

#include <ATen/ATen.h>
#include <torch/optim/serialize.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <limits>
#include <utility>

#include "softsign/ops.h"

namespace softsign::optim {
namespace {

using torch::optim::OptimizerParamGroup;
using StateMap = ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>;

void validate(const SoftMuonOptions& o, bool transition) {
  // The same checks, and bounds, as the Python optimizers (softsign/optim/soft_muon.py).
  TORCH_CHECK(std::isfinite(o.lr()) && o.lr() >= 0, "Invalid learning rate: ", o.lr());
  TORCH_CHECK(o.momentum() >= 0 && o.momentum() < 1, "Invalid momentum value: ", o.momentum(),
              " (expected 0 <= momentum < 1)");
  TORCH_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0,
              "Invalid weight_decay value: ", o.weight_decay());
  TORCH_CHECK(o.ns_steps() >= 0, "Invalid ns_steps value: ", o.ns_steps());
  TORCH_CHECK(o.adjust_lr() == "original" || o.adjust_lr() == "match_rms_adamw",
              "Invalid adjust_lr: '", o.adjust_lr(), "' (expected original or match_rms_adamw)");
  TORCH_CHECK(o.soft_map() == "newton_schulz" || o.soft_map() == "accurate", "Invalid soft_map: '",
              o.soft_map(), "' (expected newton_schulz or accurate)");
  TORCH_CHECK(o.soft_steps() >= 0, "Invalid soft_steps value: ", o.soft_steps());
  TORCH_CHECK(std::isfinite(o.adamw_lr()) && o.adamw_lr() >= 0,
              "Invalid AdamW learning rate: ", o.adamw_lr());
  const auto [beta1, beta2] = o.adamw_betas();
  TORCH_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "Invalid AdamW betas: (", beta1,
              ", ", beta2, ")");
  TORCH_CHECK(o.adamw_eps() >= 0, "Invalid AdamW eps: ", o.adamw_eps());
  TORCH_CHECK(o.adamw_weight_decay() >= 0, "Invalid AdamW weight_decay: ", o.adamw_weight_decay());
  if (!transition) {
    TORCH_CHECK(!o.total_steps() && !o.sign_steps() && !o.transition_steps(),
                "Invalid Muon options: Muon has no transition (use SoftMuon for total_steps, "
                "sign_steps and transition_steps)");
    return;
  }
  TORCH_CHECK(o.alpha_sign() > 0 && o.alpha_sign() <= 1,
              "Invalid alpha_sign value: ", o.alpha_sign(), " (expected 0 < alpha_sign <= 1)");
  TORCH_CHECK(o.eps() > 0 && o.eps() < 1, "Invalid eps value: ", o.eps(),
              " (expected 0 < eps < 1)");
  TORCH_CHECK(o.newton_iters() >= 0, "Invalid newton_iters value: ", o.newton_iters());
  TORCH_CHECK(o.tmax() >= 1 && o.tmax() <= 1e38, "Invalid tmax value: ", o.tmax());
  TORCH_CHECK(!o.total_steps() || *o.total_steps() >= 1, "Invalid total_steps value");
  TORCH_CHECK(!o.sign_steps() || *o.sign_steps() >= 0, "Invalid sign_steps value");
  TORCH_CHECK(!o.transition_steps() || *o.transition_steps() >= 1,
              "Invalid transition_steps value");
  TORCH_CHECK(o.total_steps() || (o.sign_steps() && o.transition_steps()),
              "Invalid SoftMuon options: pass total_steps, or both sign_steps and "
              "transition_steps (Muon is the optimizer without a transition)");
  warn_short_transition("SoftMuon", o.total_steps(), o.alpha_sign(), o.sign_steps(),
                        o.transition_steps());
}

// Fields left at their constructor default inherit from the optimizer's defaults, as in
// torch's own optimizers (see group_options_for in soft_signum.cpp).
SoftMuonOptions merge(const SoftMuonOptions& defaults, const SoftMuonOptions& user) {
  const SoftMuonOptions fresh;
  SoftMuonOptions out;
#define SOFTSIGN_INHERIT(name) out.name(user.name() == fresh.name() ? defaults.name() : user.name())
  SOFTSIGN_INHERIT(lr);
  SOFTSIGN_INHERIT(momentum);
  SOFTSIGN_INHERIT(nesterov);
  SOFTSIGN_INHERIT(weight_decay);
  SOFTSIGN_INHERIT(ns_steps);
  SOFTSIGN_INHERIT(total_steps);
  SOFTSIGN_INHERIT(alpha_sign);
  SOFTSIGN_INHERIT(sign_steps);
  SOFTSIGN_INHERIT(transition_steps);
  SOFTSIGN_INHERIT(eps);
  SOFTSIGN_INHERIT(newton_iters);
  SOFTSIGN_INHERIT(tmax);
  SOFTSIGN_INHERIT(soft_map);
  SOFTSIGN_INHERIT(soft_steps);
  SOFTSIGN_INHERIT(adjust_lr);
  SOFTSIGN_INHERIT(use_muon);
  SOFTSIGN_INHERIT(adamw_lr);
  SOFTSIGN_INHERIT(adamw_betas);
  SOFTSIGN_INHERIT(adamw_eps);
  SOFTSIGN_INHERIT(adamw_weight_decay);
#undef SOFTSIGN_INHERIT
  return out;
}

// Python's routing of a plain parameter list (softsign/optim/soft_muon.py): matrices
// take the matrix path, the rest AdamW.
std::vector<OptimizerParamGroup> route(const std::vector<torch::Tensor>& params,
                                       const SoftMuonOptions& defaults) {
  std::vector<torch::Tensor> matrices, others;
  for (const torch::Tensor& p : params) (p.dim() >= 2 ? matrices : others).push_back(p);
  const auto adamw = [&](std::vector<torch::Tensor> group) {
    return OptimizerParamGroup(std::move(group), std::make_unique<SoftMuonOptions>(
                                                     SoftMuonOptions(defaults).use_muon(false)));
  };
  // One group when the defaults suit every param (use_muon(false) asks for AdamW for all).
  if (others.empty() || !defaults.use_muon()) return {OptimizerParamGroup(params)};
  if (matrices.empty()) return {adamw(params)};
  TORCH_WARN_ONCE(
      "softsign: SoftMuon/Muon given a plain parameter list: matrices take the Muon update and "
      "the other parameters AdamW. Embeddings and output heads are matrices too: give them an "
      "explicit param group with use_muon(false).");
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::move(matrices));
  groups.push_back(adamw(std::move(others)));
  return groups;
}

detail::ScheduleParams schedule_params(const SoftMuonOptions& o) {
  return {o.eps(), o.newton_iters(), o.tmax(), "algebraic", "the gradients' singular values"};
}

Phases phases_of(const SoftMuonOptions& o, bool transition) {
  // Muon: S beyond any step count.
  if (!transition) return Phases{std::numeric_limits<int64_t>::max(), 1};
  return resolve_phases(o);
}

// A group's params with gradients on one device.
struct DeviceLists {
  c10::Device device;
  std::vector<at::Tensor> params, grads;
};

std::vector<DeviceLists> gather(const OptimizerParamGroup& group, size_t index) {
  std::vector<DeviceLists> out;
  for (const at::Tensor& p : group.params()) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    TORCH_CHECK(g.layout() == at::kStrided,
                "softsign: sparse gradients are not supported (param group ", index, ")");
    TORCH_CHECK(!g.is_complex(), "softsign: complex gradients are not supported (param group ",
                index, ")");
    TORCH_CHECK(
        g.device() == p.device() && g.scalar_type() == p.scalar_type() && g.sizes() == p.sizes(),
        "softsign: expected a gradient of the parameter's device, dtype and shape ",
        "(param group ", index, ")");
    auto it = std::find_if(out.begin(), out.end(),
                           [&](const DeviceLists& l) { return l.device == p.device(); });
    if (it == out.end()) {
      out.push_back(DeviceLists{p.device(), {}, {}});
      it = std::prev(out.end());
    }
    it->params.push_back(p);
    it->grads.push_back(g);
  }
  return out;
}

// True when the group's gradients have at least one element: the fit needs one.
bool has_elements(const std::vector<DeviceLists>& work) {
  return std::any_of(work.begin(), work.end(), [](const DeviceLists& l) {
    return std::any_of(l.grads.begin(), l.grads.end(),
                       [](const at::Tensor& g) { return g.numel() > 0; });
  });
}

SoftMuonParamState& state_of(StateMap& state, const at::Tensor& p) {
  auto& slot = state[p.unsafeGetTensorImpl()];
  if (!slot) slot = std::make_unique<SoftMuonParamState>();
  return static_cast<SoftMuonParamState&>(*slot);
}

ops::MuonStepArgs muon_args(const SoftMuonOptions& o) {
  ops::MuonStepArgs args;
  args.lr = o.lr();
  args.momentum = o.momentum();
  args.nesterov = o.nesterov();
  args.weight_decay = o.weight_decay();
  args.ns_steps = o.ns_steps();
  args.adjust_lr = o.adjust_lr();
  args.soft_map = o.soft_map();
  args.soft_steps = o.soft_steps();
  return args;
}

void adamw_update(const SoftMuonOptions& o, DeviceLists& lists, StateMap& state) {
  std::vector<at::Tensor> exp_avgs, exp_avg_sqs, steps;
  for (const at::Tensor& p : lists.params) {
    SoftMuonParamState& s = state_of(state, p);
    if (!s.step().defined()) {
      s.step(at::zeros({}, p.options().dtype(at::kFloat)));
      s.exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
      s.exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
    }
    exp_avgs.push_back(s.exp_avg());
    exp_avg_sqs.push_back(s.exp_avg_sq());
    steps.push_back(s.step());
  }
  // What torch.optim.AdamW(fused=True) does: count, then torch's fused op.
  at::_foreach_add_(steps, 1);
  const auto [beta1, beta2] = o.adamw_betas();
  at::_fused_adamw_(lists.params, lists.grads, exp_avgs, exp_avg_sqs, {}, steps, o.adamw_lr(),
                    beta1, beta2, o.adamw_weight_decay(), o.adamw_eps(), /*amsgrad=*/false,
                    /*maximize=*/false);
}

c10::Device home_device(const OptimizerParamGroup& group) {
  return group.params().empty() ? c10::Device(c10::kCPU) : group.params().front().device();
}

}  // namespace

// ---- options and state ----------------------------------------------------------------

SoftMuonOptions::SoftMuonOptions(double lr) : lr_(lr) {}

double SoftMuonOptions::get_lr() const { return use_muon() ? lr() : adamw_lr(); }
void SoftMuonOptions::set_lr(const double lr) {
  if (use_muon()) {
    this->lr(lr);
  } else {
    adamw_lr(lr);
  }
}

bool operator==(const SoftMuonOptions& lhs, const SoftMuonOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.momentum() == rhs.momentum() &&
         lhs.nesterov() == rhs.nesterov() && lhs.weight_decay() == rhs.weight_decay() &&
         lhs.ns_steps() == rhs.ns_steps() && lhs.total_steps() == rhs.total_steps() &&
         lhs.alpha_sign() == rhs.alpha_sign() && lhs.sign_steps() == rhs.sign_steps() &&
         lhs.transition_steps() == rhs.transition_steps() && lhs.eps() == rhs.eps() &&
         lhs.newton_iters() == rhs.newton_iters() && lhs.tmax() == rhs.tmax() &&
         lhs.soft_map() == rhs.soft_map() && lhs.soft_steps() == rhs.soft_steps() &&
         lhs.adjust_lr() == rhs.adjust_lr() && lhs.use_muon() == rhs.use_muon() &&
         lhs.adamw_lr() == rhs.adamw_lr() && lhs.adamw_betas() == rhs.adamw_betas() &&
         lhs.adamw_eps() == rhs.adamw_eps() &&
         lhs.adamw_weight_decay() == rhs.adamw_weight_decay() && lhs.schedule_ == rhs.schedule_;
}

void SoftMuonOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(ns_steps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(total_steps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(alpha_sign);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(sign_steps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(transition_steps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(newton_iters);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(tmax);
  archive.write("soft_map", c10::IValue(soft_map()));
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(soft_steps);
  archive.write("adjust_lr", c10::IValue(adjust_lr()));
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(use_muon);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(adamw_lr);
  archive.write("adamw_beta1", c10::IValue(std::get<0>(adamw_betas())));
  archive.write("adamw_beta2", c10::IValue(std::get<1>(adamw_betas())));
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(adamw_eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(adamw_weight_decay);
  schedule_.write(archive);
}

void SoftMuonOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, ns_steps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG_OPTIONAL(int64_t, total_steps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, alpha_sign);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG_OPTIONAL(int64_t, sign_steps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG_OPTIONAL(int64_t, transition_steps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, newton_iters);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, tmax);
  c10::IValue value;
  archive.read("soft_map", value);
  soft_map(value.toStringRef());
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, soft_steps);
  archive.read("adjust_lr", value);
  adjust_lr(value.toStringRef());
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, use_muon);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, adamw_lr);
  archive.read("adamw_beta1", value);
  const double beta1 = value.toDouble();
  archive.read("adamw_beta2", value);
  adamw_betas(std::make_tuple(beta1, value.toDouble()));
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, adamw_eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, adamw_weight_decay);
  schedule_.read(archive);
}

void SoftMuonParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg_sq);
}

void SoftMuonParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg_sq);
}

Phases resolve_phases(const SoftMuonOptions& o) {
  return resolve_phases(o.total_steps(), o.alpha_sign(), o.sign_steps(), o.transition_steps());
}

// ---- SoftMuon / Muon ---------------------------------------------------------------------

SoftMuon::SoftMuon(const std::vector<OptimizerParamGroup>& param_groups, SoftMuonOptions defaults,
                   bool transition)
    : Optimizer(std::vector<OptimizerParamGroup>(),
                std::make_unique<SoftMuonOptions>(std::move(defaults))),
      transition_(transition) {
  validate(static_cast<const SoftMuonOptions&>(*defaults_), transition_);
  for (const auto& group : param_groups) add_param_group(group);
}

SoftMuon::SoftMuon(const std::vector<OptimizerParamGroup>& param_groups, SoftMuonOptions defaults)
    : SoftMuon(param_groups, std::move(defaults), /*transition=*/true) {}

SoftMuon::SoftMuon(std::vector<torch::Tensor> params, SoftMuonOptions defaults)
    : SoftMuon(route(params, defaults), defaults) {}

Muon::Muon(const std::vector<OptimizerParamGroup>& param_groups, MuonOptions defaults)
    : SoftMuon(param_groups, std::move(defaults), /*transition=*/false) {}

Muon::Muon(std::vector<torch::Tensor> params, MuonOptions defaults)
    : Muon(route(params, defaults), defaults) {}

void SoftMuon::add_param_group(const OptimizerParamGroup& param_group) {
  const auto& defaults = static_cast<const SoftMuonOptions&>(*defaults_);
  SoftMuonOptions options = defaults;
  if (param_group.has_options()) {
    const auto* user = dynamic_cast<const SoftMuonOptions*>(&param_group.options());
    TORCH_CHECK(user != nullptr, "softsign: expected SoftMuonOptions for a param group");
    options = merge(defaults, *user);
  } else {
    options = merge(defaults, defaults);
  }
  validate(options, transition_);
  for (const at::Tensor& p : param_group.params()) {
    TORCH_CHECK(!p.is_complex(), "softsign: complex parameters are not supported");
    TORCH_CHECK(!options.use_muon() || p.dim() >= 2,
                "Invalid param group: use_muon needs matrices, got a parameter of shape ",
                p.sizes(), "; put it in a group with use_muon(false)");
  }
  Optimizer::add_param_group(OptimizerParamGroup(param_group.params()));
  param_groups_.back().set_options(std::make_unique<SoftMuonOptions>(std::move(options)));
}

SoftMuonOptions& SoftMuon::group_options(size_t group) {
  TORCH_CHECK(group < param_groups_.size(), "softsign: expected a param group index below ",
              param_groups_.size(), ", got ", group);
  return static_cast<SoftMuonOptions&>(param_groups_[group].options());
}

torch::Tensor SoftMuon::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  // 1. Checks and arrived fit statuses: may throw, changes nothing.
  std::vector<std::vector<DeviceLists>> work;
  for (size_t i = 0; i < param_groups_.size(); ++i) work.push_back(gather(param_groups_[i], i));
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftMuonOptions& o = group_options(i);
    if (o.use_muon()) o.schedule_.resolve_pending(/*wait=*/false, schedule_params(o));
  }
  // 2. Fits due now, before any update: the singular values of the raw gradients.
  std::vector<std::optional<detail::FitLaunch>> fits(param_groups_.size());
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftMuonOptions& o = group_options(i);
    const Phases phases = phases_of(o, transition_);
    if (!o.use_muon() || !transition_ || !o.schedule_.fit_due(phases, has_elements(work[i]))) {
      continue;
    }
    const c10::Device home = home_device(param_groups_[i]);
    std::vector<at::Tensor> sigmas;
    for (const DeviceLists& lists : work[i]) {
      // 0-element matrices have no singular values.
      std::vector<at::Tensor> grads;
      std::copy_if(lists.grads.begin(), lists.grads.end(), std::back_inserter(grads),
                   [](const at::Tensor& g) { return g.numel() > 0; });
      if (grads.empty()) continue;
      for (at::Tensor& s : ops::singular_values(grads)) sigmas.push_back(s.to(home));
    }
    const auto [median, mad] = ops::median_mad(sigmas);
    fits[i] =
        detail::GroupSchedule::launch(median, mad, phases.transition_steps, schedule_params(o));
  }
  // 3. Commit step counts and fits, then update.
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftMuonOptions& o = group_options(i);
    ++o.schedule_.step_count;
    if (fits[i]) {
      o.schedule_.commit(*fits[i], phases_of(o, transition_).transition_steps, schedule_params(o));
    }
  }
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftMuonOptions& o = group_options(i);
    const Phases phases = phases_of(o, transition_);
    const c10::Device home = home_device(param_groups_[i]);
    for (DeviceLists& lists : work[i]) {
      if (!o.use_muon()) {
        adamw_update(o, lists, state_);
        continue;
      }
      std::vector<at::Tensor> bufs;
      for (const at::Tensor& p : lists.params) {
        SoftMuonParamState& s = state_of(state_, p);
        if (!s.momentum_buffer().defined()) {
          s.momentum_buffer(at::zeros_like(p, at::MemoryFormat::Preserve));
        }
        bufs.push_back(s.momentum_buffer());
      }
      const auto tau = o.schedule_.temperature_at(o.schedule_.step_count, phases, lists.device,
                                                  home, schedule_params(o));
      // A fit whose status is unread (an accelerator's, for a step or so) may have failed:
      // the step then must leave the momentum too, decided on the device.
      std::optional<at::Tensor> failed;
      if (tau.has_value() && !o.schedule_.fitted) {
        failed = at::logical_not(at::isfinite(*tau)).to(at::kFloat);
      }
      ops::muon_step_(lists.params, lists.grads, bufs, muon_args(o), tau, failed);
    }
  }
  return loss;
}

std::optional<double> SoftMuon::temperature(size_t group) {
  SoftMuonOptions& o = group_options(group);
  if (!o.use_muon() || !transition_) return std::nullopt;
  return o.schedule_.last_temperature(resolve_phases(o), home_device(param_groups_[group]),
                                      schedule_params(o));
}

void SoftMuon::save(torch::serialize::OutputArchive& archive) const {
  // A fit still in flight is awaited so that the checkpoint holds it (see SoftSignum::save).
  auto* self = const_cast<SoftMuon*>(this);
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftMuonOptions& o = self->group_options(i);
    if (o.use_muon()) o.schedule_.resolve_pending(/*wait=*/true, schedule_params(o));
  }
  torch::optim::serialize<SoftMuonParamState, SoftMuonOptions>(archive, *this);
}

void SoftMuon::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<SoftMuonParamState, SoftMuonOptions>(archive, *this);
}

}  // namespace softsign::optim
