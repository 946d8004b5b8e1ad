// Contract tests of softsign::optim::SoftSignum and Signum: equivalences, LR schedulers,
// checkpoint resume, validation, and that failing steps change nothing.
#include <gtest/gtest.h>
#include <softsign/softsign.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "helpers.h"

namespace {

std::vector<torch::Tensor> make_params(int64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({4, 3}).requires_grad_(true), torch::randn({5}).requires_grad_(true),
          torch::randn({2, 2, 3}).requires_grad_(true)};
}

std::vector<torch::Tensor> clone_params(const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> out;
  for (const auto& p : params) out.push_back(p.detach().clone().requires_grad_(true));
  return out;
}

// grads[k][i]: gradient of param i at step k (undefined: no gradient that step).
using GradPlan = std::vector<std::vector<torch::Tensor>>;

GradPlan make_grads(const std::vector<torch::Tensor>& params, int64_t steps, int64_t seed) {
  torch::manual_seed(seed);
  GradPlan plan(steps);
  for (auto& grads : plan) {
    for (const auto& p : params) grads.push_back(torch::randn_like(p));
  }
  return plan;
}

void set_grads(const std::vector<torch::Tensor>& params, const std::vector<torch::Tensor>& grads) {
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = grads[i];
}

// ---- equivalences ---------------------------------------------------------------------------

struct UpdateRule {
  double momentum, dampening, weight_decay;
  bool nesterov, maximize;
};

std::string rule_name(const testing::TestParamInfo<UpdateRule>& info) {
  const UpdateRule& r = info.param;
  std::string name = "momentum" + std::to_string(static_cast<int>(r.momentum * 10));
  if (r.dampening != 0) name += "_dampening";
  if (r.weight_decay != 0) name += "_weight_decay";
  if (r.nesterov) name += "_nesterov";
  if (r.maximize) name += "_maximize";
  return name;
}

class SignumEquivalence : public testing::TestWithParam<UpdateRule> {};

TEST_P(SignumEquivalence, SoftSignumWithLongSignPhaseEqualsSignum) {
  const UpdateRule r = GetParam();
  const int64_t steps = 12;
  auto a = make_params(0);
  auto b = clone_params(a);
  const GradPlan grads = make_grads(a, steps, 1);
  Signum signum(a, SignumOptions(0.01)
                       .momentum(r.momentum)
                       .dampening(r.dampening)
                       .weight_decay(r.weight_decay)
                       .nesterov(r.nesterov)
                       .maximize(r.maximize));
  SoftSignum soft(b, SoftSignumOptions(0.01)
                         .momentum(r.momentum)
                         .dampening(r.dampening)
                         .weight_decay(r.weight_decay)
                         .nesterov(r.nesterov)
                         .maximize(r.maximize)
                         .sign_steps(steps)
                         .transition_steps(5));
  for (int64_t k = 0; k < steps; ++k) {
    set_grads(a, grads[k]);
    set_grads(b, grads[k]);
    signum.step();
    soft.step();
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_TRUE(torch::equal(a[i], b[i])) << "param " << i << " at step " << k + 1;
    }
    EXPECT_FALSE(soft.temperature().has_value());
  }
}

INSTANTIATE_TEST_SUITE_P(UpdateRules, SignumEquivalence,
                         testing::Values(UpdateRule{0.9, 0, 0, false, false},
                                         UpdateRule{0, 0, 0.1, false, true},
                                         UpdateRule{0.9, 0, 0.01, true, false},
                                         UpdateRule{0.8, 0.5, 0, false, true}),
                         rule_name);

TEST(SoftSignum, SignPhaseMovesEveryCoordinateByLr) {
  auto p = torch::zeros({6}).requires_grad_(true);
  SoftSignum optimizer({p}, SoftSignumOptions(0.25).momentum(0).total_steps(10));
  p.mutable_grad() = torch::tensor({1.f, -2.f, 3.f, -4.f, 5.f, -6.f});
  optimizer.step();
  EXPECT_TRUE(torch::equal(p, torch::tensor({-0.25f, 0.25f, -0.25f, 0.25f, -0.25f, 0.25f})));
}

