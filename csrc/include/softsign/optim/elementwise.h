// The update rule shared by the element-wise optimizers (SoftSignum/Signum, SoftLion/Lion):
// a fused soft_sign_step_ per device and buffer case, and the fit to the median and MAD of
// the directions d. An optimizer of this kind is its Traits: options, param state, and how
// both map onto the fused step's arguments.
#pragma once

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

#include <cstddef>
#include <tuple>

#include "softsign/ops.h"
#include "softsign/optim/scheduled_optimizer.h"

namespace softsign::optim {

// The per-parameter state of an element-wise optimizer: its one buffer, under the name its
// users and other checkpoints know it by (torch.optim.SGD's momentum_buffer, lion-pytorch's
// exp_avg); saved only where it exists.
#define SOFTSIGN_BUFFER_PARAM_STATE(State, buffer_name)                       \
  struct State : public torch::optim::OptimizerCloneableParamState<State> {   \
    TORCH_ARG(torch::Tensor, buffer_name);                                    \
                                                                              \
   public:                                                                    \
    void serialize(torch::serialize::InputArchive& archive) override {        \
      _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, buffer_name);         \
    }                                                                         \
    void serialize(torch::serialize::OutputArchive& archive) const override { \
      _TORCH_OPTIM_SERIALIZE_TORCH_ARG(buffer_name);                          \
    }                                                                         \
  }

// Traits provide: Options, ParamState, kName (the plain optimizer's), kStatistic (what the
// fit reads, for messages), validate_rule(options) (the rule's own options; throws),
// step_args(options) (the fused step's arguments), buffered(options) (whether params keep
// a buffer), and buffer(state) / set_buffer(state, tensor). The library compiles each
// rule once: its header's SOFTSIGN_ELEMENTWISE_PAIR_<name> line puts it in
// SOFTSIGN_ELEMENTWISE_OPTIMIZERS (Note [optimizer list] in CMakeLists.txt).
template <typename Traits>
struct ElementwiseRule {
  using Options = typename Traits::Options;
  using ParamState = typename Traits::ParamState;
  struct Work;  // elementwise.cpp
  static constexpr const char* kName = Traits::kName;
  static constexpr const char* kKind = "tanh";
  static constexpr const char* kStatistic = Traits::kStatistic;

  static void validate(const Options& o, bool transition) {
    Traits::validate_rule(o);
    validate_schedule(kName, transition, o);
  }
  static void check_param(const Options&, const at::Tensor&, size_t) {}
  static bool scheduled(const Options&) { return true; }
  SOFTSIGN_RULE_WORK_HOOKS
};

}  // namespace softsign::optim
