// SoftSignum and Signum over the softsign op API. The optimizers only organize the call:
// which params have gradients, which momentum buffers are new, when the temperature is
// fitted and which temperature a step uses. All arithmetic happens in the ops.
#include "softsign/optim/soft_signum.h"

#include <ATen/ATen.h>
#include <torch/optim/serialize.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "softsign/ops.h"

namespace softsign::optim {
namespace {

using torch::optim::OptimizerParamGroup;
using StateMap = ska::flat_hash_map<void*, std::unique_ptr<torch::optim::OptimizerParamState>>;

// ---- options -----------------------------------------------------------------------------

template <typename Options>
void validate_update_rule(const Options& o) {
  // The same checks, and bounds, as the Python optimizers (softsign/optim/_validate.py).
  TORCH_CHECK(std::isfinite(o.lr()) && o.lr() >= 0, "Invalid learning rate: ", o.lr());
  TORCH_CHECK(o.momentum() >= 0 && o.momentum() <= 1, "Invalid momentum value: ", o.momentum(),
              " (expected 0 <= momentum <= 1)");
  TORCH_CHECK(o.dampening() >= 0 && o.dampening() <= 1, "Invalid dampening value: ", o.dampening(),
              " (expected 0 <= dampening <= 1)");
  TORCH_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0,
              "Invalid weight_decay value: ", o.weight_decay());
  TORCH_CHECK(!o.nesterov() || (o.momentum() > 0 && o.dampening() == 0),
              "Invalid nesterov: Nesterov momentum requires momentum > 0 and dampening = 0");
}

void validate(const SignumOptions& o) { validate_update_rule(o); }

void validate(const SoftSignumOptions& o) {
  validate_update_rule(o);
  TORCH_CHECK(o.alpha_sign() > 0 && o.alpha_sign() <= 1,
              "Invalid alpha_sign value: ", o.alpha_sign(), " (expected 0 < alpha_sign <= 1)");
  TORCH_CHECK(o.eps() > 0 && o.eps() < 1, "Invalid eps value: ", o.eps(),
              " (expected 0 < eps < 1)");
  TORCH_CHECK(o.newton_iters() >= 0, "Invalid newton_iters value: ", o.newton_iters());
  // The kernels use tau in float32: keep it finite there.
  TORCH_CHECK(o.tmax() >= 1 && o.tmax() <= 1e38, "Invalid tmax value: ", o.tmax(),
              " (expected 1 <= tmax <= 1e38)");
  TORCH_CHECK(!o.total_steps() || *o.total_steps() >= 1,
              "Invalid total_steps value: ", *o.total_steps());
  TORCH_CHECK(!o.sign_steps() || *o.sign_steps() >= 0,
              "Invalid sign_steps value: ", *o.sign_steps());
  TORCH_CHECK(!o.transition_steps() || *o.transition_steps() >= 1,
              "Invalid transition_steps value: ", *o.transition_steps());
  TORCH_CHECK(o.total_steps() || (o.sign_steps() && o.transition_steps()),
              "Invalid SoftSignum options: pass total_steps, or both sign_steps and "
              "transition_steps (Signum is the optimizer without a transition)");
  warn_short_transition("SoftSignum", o.total_steps(), o.alpha_sign(), o.sign_steps(),
                        o.transition_steps());
}

// Group options inherit every field the user left at its constructor default: the rule of
// torch's own optimizers (Optimizer::_merge_by_comparison). torch::optim::Optimizer's
// add_param_group applies it to torch's option types only and silently keeps the defaults
// for any other, which is why both optimizers add their groups themselves.
#define SOFTSIGN_INHERIT(name) out.name(user.name() == fresh.name() ? defaults.name() : user.name())

template <typename Options>
void inherit_update_rule(Options& out, const Options& defaults, const Options& user) {
  const Options fresh;
  SOFTSIGN_INHERIT(lr);
  SOFTSIGN_INHERIT(momentum);
  SOFTSIGN_INHERIT(dampening);
  SOFTSIGN_INHERIT(weight_decay);
  SOFTSIGN_INHERIT(nesterov);
  SOFTSIGN_INHERIT(maximize);
}

SignumOptions merge(const SignumOptions& defaults, const SignumOptions& user) {
  SignumOptions out;
  inherit_update_rule(out, defaults, user);
  return out;
}

// The result starts a fresh group: step count 0, no fit.
SoftSignumOptions merge(const SoftSignumOptions& defaults, const SoftSignumOptions& user) {
  const SoftSignumOptions fresh;
  SoftSignumOptions out;
  inherit_update_rule(out, defaults, user);
  SOFTSIGN_INHERIT(total_steps);
  SOFTSIGN_INHERIT(alpha_sign);
  SOFTSIGN_INHERIT(sign_steps);
  SOFTSIGN_INHERIT(transition_steps);
  SOFTSIGN_INHERIT(eps);
  SOFTSIGN_INHERIT(newton_iters);
  SOFTSIGN_INHERIT(tmax);
#undef SOFTSIGN_INHERIT
  return out;
}

template <typename Options>
Options group_options_for(const OptimizerParamGroup& group, const Options& defaults) {
  if (!group.has_options()) return merge(defaults, defaults);
  const auto* user = dynamic_cast<const Options*>(&group.options());
  TORCH_CHECK(user != nullptr, "softsign: expected param group options of the optimizer's own ",
              "options type");
  return merge(defaults, *user);
}

void check_real(const OptimizerParamGroup& group, size_t index) {
  for (const at::Tensor& p : group.params()) {
    TORCH_CHECK(!p.is_complex(), "softsign: complex parameters are not supported (param group ",
                index, ")");
  }
}

template <typename Options>
ops::SoftSignStepArgs step_args(const Options& o) {
  ops::SoftSignStepArgs args;
  args.lr = o.lr();
  args.momentum = o.momentum();
  args.dampening = o.dampening();
  args.weight_decay = o.weight_decay();
  args.nesterov = o.nesterov();
  args.maximize = o.maximize();
  return args;
}

// ---- one group's work ----------------------------------------------------------------------

// Tensors of one fused call. A fused call takes one device, and one first_step flag.
struct CallLists {
  std::vector<at::Tensor> params, grads, bufs;
};

// The params of a group that have a gradient, on one device: `buffered` have a momentum
// buffer (or need none: momentum 0), `fresh` get theirs on this step (first_step).
struct DeviceBucket {
  c10::Device device;
  CallLists buffered, fresh;
  std::vector<std::pair<at::Tensor, at::Tensor>> new_bufs;  // (param, buffer) to store
};

// The op steps any layout through dense stand-ins (Note [step layouts]). A buffer whose
// strides differ from its dense param's (the param was re-laid out since, say to
// channels_last) is re-laid out here once and kept, so that it needs no stand-in again.
at::Tensor in_layout_of(const at::Tensor& like, const at::Tensor& t) {
  if (!like.is_non_overlapping_and_dense() || t.strides() == like.strides()) return t;
  return at::empty_like(like).copy_(t);
}

// Collects a group's params with gradients and checks them; allocates (but does not yet
// store) the buffers of params seen for the first time. Throws before anything changes.
std::vector<DeviceBucket> gather(const OptimizerParamGroup& group, size_t index,
                                 const StateMap& state, double momentum) {
  std::vector<DeviceBucket> buckets;
  for (const at::Tensor& p : group.params()) {
    const at::Tensor& g = p.grad();
    if (!g.defined()) continue;
    TORCH_CHECK(g.layout() == at::kStrided,
                "softsign: sparse gradients are not supported (param group ", index, ")");
    TORCH_CHECK(!p.is_complex(), "softsign: complex parameters are not supported (param group ",
                index, ")");
    TORCH_CHECK(
        g.device() == p.device() && g.scalar_type() == p.scalar_type() && g.sizes() == p.sizes(),
        "softsign: expected a gradient of the parameter's device, dtype and shape ",
        "(param group ", index, "), got ", g.device(), " ", g.scalar_type(), " ", g.sizes(),
        " for ", p.device(), " ", p.scalar_type(), " ", p.sizes());
    auto bucket = std::find_if(buckets.begin(), buckets.end(),
                               [&](const DeviceBucket& b) { return b.device == p.device(); });
    if (bucket == buckets.end()) {
      buckets.push_back(DeviceBucket{p.device(), {}, {}, {}});
      bucket = std::prev(buckets.end());
    }
    at::Tensor buf;
    if (momentum != 0) {
      auto it = state.find(p.unsafeGetTensorImpl());
      if (it != state.end()) {
        buf = static_cast<const SoftSignumParamState&>(*it->second).momentum_buffer();
      }
    }
    CallLists& lists = (momentum != 0 && !buf.defined()) ? bucket->fresh : bucket->buffered;
    lists.params.push_back(p);
    lists.grads.push_back(g);
    if (momentum != 0) {
      at::Tensor laid_out =
          buf.defined() ? in_layout_of(p, buf) : at::zeros_like(p, at::MemoryFormat::Preserve);
      if (!laid_out.is_same(buf)) bucket->new_bufs.emplace_back(p, laid_out);
      lists.bufs.push_back(std::move(laid_out));
    }
  }
  return buckets;
}

// True when the group's gradients have at least one element: the fit needs one.
bool has_elements(const std::vector<DeviceBucket>& buckets) {
  for (const DeviceBucket& b : buckets) {
    for (const CallLists* lists : {&b.buffered, &b.fresh}) {
      for (const at::Tensor& g : lists->grads) {
        if (g.numel() > 0) return true;
      }
    }
  }
  return false;
}

// Median and MAD of the fit statistic, the post-momentum direction of every param. A
// group on one device is read in place (Note [radix selection]); a group spread over
// devices gathers its directions on `home` first.
std::tuple<at::Tensor, at::Tensor> statistics(const std::vector<DeviceBucket>& buckets,
                                              ops::SoftSignStepArgs args, const c10::Device& home) {
  if (buckets.size() == 1) {
    const DeviceBucket& b = buckets.front();
    const ops::SelectionSource src{b.buffered.grads, b.buffered.bufs, b.fresh.grads, args.momentum,
                                   args.dampening,   args.nesterov,   args.maximize, std::nullopt};
    return ops::direction_median_mad(src);
  }
  std::vector<at::Tensor> out;
  for (const DeviceBucket& b : buckets) {
    for (const bool first_step : {false, true}) {
      const CallLists& lists = first_step ? b.fresh : b.buffered;
      if (lists.params.empty()) continue;
      args.first_step = first_step;
      for (at::Tensor& d : ops::soft_sign_direction(lists.grads, lists.bufs, args)) {
        out.push_back(b.device == home ? std::move(d) : d.to(home));
      }
    }
  }
  return ops::median_mad(out);
}

// Stores the new buffers and runs the fused step of every bucket; `temperature_on(device)`
// gives the 1-element temperature slice (nullopt: sign phase).
template <typename TemperatureFn>
void update(std::vector<DeviceBucket>& buckets, ops::SoftSignStepArgs args, StateMap& state,
            TemperatureFn&& temperature_on) {
  for (DeviceBucket& b : buckets) {
    const std::optional<at::Tensor> tau = temperature_on(b.device);
    for (const auto& [p, buf] : b.new_bufs) {
      auto& slot = state[p.unsafeGetTensorImpl()];
      if (!slot) slot = std::make_unique<SoftSignumParamState>();
      static_cast<SoftSignumParamState&>(*slot).momentum_buffer(buf);
    }
    for (const bool first_step : {false, true}) {
      CallLists& lists = first_step ? b.fresh : b.buffered;
      if (lists.params.empty()) continue;
      args.first_step = first_step;
      ops::soft_sign_step_(lists.params, lists.grads, lists.bufs, args, std::nullopt, tau);
    }
  }
}

c10::Device home_device(const OptimizerParamGroup& group) {
  return group.params().empty() ? c10::Device(c10::kCPU) : group.params().front().device();
}

detail::ScheduleParams schedule_params(const SoftSignumOptions& o) {
  return {o.eps(), o.newton_iters(), o.tmax(), "tanh", "the momentum"};
}

}  // namespace