// ---- LR scheduler ----------------------------------------------------------------------------

TEST(SoftSignum, StepLRChangesTheLearningRate) {
  auto p = torch::zeros({3}).requires_grad_(true);
  SoftSignum optimizer({p}, SoftSignumOptions(0.5).momentum(0).total_steps(100));
  torch::optim::StepLR scheduler(optimizer, /*step_size=*/2, /*gamma=*/0.5);
  double expected = 0;
  for (int k = 0; k < 6; ++k) {
    // Whatever lr the scheduler has set is the one the step uses: p moves by exactly lr.
    const double lr = optimizer.param_groups()[0].options().get_lr();
    p.mutable_grad() = torch::ones({3});
    optimizer.step();
    scheduler.step();
    expected -= lr;
    EXPECT_TRUE(torch::allclose(p, torch::full({3}, expected))) << p;
  }
  // torch::optim::StepLR decays at its 3rd and 5th step() calls (LibTorch's counting).
  EXPECT_DOUBLE_EQ(optimizer.param_groups()[0].options().get_lr(), 0.125);
  EXPECT_FLOAT_EQ(p[0].item<float>(), -(0.5 * 3 + 0.25 * 2 + 0.125));
}

// ---- checkpoints -----------------------------------------------------------------------------

// Two groups with different update rules; param 1 has no gradient on some steps.
std::vector<OptimizerParamGroup> make_groups(const std::vector<torch::Tensor>& params) {
  return {
      OptimizerParamGroup(
          {params[0], params[1]},
          std::make_unique<SoftSignumOptions>(
              SoftSignumOptions(0.02).momentum(0.9).nesterov(true).sign_steps(5).transition_steps(
                  10))),
      OptimizerParamGroup({params[2]},
                          std::make_unique<SoftSignumOptions>(SoftSignumOptions(0.01)
                                                                  .momentum(0.8)
                                                                  .dampening(0.5)
                                                                  .weight_decay(0.1)
                                                                  .sign_steps(7)
                                                                  .transition_steps(6)))};
}

SoftSignumOptions checkpoint_defaults() {
  return SoftSignumOptions().sign_steps(5).transition_steps(10);
}

void run_steps(SoftSignum& optimizer, const std::vector<torch::Tensor>& params,
               const GradPlan& grads, int64_t from, int64_t to) {
  for (int64_t k = from; k < to; ++k) {
    auto g = grads[k];
    if (k % 4 == 1) g[1] = torch::Tensor();
    set_grads(params, g);
    optimizer.step();
  }
}

class Resume : public testing::TestWithParam<int64_t> {};

TEST_P(Resume, LoadedRunIsBitIdentical) {
  const int64_t steps = 20;
  const int64_t save_at = GetParam();
  auto a = make_params(2);
  auto b = clone_params(a);
  const GradPlan grads = make_grads(a, steps, 3);

  SoftSignum uninterrupted(make_groups(a), checkpoint_defaults());
  run_steps(uninterrupted, a, grads, 0, steps);

  const std::string path = temp_path("resume_" + std::to_string(save_at));
  {
    SoftSignum first(make_groups(b), checkpoint_defaults());
    run_steps(first, b, grads, 0, save_at);
    torch::save(first, path);
  }
  auto c = clone_params(b);
  SoftSignum resumed(make_groups(c), checkpoint_defaults());
  torch::load(resumed, path);
  std::remove(path.c_str());
  for (size_t g = 0; g < 2; ++g) {
    const auto& o = static_cast<const SoftSignumOptions&>(resumed.param_groups()[g].options());
    EXPECT_EQ(o.step_count(), save_at);
  }
  run_steps(resumed, c, grads, save_at, steps);

  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i], c[i])) << "param " << i;
  }
  for (size_t g = 0; g < 2; ++g) {
    EXPECT_TRUE(static_cast<const SoftSignumOptions&>(uninterrupted.param_groups()[g].options()) ==
                static_cast<const SoftSignumOptions&>(resumed.param_groups()[g].options()))
        << "group " << g;
    EXPECT_EQ(uninterrupted.temperature(g), resumed.temperature(g)) << "group " << g;
  }
}

