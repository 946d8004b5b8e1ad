// softsign::optim::SoftMuon and Muon: multi-step parity with the float64 reference through
// golden files (float64 params, so every op runs in float64), resume, StepLR, validation.
#include <gtest/gtest.h>
#include <softsign/softsign.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "golden.h"
#include "helpers.h"

namespace {

// Matrices in a use_muon group, the rest in an AdamW group (as make_golden.py builds them).
std::vector<OptimizerParamGroup> groups_of(const GoldenFile& g,
                                           const std::vector<torch::Tensor>& params,
                                           const SoftMuonOptions& options) {
  std::vector<torch::Tensor> muon, other;
  for (size_t i = 0; i < params.size(); ++i) {
    (g.muon.at(static_cast<int64_t>(i)) ? muon : other).push_back(params[i]);
  }
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(muon, std::make_unique<SoftMuonOptions>(options));
  groups.emplace_back(other,
                      std::make_unique<SoftMuonOptions>(SoftMuonOptions(options).use_muon(false)));
  return groups;
}

class MuonGolden : public testing::TestWithParam<std::string> {};

// Why these tolerances: in float64 the Newton-Schulz family is the reference's iteration op
// for op, so the sign phase agrees to rounding (1e-10). From the fit on, the temperature
// comes from Gram-matrix eigenvalues (the reference takes an SVD): small singular values
// carry ~1e-8 relative error, which moves tau and the update by ~1e-7; 1e-6 holds that.
// soft_map="accurate" promises 1e-2 of Phi_tau per update (the reference is the exact
// SVD map): 2e-2 * lr per transition step.
TEST_P(MuonGolden, MatchesReferenceAtEveryStep) {
  const GoldenFile g = read_golden_file(GetParam());
  const auto options = golden_options<SoftMuonOptions>(g);
  const auto phases = softsign::optim::resolve_phases(options);
  std::vector<torch::Tensor> params = golden_params(g, torch::kFloat64);
  SoftMuon optimizer(groups_of(g, params, options), options);
  run_golden(g, optimizer, params, /*rtol=*/1e-6, [&](int64_t k) {
    const int64_t soft_steps = std::max<int64_t>(0, k - phases.sign_steps);
    const double tolerance = soft_steps == 0                    ? 1e-10
                             : options.soft_map() == "accurate" ? 2e-2 * options.lr() * soft_steps
                                                                : 1e-6;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto want =
          golden_tensor(g.expect.at({k, static_cast<int64_t>(i)}), g.shapes[i], torch::kFloat64);
      const double err = (params[i].detach() - want).abs().max().item<double>();
      EXPECT_LE(err, tolerance) << "param " << i << " after step " << k;
    }
    EXPECT_FALSE(optimizer.temperature(1).has_value());
  });
}

