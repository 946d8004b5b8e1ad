// softsign::optim::SoftLion and Lion: Lion (Chen et al. 2023, "Symbolic Discovery of
// Optimization Algorithms") and its soft-sign version, over the same fused kernels as
// SoftSignum (Note [lion rule] in csrc/ops/momentum_rules.h). SoftLion is softsign's
// extension of the paper, not the paper's: Lion's sign becomes tanh(tau_j * c) with
// SoftSignum's schedule, fitted to the distribution of c.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <cmath>
#include <utility>
#include <vector>

#include "softsign/optim/elementwise.h"
#include "softsign/optim/options.h"
#include "softsign/optim/scheduled_optimizer.h"

namespace softsign::optim {

// Lion's options (Note [one option list]), as lion-pytorch's: c = b1 * m + (1 - b1) * g;
// p <- p * (1 - lr * weight_decay) - lr * sign(c); m <- b2 * m + (1 - b2) * g.
#define SOFTSIGN_LION_OPTIONS(X)                  \
  X(double, lr, 1e-4)                             \
  X(betas_t, betas, (std::make_tuple(0.9, 0.99))) \
  X(double, weight_decay, 0.0)                    \
  X(bool, maximize, false)
#define SOFTSIGN_SOFT_LION_OPTIONS(X) SOFTSIGN_LION_OPTIONS(X) SOFTSIGN_SCHEDULE_OPTIONS(X)

// Options of a SoftLion (and Lion) param group; Lion leaves the schedule options unset.
struct SoftLionOptions : public torch::optim::OptimizerCloneableOptions<SoftLionOptions> {
  using Self = SoftLionOptions;
  SOFTSIGN_OPTIONS_LR(SoftLionOptions)
  SOFTSIGN_OPTIONS_BODY(SoftLionOptions, SOFTSIGN_SOFT_LION_OPTIONS)
};
using LionOptions = SoftLionOptions;

// Per-parameter state: Lion's moment m (lion-pytorch's name), zero before the first step.
SOFTSIGN_BUFFER_PARAM_STATE(SoftLionParamState, exp_avg);
using LionParamState = SoftLionParamState;

struct LionTraits {
  using Options = SoftLionOptions;
  using ParamState = SoftLionParamState;
  static constexpr const char* kName = "Lion";
  static constexpr const char* kStatistic = "Lion's interpolation c";
  static void validate_rule(const Options& o) {
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
  // The ops' "lion" rule: the buffer moves with momentum = dampening = b2, and its one
  // coefficient b1 interpolates the direction from the old buffer.
  static ops::SoftSignStepArgs step_args(const Options& o) {
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
  static bool buffered(const Options&) { return true; }
  static const torch::Tensor& buffer(const ParamState& s) { return s.exp_avg(); }
  static void set_buffer(ParamState& s, torch::Tensor b) { s.exp_avg(std::move(b)); }
};
using LionRule = ElementwiseRule<LionTraits>;
extern template class ScheduledOptimizer<LionRule>;

// SoftLion: Lion for S steps, then tanh(tau_j * c), the schedule fitted once, at step S + 1,
// to the median and MAD of c over the group. Group options, checks and save/load:
// ScheduledOptimizer.
class SoftLion : public SoftOptimizer<LionRule> {
 public:
  using SoftOptimizer::SoftOptimizer;
};

// Lion: SoftLion without a transition.
class Lion : public PlainOptimizer<SoftLion> {
 public:
  using PlainOptimizer::PlainOptimizer;
};

}  // namespace softsign::optim

// Its entry in the element-wise list (Note [optimizer list] in CMakeLists.txt): compiled by
// the library and bound by the bindings as softsign._C.SoftLion and softsign._C.Lion.
#define SOFTSIGN_ELEMENTWISE_PAIR_lion(X) X(SoftLion, Lion, LionTraits)