// Sign phase (before the fit), the middle of both transitions, after group 1's transition.
INSTANTIATE_TEST_SUITE_P(SaveAtStep, Resume, testing::Values(3, 9, 12, 16));

TEST(Signum, SaveLoadRoundTripsBuffersAndOptions) {
  auto a = make_params(4);
  auto b = clone_params(a);
  const GradPlan grads = make_grads(a, 6, 5);
  Signum uninterrupted(a, SignumOptions(0.01).momentum(0.9).weight_decay(0.1));
  Signum first(b, SignumOptions(0.01).momentum(0.9).weight_decay(0.1));
  for (int64_t k = 0; k < 3; ++k) {
    set_grads(a, grads[k]);
    uninterrupted.step();
    set_grads(b, grads[k]);
    first.step();
  }
  const std::string path = temp_path("signum");
  torch::save(first, path);
  auto c = clone_params(b);
  Signum resumed(c, SignumOptions(0.5));
  torch::load(resumed, path);
  std::remove(path.c_str());
  // The options and the group's step count (group state, as SoftSignum's) come back.
  EXPECT_TRUE(static_cast<const SignumOptions&>(resumed.param_groups()[0].options()) ==
              static_cast<const SignumOptions&>(first.param_groups()[0].options()));
  const auto& loaded = static_cast<const SignumOptions&>(resumed.param_groups()[0].options());
  EXPECT_EQ(loaded.step_count(), 3);
  EXPECT_EQ(loaded.lr(), 0.01);
  EXPECT_EQ(loaded.weight_decay(), 0.1);
  for (int64_t k = 3; k < 6; ++k) {
    set_grads(a, grads[k]);
    uninterrupted.step();
    set_grads(c, grads[k]);
    resumed.step();
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], c[i])) << "param " << i;
}

// ---- options ---------------------------------------------------------------------------------

void expect_invalid(const std::function<void()>& build, const std::string& what) {
  EXPECT_TRUE(throws_with(build, "Invalid")) << what;
}

TEST(SoftSignum, InvalidOptionsThrow) {
  auto p = torch::zeros({2}).requires_grad_(true);
  const auto base = SoftSignumOptions().total_steps(10);
  const std::vector<std::pair<std::string, SoftSignumOptions>> cases = {
      {"lr < 0", SoftSignumOptions(base).lr(-1)},
      {"lr nan", SoftSignumOptions(base).lr(std::nan(""))},
      {"momentum < 0", SoftSignumOptions(base).momentum(-0.1)},
      {"dampening > 1", SoftSignumOptions(base).dampening(1.5)},
      {"weight_decay < 0", SoftSignumOptions(base).weight_decay(-1)},
      {"nesterov without momentum", SoftSignumOptions(base).momentum(0).nesterov(true)},
      {"nesterov with dampening", SoftSignumOptions(base).dampening(0.5).nesterov(true)},
      {"alpha_sign < 0", SoftSignumOptions(base).alpha_sign(-0.1)},
      {"alpha_sign > 1", SoftSignumOptions(base).alpha_sign(1.5)},
      {"eps 0", SoftSignumOptions(base).eps(0)},
      {"eps 1", SoftSignumOptions(base).eps(1)},
      {"newton_iters < 0", SoftSignumOptions(base).newton_iters(-1)},
      {"tmax < 1", SoftSignumOptions(base).tmax(0.5)},
      {"total_steps 0", SoftSignumOptions().total_steps(0)},
      {"sign_steps < 0", SoftSignumOptions(base).sign_steps(-1)},
      {"transition_steps 0", SoftSignumOptions(base).transition_steps(0)},
      {"no phases", SoftSignumOptions()},
      {"sign_steps alone", SoftSignumOptions().sign_steps(5)},
      {"transition_steps alone", SoftSignumOptions().transition_steps(5)},
  };
  for (const auto& [what, options] : cases) {
    expect_invalid([&] { SoftSignum optimizer({p}, options); }, what);
  }
  // A group's own options are checked too.
  expect_invalid(
      [&] {
        std::vector<OptimizerParamGroup> groups;
        groups.emplace_back(std::vector<torch::Tensor>{p},
                            std::make_unique<SoftSignumOptions>(SoftSignumOptions().tmax(0)));
        SoftSignum optimizer(groups, base);
      },
      "group tmax");
  expect_invalid([&] { Signum optimizer({p}, SignumOptions(-1)); }, "Signum lr < 0");
  expect_invalid([&] { Signum optimizer({p}, SignumOptions().momentum(0).nesterov(true)); },
                 "Signum nesterov without momentum");
}