INSTANTIATE_TEST_SUITE_P(Reference, MuonGolden,
                         testing::Values("muon_newton_schulz", "muon_accurate"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

std::vector<torch::Tensor> make_matrices(int64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({8, 4}).requires_grad_(true), torch::randn({8, 4}).requires_grad_(true),
          torch::randn({3, 5}).requires_grad_(true)};
}

void step_with_seeded_grads(torch::optim::Optimizer& opt, std::vector<torch::Tensor>& params,
                            int64_t k) {
  torch::manual_seed(1000 + k);
  for (auto& p : params) p.mutable_grad() = torch::randn(p.sizes());
  opt.step();
}

TEST(SoftMuon, LateTransitionEqualsMuon) {
  auto a = make_matrices(1);
  auto b = make_matrices(1);
  SoftMuon soft(a, SoftMuonOptions().sign_steps(100).transition_steps(3));
  Muon muon(b);
  for (int64_t k = 1; k <= 6; ++k) {
    step_with_seeded_grads(soft, a, k);
    step_with_seeded_grads(muon, b, k);
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
}

TEST(SoftMuon, ResumeInTheTransitionIsBitIdentical) {
  const auto options = SoftMuonOptions(0.03).weight_decay(0.1).total_steps(8).alpha_sign(0.5);
  auto straight = make_matrices(2);
  SoftMuon uninterrupted(straight, options);
  for (int64_t k = 1; k <= 8; ++k) step_with_seeded_grads(uninterrupted, straight, k);

  auto resumed = make_matrices(2);
  auto first = std::make_unique<SoftMuon>(resumed, options);
  for (int64_t k = 1; k <= 6; ++k) step_with_seeded_grads(*first, resumed, k);
  const std::string path = temp_path("muon");
  torch::save(*first, path);
  first.reset();
  SoftMuon second(resumed, options);
  torch::load(second, path);
  std::remove(path.c_str());
  EXPECT_EQ(static_cast<const SoftMuonOptions&>(second.param_groups()[0].options()).step_count(),
            6);
  for (int64_t k = 7; k <= 8; ++k) step_with_seeded_grads(second, resumed, k);
  for (size_t i = 0; i < straight.size(); ++i) EXPECT_TRUE(torch::equal(straight[i], resumed[i]));
  EXPECT_EQ(second.temperature(), uninterrupted.temperature());
}

TEST(SoftMuon, AnOptionMissingFromAnOlderCheckpointKeepsItsDefault) {
  // The options of a group as a checkpoint saved before `transposed` existed holds them.
  SoftMuonOptions saved(0.05);
  saved.transposed(true).total_steps(40);
  torch::serialize::OutputArchive out;
  SoftMuonOptions::for_each_field([&](const char* key, auto field) {
    if (std::string(key) != "transposed") {
      softsign::optim::detail::write_value(out, key, saved.*field);
    }
  });
  std::stringstream stream;
  out.save_to(stream);
  torch::serialize::InputArchive in;
  in.load_from(stream);
  SoftMuonOptions read;
  softsign::optim::detail::read_options(read, in);
  EXPECT_EQ(read.lr(), 0.05);
  EXPECT_EQ(read.total_steps(), std::optional<int64_t>(40));
  EXPECT_FALSE(read.transposed());  // the default, not what the newer options held
}

TEST(SoftMuon, StepLRScalesBothGroups) {
  auto params = make_matrices(3);
  auto bias = torch::zeros({4}).requires_grad_(true);
  const auto defaults = MuonOptions(0.02).adamw_lr(1e-3);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(params);
  groups.emplace_back(std::vector<torch::Tensor>{bias},
                      std::make_unique<SoftMuonOptions>(MuonOptions(defaults).use_muon(false)));
  Muon opt(groups, defaults);
  torch::optim::StepLR scheduler(opt, /*step_size=*/1, /*gamma=*/0.5);
  scheduler.step();  // C++ schedulers count from 0: the first call leaves the rates
  scheduler.step();
  const auto& muon = static_cast<const SoftMuonOptions&>(opt.param_groups()[0].options());
  const auto& adamw = static_cast<const SoftMuonOptions&>(opt.param_groups()[1].options());
  EXPECT_DOUBLE_EQ(muon.lr(), 0.01);
  EXPECT_DOUBLE_EQ(adamw.adamw_lr(), 5e-4);
}

TEST(SoftMuon, InvalidInputThrows) {
  auto params = make_matrices(4);
  EXPECT_THROW(SoftMuon(params, SoftMuonOptions()), c10::Error);  // no total_steps
  EXPECT_THROW(Muon(params, MuonOptions().total_steps(10)), c10::Error);
  EXPECT_THROW(Muon(params, MuonOptions(-1.0)), c10::Error);
  EXPECT_THROW(Muon(params, MuonOptions().soft_map("svd")), c10::Error);
  std::vector<OptimizerParamGroup> vector_in_muon_group;
  vector_in_muon_group.emplace_back(
      std::vector<torch::Tensor>{torch::zeros({3}, torch::requires_grad())});
  EXPECT_THROW(Muon{vector_in_muon_group}, c10::Error);
  Muon opt(params);
  const auto before = params[0].detach().clone();
  params[0].mutable_grad() = torch::eye(4).repeat({2, 1}).to_sparse();
  EXPECT_THROW(opt.step(), c10::Error);
  EXPECT_TRUE(torch::equal(params[0], before));
}

TEST(SoftMuon, NonFiniteFitThrowsBeforeAnyParamChanges) {
  auto params = make_matrices(5);
  SoftMuon opt(params, SoftMuonOptions().sign_steps(1).transition_steps(3));
  step_with_seeded_grads(opt, params, 1);
  const auto before = snapshot(params);
  for (auto& p : params) p.mutable_grad() = torch::full(p.sizes(), NAN);
  EXPECT_THROW(opt.step(), c10::Error);
  expect_unchanged(params, before);
}

// ---- param groups ---------------------------------------------------------------------------

const SoftMuonOptions& options_of(const torch::optim::Optimizer& opt, size_t group) {
  return static_cast<const SoftMuonOptions&>(opt.param_groups()[group].options());
}

// A group's fields left at their SoftMuonOptions() default inherit the optimizer's, as in
// torch's own optimizers; a group copied from one that has stepped starts at step 0.
TEST(SoftMuon, GroupOptionsInheritUnsetFieldsFromDefaults) {
  auto params = make_matrices(6);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{params[0]},
                      std::make_unique<SoftMuonOptions>(SoftMuonOptions(0.03).nesterov(false)));
  groups.emplace_back(std::vector<torch::Tensor>{params[1]});
  const auto defaults = SoftMuonOptions(0.05).total_steps(20).adamw_lr(1e-2);
  SoftMuon opt(groups, defaults);
  EXPECT_EQ(options_of(opt, 0).lr(), 0.03);
  EXPECT_FALSE(options_of(opt, 0).nesterov());
  EXPECT_EQ(options_of(opt, 0).total_steps(), std::optional<int64_t>(20));
  EXPECT_EQ(options_of(opt, 0).adamw_lr(), 1e-2);
  EXPECT_TRUE(options_of(opt, 1) == defaults);

  for (auto& p : params) p.mutable_grad() = torch::randn(p.sizes());
  opt.step();
  opt.add_param_group(
      OptimizerParamGroup({params[2]}, std::make_unique<SoftMuonOptions>(options_of(opt, 0))));
  EXPECT_EQ(options_of(opt, 0).step_count(), 1);
  EXPECT_EQ(options_of(opt, 2).step_count(), 0);
}

// A plain list is routed as the Python class routes it, with a warning when both kinds
// exist; the result steps exactly like the explicit groups.
TEST(SoftMuon, PlainListRoutesMatricesAndTheRest) {
  torch::manual_seed(7);
  const std::vector<torch::Tensor> init = {torch::randn({8, 4}), torch::randn({4}),
                                           torch::randn({2, 3, 3}), torch::randn({3})};
  auto fresh = [&] {
    std::vector<torch::Tensor> out;
    for (const auto& t : init) out.push_back(t.clone().requires_grad_(true));
    return out;
  };
  const auto defaults = SoftMuonOptions(0.03).total_steps(6).alpha_sign(0.5).adamw_lr(1e-2);
  auto routed = fresh();
  WarningCollector warnings;
  SoftMuon opt(routed, defaults);
  ASSERT_EQ(warnings.messages.size(), 1u);
  EXPECT_NE(warnings.messages[0].find("use_muon(false)"), std::string::npos)
      << warnings.messages[0];
  EXPECT_NE(warnings.messages[0].find("mbeddings"), std::string::npos) << warnings.messages[0];
  ASSERT_EQ(opt.param_groups().size(), 2u);
  EXPECT_TRUE(options_of(opt, 0) == defaults);
  EXPECT_TRUE(options_of(opt, 1) == SoftMuonOptions(defaults).use_muon(false));
  EXPECT_TRUE(opt.param_groups()[0].params()[0].is_same(routed[0]));
  EXPECT_TRUE(opt.param_groups()[0].params()[1].is_same(routed[2]));
  EXPECT_TRUE(opt.param_groups()[1].params()[0].is_same(routed[1]));
  EXPECT_TRUE(opt.param_groups()[1].params()[1].is_same(routed[3]));

  auto explicit_params = fresh();
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(std::vector<torch::Tensor>{explicit_params[0], explicit_params[2]});
  groups.emplace_back(std::vector<torch::Tensor>{explicit_params[1], explicit_params[3]},
                      std::make_unique<SoftMuonOptions>(SoftMuonOptions(defaults).use_muon(false)));
  SoftMuon expected(groups, defaults);
  for (int64_t k = 1; k <= 6; ++k) {
    step_with_seeded_grads(opt, routed, k);
    step_with_seeded_grads(expected, explicit_params, k);
  }
  for (size_t i = 0; i < routed.size(); ++i) {
    EXPECT_TRUE(torch::equal(routed[i], explicit_params[i])) << "param " << i;
  }
  EXPECT_EQ(opt.temperature(), expected.temperature());
}

TEST(SoftMuon, PlainListOfOneKindMakesOneGroup) {
  WarningCollector warnings;
  const std::vector<torch::Tensor> vectors = {torch::zeros({3}, torch::requires_grad()),
                                              torch::zeros({}, torch::requires_grad())};
  Muon only_vectors(vectors, MuonOptions().adamw_lr(1e-2));
  ASSERT_EQ(only_vectors.param_groups().size(), 1u);
  EXPECT_TRUE(options_of(only_vectors, 0) == MuonOptions().adamw_lr(1e-2).use_muon(false));
  EXPECT_EQ(only_vectors.param_groups()[0].params().size(), 2u);

  Muon only_matrices(make_matrices(8));
  ASSERT_EQ(only_matrices.param_groups().size(), 1u);
  EXPECT_TRUE(options_of(only_matrices, 0).use_muon());

  // Defaults that say use_muon(false): AdamW for every param.
  auto mixed = make_matrices(9);
  mixed.push_back(torch::zeros({3}, torch::requires_grad()));
  Muon adamw_only(mixed, MuonOptions().use_muon(false));
  ASSERT_EQ(adamw_only.param_groups().size(), 1u);
  EXPECT_FALSE(options_of(adamw_only, 0).use_muon());

  Muon empty(std::vector<torch::Tensor>{});
  EXPECT_EQ(empty.param_groups().size(), 1u);
  EXPECT_TRUE(warnings.messages.empty());
}

// Empty groups and groups of 0-element params step in every phase; the fit of a group
// waits for a gradient with elements.
TEST(SoftMuon, EmptyAndZeroElementGroupsStepInEveryPhase) {
  auto a = torch::randn({6, 4}).requires_grad_(true);
  auto z1 = torch::zeros({0, 4}).requires_grad_(true);
  auto z2 = torch::zeros({3, 0}).requires_grad_(true);
  auto z3 = torch::zeros({0, 2, 2}).requires_grad_(true);
  auto zv = torch::zeros({0}).requires_grad_(true);
  auto b = torch::randn({5, 3}).requires_grad_(true);
  auto z4 = torch::zeros({2, 0}).requires_grad_(true);
  auto groups_with = [&](const SoftMuonOptions& defaults) {
    std::vector<OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<torch::Tensor>{a});
    groups.emplace_back(std::vector<torch::Tensor>{});
    groups.emplace_back(std::vector<torch::Tensor>{z1, z2, z3});
    groups.emplace_back(
        std::vector<torch::Tensor>{zv},
        std::make_unique<SoftMuonOptions>(SoftMuonOptions(defaults).use_muon(false)));
    groups.emplace_back(std::vector<torch::Tensor>{z4, b});
    return groups;
  };
  const auto defaults = SoftMuonOptions().sign_steps(2).transition_steps(4);
  SoftMuon opt(groups_with(defaults), defaults);
  const std::vector<torch::Tensor> zeros = {z1, z2, z3, zv, z4};
  torch::manual_seed(10);
  for (int64_t k = 1; k <= 8; ++k) {
    a.mutable_grad() = torch::randn(a.sizes());
    for (const auto& z : zeros) z.mutable_grad() = torch::zeros(z.sizes());
    // b has no gradient at the fit step (k = 3) and the step after.
    b.mutable_grad() = (k == 3 || k == 4) ? torch::Tensor() : torch::randn(b.sizes());
    ASSERT_NO_THROW(opt.step()) << "step " << k;
    EXPECT_EQ(opt.temperature(0).has_value(), k > 2) << "step " << k;
    EXPECT_FALSE(opt.temperature(1).has_value()) << "step " << k;
    EXPECT_FALSE(opt.temperature(2).has_value()) << "step " << k;
    EXPECT_FALSE(opt.temperature(3).has_value()) << "step " << k;
    EXPECT_EQ(opt.temperature(4).has_value(), k >= 5) << "step " << k;
  }
  for (size_t g = 0; g < 5; ++g) {
    EXPECT_EQ(options_of(opt, g).step_count(), 8);
    EXPECT_EQ(options_of(opt, g).fitted(), g == 0 || g == 4) << "group " << g;
  }
  EXPECT_TRUE(torch::isfinite(a).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(b).all().item<bool>());
  Muon muon(groups_with(MuonOptions()), MuonOptions());
  for (const auto& z : zeros) z.mutable_grad() = torch::zeros(z.sizes());
  b.mutable_grad() = torch::randn(b.sizes());
  EXPECT_NO_THROW(muon.step());
}