// ---- SoftSignumOptions / SignumOptions / param state ------------------------------------------

SoftSignumOptions::SoftSignumOptions(double lr) : lr_(lr) {}

double SoftSignumOptions::get_lr() const { return lr(); }
void SoftSignumOptions::set_lr(const double lr) { this->lr(lr); }

bool operator==(const SoftSignumOptions& lhs, const SoftSignumOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.momentum() == rhs.momentum() &&
         lhs.dampening() == rhs.dampening() && lhs.weight_decay() == rhs.weight_decay() &&
         lhs.nesterov() == rhs.nesterov() && lhs.maximize() == rhs.maximize() &&
         lhs.total_steps() == rhs.total_steps() && lhs.alpha_sign() == rhs.alpha_sign() &&
         lhs.sign_steps() == rhs.sign_steps() && lhs.transition_steps() == rhs.transition_steps() &&
         lhs.eps() == rhs.eps() && lhs.newton_iters() == rhs.newton_iters() &&
         lhs.tmax() == rhs.tmax() && lhs.schedule_ == rhs.schedule_;
}

void SoftSignumOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(dampening);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(maximize);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(total_steps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(alpha_sign);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(sign_steps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(transition_steps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(newton_iters);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(tmax);
  schedule_.write(archive);
}

void SoftSignumOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, dampening);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, maximize);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG_OPTIONAL(int64_t, total_steps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, alpha_sign);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG_OPTIONAL(int64_t, sign_steps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG_OPTIONAL(int64_t, transition_steps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, newton_iters);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, tmax);
  schedule_.read(archive);
}

