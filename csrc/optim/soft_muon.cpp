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

#include "scheduled_optimizer_impl.h"
#include "softsign/ops.h"

namespace softsign::optim {
namespace {

using torch::optim::OptimizerParamGroup;

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

// muon_step_ of matrices stored as (in, out): its three stages, which compose to it bit for
// bit, with the update scale of each (out, in) matrix. Orthogonalization and the soft map
// commute with transposition, so the scale is all that differs from muon_step_.
void transposed_step(const DeviceLists& lists, const std::vector<at::Tensor>& bufs,
                     const ops::MuonStepArgs& args, const std::optional<at::Tensor>& tau,
                     const std::optional<at::Tensor>& failed) {
  std::vector<at::Tensor> dirs;
  std::vector<int64_t> dims;
  for (const at::Tensor& g : lists.grads) {
    dirs.push_back(at::empty_like(g));
    dims.push_back(g.size(1));
    dims.push_back(g.size(0));
  }
  ops::muon_momentum_(lists.grads, bufs, dirs, args, failed);
  const std::vector<at::Tensor> updates = ops::muon_orthogonalize(dirs, args, tau);
  ops::muon_apply_(lists.params, updates, args, dims, failed);
}

}  // namespace

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

// ---- the rule ----------------------------------------------------------------------------

struct MuonRule::Work {
  std::vector<DeviceLists> lists;
};

void MuonRule::validate(const Options& o, bool transition) {
  // The same checks, and bounds, as the Python option table (softsign/reference/options.py).
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
  validate_schedule(kName, transition, o);
}

void MuonRule::check_param(const Options& o, const at::Tensor& p, size_t index) {
  TORCH_CHECK(!o.use_muon() || p.dim() >= 2,
              "Invalid param group: use_muon needs matrices, got a parameter of shape ", p.sizes(),
              " in param group ", index, "; put it in a group with use_muon(false)");
  // (in, out) is a 2-D layout: a conv weight's (out, in*kh*kw) view has no transpose that
  // would be a stored weight.
  TORCH_CHECK(!o.use_muon() || !o.transposed() || p.dim() == 2,
              "Invalid transposed: it needs 2-D matrices stored as (in, out), got a parameter of "
              "shape ",
              p.sizes(), " in param group ", index, "; put it in a group with transposed(false)");
}

auto MuonRule::gather(const OptimizerParamGroup& group, size_t index, const StateMap&,
                      const Options&) -> Work {
  return Work{softsign::optim::gather(group, index)};
}

bool MuonRule::has_elements(const Work& work) { return softsign::optim::has_elements(work.lists); }

// The fit statistic: the singular values of the group's raw gradients.
std::tuple<at::Tensor, at::Tensor> MuonRule::statistics(const Work& work, const Options&,
                                                        const c10::Device& home) {
  std::vector<at::Tensor> sigmas;
  for (const DeviceLists& lists : work.lists) {
    // 0-element matrices have no singular values.
    std::vector<at::Tensor> grads;
    std::copy_if(lists.grads.begin(), lists.grads.end(), std::back_inserter(grads),
                 [](const at::Tensor& g) { return g.numel() > 0; });
    if (grads.empty()) continue;
    for (at::Tensor& s : ops::singular_values(grads)) sigmas.push_back(s.to(home));
  }
  return ops::median_mad(sigmas);
}

void MuonRule::update(Work& work, const Options& o, StateMap& state,
                      const StepTemperature& temperature) {
  for (DeviceLists& lists : work.lists) {
    if (!o.use_muon()) {
      adamw_update(o, lists, state);
      continue;
    }
    std::vector<at::Tensor> bufs;
    for (const at::Tensor& p : lists.params) {
      SoftMuonParamState& s = state_of(state, p);
      if (!s.momentum_buffer().defined()) {
        s.momentum_buffer(at::zeros_like(p, at::MemoryFormat::Preserve));
      }
      bufs.push_back(s.momentum_buffer());
    }
    const std::optional<at::Tensor> tau = temperature.on(lists.device);
    // A fit whose status is unread (an accelerator's, for a step or so) may have failed:
    // the step then must leave the momentum too, decided on the device.
    std::optional<at::Tensor> failed;
    if (tau.has_value() && !temperature.confirmed) {
      failed = at::logical_not(at::isfinite(*tau)).to(at::kFloat);
    }
    if (o.transposed()) {
      transposed_step(lists, bufs, muon_args(o), tau, failed);
    } else {
      ops::muon_step_(lists.params, lists.grads, bufs, muon_args(o), tau, failed);
    }
  }
}

template class ScheduledOptimizer<MuonRule>;

// ---- SoftMuon / Muon ---------------------------------------------------------------------

SoftMuon::SoftMuon(const std::vector<OptimizerParamGroup>& param_groups, SoftMuonOptions defaults,
                   bool transition)
    : ScheduledOptimizer(param_groups, std::move(defaults), transition) {}

SoftMuon::SoftMuon(const std::vector<OptimizerParamGroup>& param_groups, SoftMuonOptions defaults)
    : SoftMuon(param_groups, std::move(defaults), /*transition=*/true) {}

SoftMuon::SoftMuon(std::vector<torch::Tensor> params, SoftMuonOptions defaults)
    : SoftMuon(route(params, defaults), defaults) {}

Muon::Muon(const std::vector<OptimizerParamGroup>& param_groups, MuonOptions defaults)
    : SoftMuon(param_groups, std::move(defaults), /*transition=*/false) {}

Muon::Muon(std::vector<torch::Tensor> params, MuonOptions defaults)
    : Muon(route(params, defaults), defaults) {}

}  // namespace softsign::optim