TEST(SoftSignum, PhasesFromTotalSteps) {
  using softsign::optim::resolve_phases;
  auto phases = resolve_phases(SoftSignumOptions().total_steps(30));
  EXPECT_EQ(phases.sign_steps, 27);
  EXPECT_EQ(phases.transition_steps, 3);
  phases = resolve_phases(SoftSignumOptions().total_steps(5).alpha_sign(0.5));  // 2.5 -> 3
  EXPECT_EQ(phases.sign_steps, 3);
  EXPECT_EQ(phases.transition_steps, 2);
  phases = resolve_phases(SoftSignumOptions().total_steps(10).transition_steps(4));
  EXPECT_EQ(phases.sign_steps, 9);
  EXPECT_EQ(phases.transition_steps, 4);
  phases = resolve_phases(SoftSignumOptions().total_steps(10).sign_steps(20));  // T < 1
  EXPECT_EQ(phases.sign_steps, 20);
  EXPECT_EQ(phases.transition_steps, 1);
}

TEST(SoftSignum, GroupOptionsInheritUnsetFieldsFromDefaults) {
  auto p = torch::zeros({2}).requires_grad_(true);
  auto q = torch::zeros({2}).requires_grad_(true);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{p});
  groups.emplace_back(std::vector<torch::Tensor>{q},
                      std::make_unique<SoftSignumOptions>(SoftSignumOptions(0.5).sign_steps(3)));
  SoftSignum optimizer(groups, SoftSignumOptions(0.1).momentum(0.5).total_steps(100));
  const auto& g0 = static_cast<const SoftSignumOptions&>(optimizer.param_groups()[0].options());
  const auto& g1 = static_cast<const SoftSignumOptions&>(optimizer.param_groups()[1].options());
  EXPECT_EQ(g0.lr(), 0.1);
  EXPECT_EQ(g0.momentum(), 0.5);
  EXPECT_EQ(g1.lr(), 0.5);
  EXPECT_EQ(g1.momentum(), 0.5);
  EXPECT_EQ(g1.total_steps(), std::optional<int64_t>(100));
  EXPECT_EQ(g1.sign_steps(), std::optional<int64_t>(3));
}

// Options copied from a group that has stepped start a new group at step 0, unfitted.
TEST(SoftSignum, NewGroupStartsItsOwnSchedule) {
  auto p = torch::randn({4}).requires_grad_(true);
  SoftSignum first({p}, SoftSignumOptions(0.1).sign_steps(1).transition_steps(5));
  for (int k = 0; k < 3; ++k) {
    p.mutable_grad() = torch::randn({4});
    first.step();
  }
  const auto& stepped = static_cast<const SoftSignumOptions&>(first.param_groups()[0].options());
  ASSERT_EQ(stepped.step_count(), 3);
  ASSERT_TRUE(stepped.fitted());
  auto q = torch::randn({4}).requires_grad_(true);
  SoftSignum second({q}, SoftSignumOptions().total_steps(10));
  second.add_param_group(OptimizerParamGroup({torch::randn({4}).requires_grad_(true)},
                                             std::make_unique<SoftSignumOptions>(stepped)));
  const auto& added = static_cast<const SoftSignumOptions&>(second.param_groups()[1].options());
  EXPECT_EQ(added.step_count(), 0);
  EXPECT_FALSE(added.fitted());
  EXPECT_EQ(added.lr(), 0.1);
  EXPECT_FALSE(second.temperature(1).has_value());
}