SignumOptions::SignumOptions(double lr) : lr_(lr) {}

double SignumOptions::get_lr() const { return lr(); }
void SignumOptions::set_lr(const double lr) { this->lr(lr); }

bool operator==(const SignumOptions& lhs, const SignumOptions& rhs) {
  return lhs.lr() == rhs.lr() && lhs.momentum() == rhs.momentum() &&
         lhs.dampening() == rhs.dampening() && lhs.weight_decay() == rhs.weight_decay() &&
         lhs.nesterov() == rhs.nesterov() && lhs.maximize() == rhs.maximize();
}

void SignumOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(dampening);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(nesterov);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(maximize);
}

void SignumOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, momentum);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, dampening);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, nesterov);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, maximize);
}

void SoftSignumParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void SoftSignumParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

Phases resolve_phases(const SoftSignumOptions& o) {
  TORCH_CHECK(o.total_steps() || (o.sign_steps() && o.transition_steps()),
              "Invalid SoftSignum options: pass total_steps, or both sign_steps and "
              "transition_steps");
  return resolve_phases(o.total_steps(), o.alpha_sign(), o.sign_steps(), o.transition_steps());
}

// ---- SoftSignum -------------------------------------------------------------------------------

SoftSignum::SoftSignum(const std::vector<OptimizerParamGroup>& param_groups,
                       SoftSignumOptions defaults)
    : Optimizer(std::vector<OptimizerParamGroup>(),
                std::make_unique<SoftSignumOptions>(std::move(defaults))) {
  validate(static_cast<const SoftSignumOptions&>(*defaults_));
  for (const auto& group : param_groups) add_param_group(group);
}

