// The update rule shared by the element-wise optimizers (SoftSignum/Signum, SoftLion/Lion):
// a fused soft_sign_step_ per device and buffer case, and the fit to the median and MAD of
// the directions d. An optimizer of this kind is its Traits: options, param state, and how
// both map onto the fused step's arguments.
#pragma once

#include <ATen/ATen.h>
#include <torch/optim/optimizer.h>

#include <cstddef>
#include <tuple>

#include "softsign/ops.h"
#include "softsign/optim/scheduled_optimizer.h"

namespace softsign::optim {

// Traits provide: Options, ParamState, kName (the plain optimizer's), kStatistic (what the
// fit reads, for messages), validate_rule(options) (the rule's own options; throws),
// step_args(options) (the fused step's arguments), buffered(options) (whether params keep
// a buffer), and buffer(state) / set_buffer(state, tensor).
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
