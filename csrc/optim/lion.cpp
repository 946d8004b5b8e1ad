// SoftLion and Lion: Lion's rule (Note [lion rule]) on the element-wise skeleton.
#include "softsign/optim/lion.h"

#include <torch/optim/serialize.h>

#include <cmath>

#include "elementwise_impl.h"
#include "scheduled_optimizer_impl.h"

namespace softsign::optim {

void LionTraits::validate_rule(const Options& o) {
  // The same checks, and bounds, as the Python option table (softsign/reference/options.py).
  TORCH_CHECK(std::isfinite(o.lr()) && o.lr() >= 0, "Invalid learning rate: ", o.lr());
  const auto [beta1, beta2] = o.betas();
  TORCH_CHECK(beta1 >= 0 && beta1 <= 1, "Invalid beta parameter at index 0: ", beta1,
              " (expected 0 <= beta1 <= 1)");
  TORCH_CHECK(beta2 >= 0 && beta2 <= 1, "Invalid beta parameter at index 1: ", beta2,
              " (expected 0 <= beta2 <= 1)");
  TORCH_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0,
              "Invalid weight_decay value: ", o.weight_decay());
}

ops::SoftSignStepArgs LionTraits::step_args(const Options& o) {
  // Note [lion rule]: the buffer moves as the heavy ball's with momentum = dampening = b2.
  const auto [beta1, beta2] = o.betas();
  ops::SoftSignStepArgs args;
  args.lr = o.lr();
  args.momentum = beta2;
  args.dampening = beta2;
  args.weight_decay = o.weight_decay();
  args.maximize = o.maximize();
  args.momentum_rule = "lion";
  args.rule_coeffs = {beta1};
  return args;
}

void SoftLionParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(exp_avg);
}

void SoftLionParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, exp_avg);
}

template struct ElementwiseRule<LionTraits>;
template class ScheduledOptimizer<LionRule>;

}  // namespace softsign::optim