// ---- failures change nothing ------------------------------------------------------------------

TEST(SoftSignum, SparseGradientThrowsAndChangesNothing) {
  auto params = make_params(6);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0], params[1]});
  groups.emplace_back(std::vector<torch::Tensor>{params[2]});
  SoftSignum optimizer(groups, SoftSignumOptions(0.1).total_steps(10));
  params[0].mutable_grad() = torch::ones_like(params[0]);
  params[1].mutable_grad() = torch::ones_like(params[1]);
  params[2].mutable_grad() = torch::ones_like(params[2]).to_sparse();
  const auto before = snapshot(params);
  EXPECT_TRUE(throws_with([&] { optimizer.step(); }, "sparse gradients are not supported"));
  expect_unchanged(params, before);
  EXPECT_TRUE(optimizer.state().empty());
  for (const auto& group : optimizer.param_groups()) {
    EXPECT_EQ(static_cast<const SoftSignumOptions&>(group.options()).step_count(), 0);
  }
}

// Complex params are refused when their group is added, not at a later step.
TEST(SoftSignum, ComplexParamThrowsWhenItsGroupIsAdded) {
  auto z = torch::randn({3}, torch::kComplexFloat).requires_grad_(true);
  auto expect_refused = [](const std::function<void()>& build, const std::string& group) {
    EXPECT_TRUE(
        throws_with(build, "complex parameters are not supported (param group " + group + ")"));
  };
  expect_refused([&] { SoftSignum optimizer({z}, SoftSignumOptions().total_steps(10)); }, "0");
  expect_refused([&] { Signum optimizer({z}); }, "0");
  SoftSignum soft({torch::zeros({2}).requires_grad_(true)}, SoftSignumOptions().total_steps(10));
  expect_refused([&] { soft.add_param_group(OptimizerParamGroup({z})); }, "1");
  EXPECT_EQ(soft.param_groups().size(), 1u);
  Signum signum({torch::zeros({2}).requires_grad_(true)});
  expect_refused([&] { signum.add_param_group(OptimizerParamGroup({z})); }, "1");
  EXPECT_EQ(signum.param_groups().size(), 1u);
}

TEST(SoftSignum, NonFiniteFitThrowsBeforeAnyParamChanges) {
  auto params = make_params(7);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0], params[1]});
  groups.emplace_back(std::vector<torch::Tensor>{params[2]});
  // sign_steps 0: the first step is the fit step of both groups.
  SoftSignum optimizer(groups,
                       SoftSignumOptions(0.1).momentum(0).sign_steps(0).transition_steps(5));
  params[0].mutable_grad() = torch::randn_like(params[0]);
  params[1].mutable_grad() = torch::randn_like(params[1]);
  params[2].mutable_grad() = torch::full_like(params[2], INFINITY);
  const auto before = snapshot(params);
  EXPECT_TRUE(throws_with([&] { optimizer.step(); }, "non-finite median/MAD"));
  expect_unchanged(params, before);
  for (const auto& group : optimizer.param_groups()) {
    const auto& o = static_cast<const SoftSignumOptions&>(group.options());
    EXPECT_EQ(o.step_count(), 0);
    EXPECT_FALSE(o.fitted());
  }
}

TEST(SoftSignum, AShortTransitionWarnsNamingTheOptionToChange) {
  auto p = torch::zeros({4}).requires_grad_(true);
  WarningCollector warnings;
  SoftSignum short_run({p}, SoftSignumOptions().total_steps(10));  // 9 sign steps, then 1
  ASSERT_FALSE(warnings.messages.empty());
  for (const auto& m : warnings.messages) {
    EXPECT_NE(m.find("transition of 1 step"), std::string::npos) << m;
    EXPECT_NE(m.find("total_steps"), std::string::npos) << m;
  }
  warnings.messages.clear();
  SoftSignum long_enough({p}, SoftSignumOptions().total_steps(10).transition_steps(2));
  SoftSignum no_transition({p}, SoftSignumOptions().total_steps(10).alpha_sign(1.0));
  EXPECT_TRUE(warnings.messages.empty()) << warnings.messages[0];
}