// Weights stored as (in, out), like transformers' Conv1D, in a transposed(true) group step
// as the transposes of the nn.Linear weights they are, in the sign phase and the soft phase:
// the map commutes with transposition and the scale is the (out, in) matrix's. float64, so
// every op runs in float64 and the two runs differ only by rounding.
TEST(SoftMuon, TransposedGroupStepsAsTheLinearWeights) {
  torch::manual_seed(11);
  std::vector<torch::Tensor> linear, stored;
  for (const auto& shape : {std::vector<int64_t>{8, 4}, {3, 5}, {6, 6}}) {
    const auto w = torch::randn(shape, torch::kFloat64);
    linear.push_back(w.clone().requires_grad_(true));
    stored.push_back(w.t().contiguous().requires_grad_(true));
  }
  const auto options = SoftMuonOptions(0.03).weight_decay(0.1).sign_steps(2).transition_steps(3);
  SoftMuon a(linear, options);
  SoftMuon b(stored, SoftMuonOptions(options).transposed(true));
  for (int64_t k = 1; k <= 7; ++k) {
    torch::manual_seed(2000 + k);
    for (size_t i = 0; i < linear.size(); ++i) {
      const auto g = torch::randn(linear[i].sizes(), torch::kFloat64);
      linear[i].mutable_grad() = g;
      stored[i].mutable_grad() = g.t().contiguous();
    }
    a.step();
    b.step();
    for (size_t i = 0; i < linear.size(); ++i) {
      const double err = (stored[i].detach().t() - linear[i].detach()).abs().max().item<double>();
      EXPECT_LE(err, 1e-13) << "param " << i << " after step " << k;
    }
    EXPECT_EQ(a.temperature().has_value(), k > 2);
  }
  // A conv weight has no (in, out) layout.
  std::vector<torch::Tensor> conv = {torch::zeros({6, 4, 3, 3}, torch::requires_grad())};
  EXPECT_TRUE(
      throws_with([&] { Muon(conv, MuonOptions().transposed(true)); }, "Invalid transposed"));
}

}  // namespace
