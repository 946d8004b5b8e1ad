// softsign::optim::SoftMuon and Muon: multi-step parity with the float64 reference through
// golden files (float64 params, so every op runs in float64), resume, StepLR, validation.
#include <gtest/gtest.h>
#include <softsign/softsign.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "golden.h"

namespace {

using softsign::optim::Muon;
using softsign::optim::MuonOptions;
using softsign::optim::SoftMuon;
using softsign::optim::SoftMuonOptions;
using torch::optim::OptimizerParamGroup;

void set_option(SoftMuonOptions& o, const std::string& name, const std::string& value) {
  if (name == "lr") {
    o.lr(std::stod(value));
  } else if (name == "weight_decay") {
    o.weight_decay(std::stod(value));
  } else if (name == "nesterov") {
    o.nesterov(std::stoi(value) != 0);
  } else if (name == "total_steps") {
    o.total_steps(std::stoll(value));
  } else if (name == "alpha_sign") {
    o.alpha_sign(std::stod(value));
  } else if (name == "sign_steps") {
    o.sign_steps(std::stoll(value));
  } else if (name == "transition_steps") {
    o.transition_steps(std::stoll(value));
  } else if (name == "soft_map") {
    o.soft_map(value);
  } else if (name == "adjust_lr") {
    o.adjust_lr(value);
  } else if (name == "adamw_lr") {
    o.adamw_lr(std::stod(value));
  } else if (name == "adamw_weight_decay") {
    o.adamw_weight_decay(std::stod(value));
  } else {
    ADD_FAILURE() << "unknown option in golden file: " << name;
  }
}

torch::Tensor tensor_of(const std::vector<double>& values, const std::vector<int64_t>& shape) {
  return torch::tensor(values, torch::kFloat64).reshape(shape);
}

// Matrices in a use_muon group, the rest in an AdamW group (as make_golden.py builds them).
std::vector<OptimizerParamGroup> groups_of(const GoldenFile& g,
                                           const std::vector<torch::Tensor>& params) {
  std::vector<torch::Tensor> muon, other;
  for (size_t i = 0; i < params.size(); ++i) {
    (g.muon.at(static_cast<int64_t>(i)) ? muon : other).push_back(params[i]);
  }
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(muon, std::make_unique<SoftMuonOptions>(SoftMuonOptions().use_muon(true)));
  groups.emplace_back(other, std::make_unique<SoftMuonOptions>(SoftMuonOptions().use_muon(false)));
  return groups;
}

void set_grads(const GoldenFile& g, std::vector<torch::Tensor>& params, int64_t k) {
  for (size_t i = 0; i < params.size(); ++i) {
    params[i].mutable_grad() = tensor_of(g.grads.at({k, static_cast<int64_t>(i)}), g.shapes[i]);
  }
}

class MuonGolden : public testing::TestWithParam<std::string> {};

// Why these tolerances: in float64 the Newton-Schulz family is the reference's iteration op
// for op, so the sign phase agrees to rounding (1e-10). From the fit on, the temperature
// comes from Gram-matrix eigenvalues (the reference takes an SVD): small singular values
// carry ~1e-8 relative error, which moves tau and the update by ~1e-7; 1e-6 holds that.
// soft_map="accurate" promises 1e-2 of Phi_tau per update (the reference is the exact
// SVD map): 2e-2 * lr per transition step.
TEST_P(MuonGolden, MatchesReferenceAtEveryStep) {
  GoldenFile g = read_golden_file(GetParam());
  ASSERT_GT(g.steps, 0);
  SoftMuonOptions options;
  for (const auto& [name, value] : g.raw_options) set_option(options, name, value);
  const auto phases = softsign::optim::resolve_phases(options);
  std::vector<torch::Tensor> params;
  for (size_t i = 0; i < g.init.size(); ++i) {
    params.push_back(tensor_of(g.init[i], g.shapes[i]).requires_grad_(true));
  }
  SoftMuon optimizer(groups_of(g, params), options);
  for (int64_t k = 1; k <= g.steps; ++k) {
    set_grads(g, params, k);
    optimizer.step();
    const int64_t soft_steps = std::max<int64_t>(0, k - phases.sign_steps);
    const double tolerance = soft_steps == 0                    ? 1e-10
                             : options.soft_map() == "accurate" ? 2e-2 * options.lr() * soft_steps
                                                                : 1e-6;
    for (size_t i = 0; i < params.size(); ++i) {
      const auto want = tensor_of(g.expect.at({k, static_cast<int64_t>(i)}), g.shapes[i]);
      const double err = (params[i].detach() - want).abs().max().item<double>();
      EXPECT_LE(err, tolerance) << "param " << i << " after step " << k;
    }
    const std::optional<double> expected_tau = g.tau.at(k);
    const std::optional<double> tau = optimizer.temperature();
    ASSERT_EQ(tau.has_value(), expected_tau.has_value()) << "step " << k;
    if (tau) EXPECT_NEAR(*tau, *expected_tau, 1e-6 * *expected_tau) << "step " << k;
    EXPECT_FALSE(optimizer.temperature(1).has_value());
  }
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
  const std::string path = "/tmp/softsign_muon_" + std::to_string(::getpid()) + ".pt";
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

TEST(SoftMuon, StepLRScalesBothGroups) {
  auto params = make_matrices(3);
  auto bias = torch::zeros({4}).requires_grad_(true);
  std::vector<OptimizerParamGroup> groups;
  groups.emplace_back(params, std::make_unique<SoftMuonOptions>(SoftMuonOptions().use_muon(true)));
  groups.emplace_back(std::vector<torch::Tensor>{bias},
                      std::make_unique<SoftMuonOptions>(SoftMuonOptions().use_muon(false)));
  Muon opt(groups, MuonOptions(0.02).adamw_lr(1e-3));
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
  EXPECT_THROW(Muon(std::vector<torch::Tensor>{torch::zeros({3}, torch::requires_grad())}),
               c10::Error);
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
  std::vector<torch::Tensor> before;
  for (const auto& p : params) before.push_back(p.detach().clone());
  for (auto& p : params) p.mutable_grad() = torch::full(p.sizes(), NAN);
  EXPECT_THROW(opt.step(), c10::Error);
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before[i]));
}

}  // namespace