TEST(SoftSignum, ZeroMadWarnsAndKeepsParamsFinite) {
  auto p = torch::zeros({8}).requires_grad_(true);
  SoftSignum optimizer({p}, SoftSignumOptions(0.1).momentum(0).sign_steps(1).transition_steps(4));
  WarningCollector warnings;
  for (int k = 0; k < 4; ++k) {
    p.mutable_grad() = torch::full({8}, 0.5f);
    optimizer.step();
  }
  ASSERT_EQ(warnings.messages.size(), 1u);
  EXPECT_NE(warnings.messages[0].find("zero MAD"), std::string::npos) << warnings.messages[0];
  EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  // s = 0: q_j = |median| for every j, tau = c_eps / 0.5.
  const double tau = softsign::ops::saturation_constant("tanh", 1e-4) / 0.5;
  ASSERT_TRUE(optimizer.temperature().has_value());
  EXPECT_NEAR(*optimizer.temperature(), tau, 1e-12 * tau);
}

// ---- groups, closures ---------------------------------------------------------------------

TEST(SoftSignum, GroupWithoutGradientsAtTheFitStepFitsAtItsNextGradient) {
  auto a = torch::randn({6}).requires_grad_(true);
  auto b = torch::randn({6}).requires_grad_(true);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{a});
  groups.emplace_back(std::vector<torch::Tensor>{b});
  SoftSignum optimizer(groups, SoftSignumOptions(0.01).sign_steps(3).transition_steps(6));
  torch::manual_seed(8);
  for (int64_t k = 1; k <= 7; ++k) {
    a.mutable_grad() = torch::randn({6});
    const bool b_has_grad = k <= 3 || k >= 6;
    b.mutable_grad() = b_has_grad ? torch::randn({6}) : torch::Tensor();
    const auto b_before = b.detach().clone();
    optimizer.step();
    if (!b_has_grad) {
      EXPECT_TRUE(torch::equal(b, b_before)) << "step " << k;
    }
    const auto& o = static_cast<const SoftSignumOptions&>(optimizer.param_groups()[1].options());
    EXPECT_EQ(o.step_count(), k);
    EXPECT_EQ(optimizer.temperature(0).has_value(), k > 3) << "step " << k;
    EXPECT_EQ(optimizer.temperature(1).has_value(), k >= 6) << "step " << k;
    if (k >= 6) {
      // The schedule index follows the step count, not the step of the fit.
      const auto schedule = softsign::ops::temperature_schedule(
          torch::scalar_tensor(o.fit_median(), torch::kFloat64),
          torch::scalar_tensor(o.fit_mad(), torch::kFloat64), 6, 1e-4, 10, 1e9, "tanh");
      EXPECT_EQ(*optimizer.temperature(1), schedule[k - 3 - 1].item<double>());
    }
  }
}