SoftSignum::SoftSignum(std::vector<torch::Tensor> params, SoftSignumOptions defaults)
    : SoftSignum({OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

void SoftSignum::add_param_group(const OptimizerParamGroup& param_group) {
  SoftSignumOptions options =
      group_options_for(param_group, static_cast<const SoftSignumOptions&>(*defaults_));
  validate(options);
  check_real(param_group, param_groups_.size());
  Optimizer::add_param_group(OptimizerParamGroup(param_group.params()));
  param_groups_.back().set_options(std::make_unique<SoftSignumOptions>(std::move(options)));
}

SoftSignumOptions& SoftSignum::group_options(size_t group) {
  TORCH_CHECK(group < param_groups_.size(), "softsign: expected a param group index below ",
              param_groups_.size(), ", got ", group);
  return static_cast<SoftSignumOptions&>(param_groups_[group].options());
}

torch::Tensor SoftSignum::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }

  // 1. Checks of every group, and fits whose status has arrived: may throw, changes nothing.
  std::vector<std::vector<DeviceBucket>> work;
  work.reserve(param_groups_.size());
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    work.push_back(gather(param_groups_[i], i, state_, group_options(i).momentum()));
  }
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftSignumOptions& o = group_options(i);
    o.schedule_.resolve_pending(/*wait=*/false, schedule_params(o));
  }

  // 2. Fits due at this step, for every group before any update: on CPU a non-finite
  // statistic throws here, while every parameter is still untouched.
  std::vector<std::optional<detail::FitLaunch>> fits(param_groups_.size());
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftSignumOptions& o = group_options(i);
    const Phases phases = resolve_phases(o);
    if (!o.schedule_.fit_due(phases, has_elements(work[i]))) continue;
    const auto [median, mad] = statistics(work[i], step_args(o), home_device(param_groups_[i]));
    fits[i] =
        detail::GroupSchedule::launch(median, mad, phases.transition_steps, schedule_params(o));
  }

  // 3. Commit: step counts, fit results, then the updates.
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftSignumOptions& o = group_options(i);
    ++o.schedule_.step_count;
    if (fits[i]) {
      o.schedule_.commit(*fits[i], resolve_phases(o).transition_steps, schedule_params(o));
    }
  }
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftSignumOptions& o = group_options(i);
    const Phases phases = resolve_phases(o);
    const c10::Device home = home_device(param_groups_[i]);
    update(work[i], step_args(o), state_, [&](const c10::Device& device) {
      return o.schedule_.temperature_at(o.schedule_.step_count, phases, device, home,
                                        schedule_params(o));
    });
  }
  return loss;
}

