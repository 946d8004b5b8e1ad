// softsign::optim::SoftSignum and Signum: torch::optim optimizers over the softsign ops
// (docs/algorithms.md sections 2-4). They run the same fused kernels as the Python optimizers,
// through the op API in <softsign/ops.h>.
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

// Signum's options (Note [one option list]): heavy-ball momentum, buf = momentum * buf +
// (1 - dampening) * g (buf = g on the first step), d = buf or, with nesterov,
// g + momentum * buf; decoupled weight decay; maximize steps on -g.
#define SOFTSIGN_SIGNUM_OPTIONS(X) \
  X(double, lr, 1e-3)              \
  X(double, momentum, 0.9)         \
  X(double, dampening, 0.0)        \
  X(double, weight_decay, 0.0)     \
  X(bool, nesterov, false)         \
  X(bool, maximize, false)
#define SOFTSIGN_SOFT_SIGNUM_OPTIONS(X) SOFTSIGN_SIGNUM_OPTIONS(X) SOFTSIGN_SCHEDULE_OPTIONS(X)

// Options of a SoftSignum (and Signum) param group; Signum leaves the schedule options
// unset. Besides the options, an instance holds its group's step count and temperature
// fit: torch::optim keeps per-group values in the options object, and these are
// serialized with them.
struct SoftSignumOptions : public torch::optim::OptimizerCloneableOptions<SoftSignumOptions> {
  using Self = SoftSignumOptions;
  SOFTSIGN_OPTIONS_LR(SoftSignumOptions)
  SOFTSIGN_OPTIONS_BODY(SoftSignumOptions, SOFTSIGN_SOFT_SIGNUM_OPTIONS)
};
using SignumOptions = SoftSignumOptions;

// Per-parameter state: the heavy-ball buffer, created on the first step on which the
// parameter has a gradient (none when momentum is 0).
SOFTSIGN_BUFFER_PARAM_STATE(SoftSignumParamState, momentum_buffer);
using SignumParamState = SoftSignumParamState;

struct SignumTraits {
  using Options = SoftSignumOptions;
  using ParamState = SoftSignumParamState;
  static constexpr const char* kName = "Signum";
  static constexpr const char* kStatistic = "the momentum";
  static void validate_rule(const Options& o) {
    // The same checks, and bounds, as the Python option table (softsign/reference/options.py).
    TORCH_CHECK(std::isfinite(o.lr()) && o.lr() >= 0, "Invalid learning rate: ", o.lr());
    TORCH_CHECK(o.momentum() >= 0 && o.momentum() <= 1, "Invalid momentum value: ", o.momentum(),
                " (expected 0 <= momentum <= 1)");
    TORCH_CHECK(o.dampening() >= 0 && o.dampening() <= 1,
                "Invalid dampening value: ", o.dampening(), " (expected 0 <= dampening <= 1)");
    TORCH_CHECK(std::isfinite(o.weight_decay()) && o.weight_decay() >= 0,
                "Invalid weight_decay value: ", o.weight_decay());
    TORCH_CHECK(!o.nesterov() || (o.momentum() > 0 && o.dampening() == 0),
                "Invalid nesterov: Nesterov momentum requires momentum > 0 and dampening = 0");
  }
  // The ops' heavy-ball rule, as torch.optim.SGD's.
  static ops::SoftSignStepArgs step_args(const Options& o) {
    ops::SoftSignStepArgs args;
    args.lr = o.lr();
    args.momentum = o.momentum();
    args.dampening = o.dampening();
    args.weight_decay = o.weight_decay();
    args.nesterov = o.nesterov();
    args.maximize = o.maximize();
    return args;
  }
  static bool buffered(const Options& o) { return o.momentum() != 0; }
  static const torch::Tensor& buffer(const ParamState& s) { return s.momentum_buffer(); }
  static void set_buffer(ParamState& s, torch::Tensor b) { s.momentum_buffer(std::move(b)); }
};
using SignumRule = ElementwiseRule<SignumTraits>;
extern template class ScheduledOptimizer<SignumRule>;

// SoftSignum (docs/algorithms.md section 4): Signum for S steps, then tanh(tau_j * d) with the
// temperature schedule fitted once, at step S + 1, to the median and MAD of the group's
// momentum directions d. Any param layout works (the op steps dense stand-ins, Note [step
// layouts]); a buffer of other strides than its param is re-laid out like it once.
// Group options, checks and save/load: ScheduledOptimizer.
class SoftSignum : public SoftOptimizer<SignumRule> {
 public:
  using SoftOptimizer::SoftOptimizer;
};

// Signum: SoftSignum without a transition (SoftSignum with S >= the number of steps
// computes exactly the same parameters).
class Signum : public PlainOptimizer<SoftSignum> {
 public:
  using PlainOptimizer::PlainOptimizer;
};

}  // namespace softsign::optim

// Its entry in the element-wise list (Note [optimizer list] in CMakeLists.txt): compiled by
// the library and bound by the bindings as softsign._C.SoftSignum and softsign._C.Signum.
#define SOFTSIGN_ELEMENTWISE_PAIR_soft_signum(X) X(SoftSignum, Signum, SignumTraits)