// Empty groups and groups of 0-element params step in every phase; the fit of a group
// waits for a gradient with elements.
TEST(SoftSignum, EmptyAndZeroElementGroupsStepInEveryPhase) {
  auto a = torch::randn({5}).requires_grad_(true);
  auto z1 = torch::zeros({0}).requires_grad_(true);
  auto z2 = torch::zeros({0, 3}).requires_grad_(true);
  auto b = torch::randn({4}).requires_grad_(true);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{a});
  groups.emplace_back(std::vector<torch::Tensor>{});
  groups.emplace_back(std::vector<torch::Tensor>{z1, z2});
  groups.emplace_back(std::vector<torch::Tensor>{z1.detach().clone().requires_grad_(true), b});
  SoftSignum optimizer(groups, SoftSignumOptions(0.01).sign_steps(2).transition_steps(4));
  Signum signum(std::vector<OptimizerParamGroup>{
      OptimizerParamGroup(std::vector<torch::Tensor>{}),
      OptimizerParamGroup({torch::zeros({0, 2}).requires_grad_(true)})});
  auto& zero_in_mixed = optimizer.param_groups()[3].params()[0];
  torch::manual_seed(9);
  for (int64_t k = 1; k <= 8; ++k) {
    a.mutable_grad() = torch::randn({5});
    z1.mutable_grad() = torch::zeros({0});
    z2.mutable_grad() = torch::zeros({0, 3});
    zero_in_mixed.mutable_grad() = torch::zeros({0});
    // b has no gradient at the fit step (k = 3) and the step after.
    b.mutable_grad() = (k == 3 || k == 4) ? torch::Tensor() : torch::randn({4});
    for (auto& p : signum.param_groups()[1].params()) p.mutable_grad() = torch::zeros({0, 2});
    ASSERT_NO_THROW(optimizer.step()) << "step " << k;
    ASSERT_NO_THROW(signum.step()) << "step " << k;
    EXPECT_EQ(optimizer.temperature(0).has_value(), k > 2) << "step " << k;
    EXPECT_FALSE(optimizer.temperature(1).has_value()) << "step " << k;
    EXPECT_FALSE(optimizer.temperature(2).has_value()) << "step " << k;
    EXPECT_EQ(optimizer.temperature(3).has_value(), k >= 5) << "step " << k;
  }
  for (size_t g = 0; g < 4; ++g) {
    const auto& o = static_cast<const SoftSignumOptions&>(optimizer.param_groups()[g].options());
    EXPECT_EQ(o.step_count(), 8);
    EXPECT_EQ(o.fitted(), g == 0 || g == 3) << "group " << g;
  }
  EXPECT_TRUE(torch::isfinite(b).all().item<bool>());
}

// ---- layouts ---------------------------------------------------------------------------------

using MakeOptimizer =
    std::function<std::unique_ptr<torch::optim::Optimizer>(const std::vector<torch::Tensor>&)>;

// Steps `params` and a contiguous copy of them with the same gradients through the sign
// phase, the fit and the transition; `prepare(k, params)` may re-lay out params or grads
// before step k. Expects equal values after every step; returns the optimizer of `params`.
std::unique_ptr<torch::optim::Optimizer> expect_layout_free(
    const MakeOptimizer& make, std::vector<torch::Tensor> params,
    const std::function<void(int64_t, std::vector<torch::Tensor>&)>& prepare) {
  std::vector<torch::Tensor> reference;
  for (const auto& p : params) reference.push_back(p.detach().contiguous().requires_grad_(true));
  auto optimizer = make(params);
  auto expected = make(reference);
  for (int64_t k = 1; k <= 7; ++k) {
    torch::manual_seed(100 + k);
    for (size_t i = 0; i < params.size(); ++i) {
      const auto g = torch::randn(params[i].sizes());
      params[i].mutable_grad() = g;
      reference[i].mutable_grad() = g.clone();
    }
    prepare(k, params);
    optimizer->step();
    expected->step();
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(torch::equal(params[i], reference[i])) << "param " << i << " after step " << k;
    }
  }
  return optimizer;
}

const at::Tensor& buffer_of(torch::optim::Optimizer& optimizer, const torch::Tensor& p) {
  return static_cast<const softsign::optim::SoftSignumParamState&>(
             *optimizer.state().at(p.unsafeGetTensorImpl()))
      .momentum_buffer();
}

std::unique_ptr<torch::optim::Optimizer> soft_signum_for(const std::vector<torch::Tensor>& params) {
  return std::make_unique<SoftSignum>(
      params,
      SoftSignumOptions(0.05).momentum(0.9).weight_decay(0.1).sign_steps(3).transition_steps(3));
}

std::unique_ptr<torch::optim::Optimizer> signum_for(const std::vector<torch::Tensor>& params) {
  return std::make_unique<Signum>(params, SignumOptions(0.05).momentum(0.8).nesterov(true));
}

