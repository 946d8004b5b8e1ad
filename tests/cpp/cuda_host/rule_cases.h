// Note [rule cases]: every form of every momentum rule (Note [momentum rules] in
// csrc/ops/momentum_rules.h), as the ops' arguments. The step suite (step_test.cpp) and the
// histogram suite (histogram_test.cpp) each run all of them, the CUDA kernel against the
// CPU op. The heavy ball's forms are spelled out; every other rule of kRuleSpecs gets its
// cases from its spec (its first and later steps, a decaying buffer and a zero momentum,
// maximize and weight decay), so a new rule is run here without an edit.
#pragma once

#include <string>
#include <vector>

#include "momentum_rules.h"
#include "soft_sign_step.h"
#include "softsign/ops.h"

namespace softsign::ops::testing {

struct RuleCase {
  std::string name;
  SoftSignStepArgs args;  // first_step: the buffers start this step
};

// Whether a case's parameters keep buffers: its scalars' buffered(), the predicate the
// kernels use, rather than a second spelling of it here.
inline bool step_buffered(const SoftSignStepArgs& a) {
  return step_scalars(a.momentum, a.dampening, a.weight_decay, a.nesterov, a.maximize, a.first_step,
                      a.momentum_rule, a.rule_coeffs)
      .buffered();
}

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
  // Every other rule: coefficients 0.9, 0.8, ... (in [0, 1], as the averages' weights
  // are), its buffer decaying at 0.99, and at 0, where a buffered rule still keeps one.
  for (const RuleSpec& spec : kRuleSpecs) {
    if (spec.id == Rule::kHeavyBall) continue;
    auto rule_args = [&](double momentum, bool first) {
      SoftSignStepArgs a = args(momentum, momentum, false, first);
      a.momentum_rule = spec.name;
      for (int i = 0; i < spec.coeffs; ++i) a.rule_coeffs.push_back(0.9 - 0.1 * i);
      return a;
    };
    const std::string name = spec.name;
    for (const bool first : {false, true}) {
      RuleCase c{first ? name + "_first_step" : name, rule_args(0.99, first)};
      c.args.weight_decay = 0.1;
      out.push_back(c);
    }
    RuleCase zero{name + "_momentum_zero_maximize", rule_args(0.0, false)};
    zero.args.maximize = true;
    out.push_back(zero);
  }
  return out;
}

}  // namespace softsign::ops::testing
