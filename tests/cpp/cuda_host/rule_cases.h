// Note [rule cases]: every form of every momentum rule (Note [momentum rules] in
// csrc/ops/momentum_rules.h), as the ops' arguments. The step suite (step_test.cpp) and the
// histogram suite (histogram_test.cpp) each run all of them, the CUDA kernel against the
// CPU op, so a new rule adds its cases here, once.
#pragma once

#include <string>
#include <vector>

#include "softsign/ops.h"

namespace softsign::ops::testing {

struct RuleCase {
  std::string name;
  SoftSignStepArgs args;  // first_step: the buffers start this step
};

inline std::vector<RuleCase> rule_cases() {
  auto args = [](double momentum, double dampening, bool nesterov, bool first) {
    SoftSignStepArgs a;
    a.lr = 0.01;
    a.momentum = momentum;
    a.dampening = dampening;
    a.nesterov = nesterov;
    a.first_step = first;
    return a;
  };
  std::vector<RuleCase> out = {
      {"no_momentum", args(0.0, 0.0, false, false)},
      {"heavy_ball", args(0.9, 0.0, false, false)},
      {"nesterov", args(0.9, 0.0, true, false)},
      {"dampening", args(0.9, 0.3, false, false)},
      {"first_step", args(0.9, 0.3, false, true)},
      {"first_step_nesterov", args(0.9, 0.0, true, true)},
  };
  RuleCase m{"maximize_weight_decay", args(0.8, 0.0, true, false)};
  m.args.maximize = true;
  m.args.weight_decay = 0.1;
  out.push_back(m);
  // Note [lion rule]: b2 = 0.99 as momentum and dampening, b1 = 0.9; and b2 = 0, where a
  // buffer is still kept.
  for (const bool first : {false, true}) {
    RuleCase lion{first ? "lion_first_step" : "lion", args(0.99, 0.99, false, first)};
    lion.args.lion_beta1 = 0.9;
    lion.args.weight_decay = 0.1;
    out.push_back(lion);
  }
  RuleCase lion_zero{"lion_beta2_zero_maximize", args(0.0, 0.0, false, false)};
  lion_zero.args.lion_beta1 = 0.5;
  lion_zero.args.maximize = true;
  out.push_back(lion_zero);
  return out;
}

}  // namespace softsign::ops::testing