TEST(SoftSignum, NonDenseParamStepsLikeAContiguousOne) {
  torch::manual_seed(10);
  const auto base = torch::randn({4, 6});
  const auto base_before = base.clone();
  auto strided = base.slice(1, 0, 6, 2).requires_grad_(true);  // every other column
  ASSERT_FALSE(strided.is_non_overlapping_and_dense());
  auto plain = torch::randn({5}).requires_grad_(true);
  for (const auto& make : {soft_signum_for, signum_for}) {
    expect_layout_free(make, {strided, plain}, [](int64_t, std::vector<torch::Tensor>&) {});
  }
  // The columns in between are not the param's: untouched.
  EXPECT_TRUE(torch::equal(base.slice(1, 1, 6, 2), base_before.slice(1, 1, 6, 2)));
}

TEST(SoftSignum, GradOfOtherStridesStepsLikeAContiguousOne) {
  torch::manual_seed(11);
  auto p = torch::randn({4, 3}).requires_grad_(true);
  auto q = torch::randn({2, 3, 4, 5}).requires_grad_(true);
  std::vector<torch::Tensor> given;
  auto transpose_grads = [&](int64_t, std::vector<torch::Tensor>& params) {
    // A (3, 4) tensor transposed, and a channels_last grad of a contiguous param.
    params[0].mutable_grad() = params[0].grad().t().contiguous().t();
    params[1].mutable_grad() = params[1].grad().contiguous(at::MemoryFormat::ChannelsLast);
    given = {params[0].grad(), params[1].grad()};
  };
  for (const auto& make : {soft_signum_for, signum_for}) {
    expect_layout_free(make, {p, q}, transpose_grads);
  }
  // p.grad is read, never replaced.
  EXPECT_EQ(p.grad().strides(), torch::IntArrayRef({1, 4}));
  EXPECT_TRUE(p.grad().is_same(given[0]));
}

TEST(SoftSignum, BufferIsRelaidOutOnceWhenItsParamChangesLayout) {
  torch::manual_seed(12);
  auto p = torch::randn({2, 3, 4, 5}).requires_grad_(true);
  torch::optim::Optimizer* optimizer = nullptr;
  const MakeOptimizer make = [&](const std::vector<torch::Tensor>& params) {
    auto made = soft_signum_for(params);
    if (optimizer == nullptr) optimizer = made.get();
    return made;
  };
  // The model goes channels_last before step 3, once buffers exist (Python's
  // model.to(memory_format=...) replaces each param's data the same way).
  at::Tensor relaid;
  auto kept = expect_layout_free(make, {p}, [&](int64_t k, std::vector<torch::Tensor>& params) {
    auto& param = params[0];
    if (k == 3) param.set_data(param.detach().contiguous(at::MemoryFormat::ChannelsLast));
    param.mutable_grad() = param.grad().contiguous(at::MemoryFormat::ChannelsLast);
    if (k == 4) {
      relaid = buffer_of(*optimizer, param);
      EXPECT_EQ(relaid.strides(), param.strides());
    }
  });
  ASSERT_TRUE(relaid.defined());
  EXPECT_TRUE(buffer_of(*kept, p).is_same(relaid)) << "re-laid out more than once";
}

TEST(SoftSignum, StepRunsTheClosureWithGradients) {
  auto p = torch::ones({3}).requires_grad_(true);
  SoftSignum optimizer({p}, SoftSignumOptions(0.1).momentum(0).total_steps(10));
  const auto loss = optimizer.step([&] {
    optimizer.zero_grad();
    auto l = (p * p).sum();
    l.backward();
    return l;
  });
  ASSERT_TRUE(loss.defined());
  EXPECT_FLOAT_EQ(loss.item<float>(), 3.f);
  EXPECT_TRUE(torch::allclose(p, torch::full({3}, 0.9f)));
  EXPECT_FALSE(optimizer.step().defined());
}

}  // namespace
