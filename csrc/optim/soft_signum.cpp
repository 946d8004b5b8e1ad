// SoftSignum and Signum: the heavy-ball rule's options on the element-wise skeleton.
#include "softsign/optim/soft_signum.h"

#include <torch/optim/serialize.h>

#include <cmath>

#include "elementwise_impl.h"
#include "scheduled_optimizer_impl.h"

namespace softsign::optim {

void SignumTraits::validate_rule(const Options& o) {
  // The same checks, and bounds, as the Python option table (softsign/reference/options.py).
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

ops::SoftSignStepArgs SignumTraits::step_args(const Options& o) {
  ops::SoftSignStepArgs args;
  args.lr = o.lr();
  args.momentum = o.momentum();
  args.dampening = o.dampening();
  args.weight_decay = o.weight_decay();
  args.nesterov = o.nesterov();
  args.maximize = o.maximize();
  return args;
}

void SoftSignumParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(momentum_buffer);
}

void SoftSignumParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, momentum_buffer);
}

template struct ElementwiseRule<SignumTraits>;
template class ScheduledOptimizer<SignumRule>;

}  // namespace softsign::optim