std::optional<double> SoftSignum::temperature(size_t group) {
  SoftSignumOptions& o = group_options(group);
  return o.schedule_.last_temperature(resolve_phases(o), home_device(param_groups_[group]),
                                      schedule_params(o));
}

void SoftSignum::save(torch::serialize::OutputArchive& archive) const {
  // A fit still in flight is awaited, so that the checkpoint holds it. save() is const in
  // torch::optim; completing the fit changes no observable value.
  auto* self = const_cast<SoftSignum*>(this);
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    SoftSignumOptions& o = self->group_options(i);
    o.schedule_.resolve_pending(/*wait=*/true, schedule_params(o));
  }
  torch::optim::serialize<SoftSignumParamState, SoftSignumOptions>(archive, *this);
}

void SoftSignum::load(torch::serialize::InputArchive& archive) {
  // Replaces every group's options by copy assignment, which empties the schedule caches.
  torch::optim::serialize<SoftSignumParamState, SoftSignumOptions>(archive, *this);
}

// ---- Signum -----------------------------------------------------------------------------------

Signum::Signum(const std::vector<OptimizerParamGroup>& param_groups, SignumOptions defaults)
    : Optimizer(std::vector<OptimizerParamGroup>(),
                std::make_unique<SignumOptions>(std::move(defaults))) {
  validate(static_cast<const SignumOptions&>(*defaults_));
  for (const auto& group : param_groups) add_param_group(group);
}

Signum::Signum(std::vector<torch::Tensor> params, SignumOptions defaults)
    : Signum({OptimizerParamGroup(std::move(params))}, std::move(defaults)) {}

void Signum::add_param_group(const OptimizerParamGroup& param_group) {
  SignumOptions options =
      group_options_for(param_group, static_cast<const SignumOptions&>(*defaults_));
  validate(options);
  check_real(param_group, param_groups_.size());
  Optimizer::add_param_group(OptimizerParamGroup(param_group.params()));
  param_groups_.back().set_options(std::make_unique<SignumOptions>(std::move(options)));
}

torch::Tensor Signum::step(LossClosure closure) {
  at::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  std::vector<std::vector<DeviceBucket>> work;
  work.reserve(param_groups_.size());
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    const auto& o = static_cast<const SignumOptions&>(param_groups_[i].options());
    work.push_back(gather(param_groups_[i], i, state_, o.momentum()));
  }
  for (size_t i = 0; i < param_groups_.size(); ++i) {
    const auto& o = static_cast<const SignumOptions&>(param_groups_[i].options());
    update(work[i], step_args(o), state_,
           [](const c10::Device&) -> std::optional<at::Tensor> { return std::nullopt; });
  }
  return loss;
}

void Signum::save(torch::serialize::OutputArchive& archive) const {
  torch::optim::serialize<SignumParamState, SignumOptions>(archive, *this);
}

void Signum::load(torch::serialize::InputArchive& archive) {
  torch::optim::serialize<SignumParamState, SignumOptions>(archive, *this);
}

}  // namespace softsign::optim
