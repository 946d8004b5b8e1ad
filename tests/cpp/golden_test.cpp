// Multi-step parity of softsign::optim::SoftSignum (float32 params, fused CPU kernel) with
// the float64 reference, through golden files written by make_golden.py.
#include "golden.h"

#include <gtest/gtest.h>
#include <softsign/softsign.h>
#include <torch/torch.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

namespace {

using softsign::optim::SoftSignum;
using softsign::optim::SoftSignumOptions;

void set_option(SoftSignumOptions& o, const std::string& name, const std::string& value) {
  if (name == "lr") {
    o.lr(std::stod(value));
  } else if (name == "momentum") {
    o.momentum(std::stod(value));
  } else if (name == "dampening") {
    o.dampening(std::stod(value));
  } else if (name == "weight_decay") {
    o.weight_decay(std::stod(value));
  } else if (name == "nesterov") {
    o.nesterov(std::stoi(value) != 0);
  } else if (name == "maximize") {
    o.maximize(std::stoi(value) != 0);
  } else if (name == "total_steps") {
    o.total_steps(std::stoll(value));
  } else if (name == "alpha_sign") {
    o.alpha_sign(std::stod(value));
  } else if (name == "sign_steps") {
    o.sign_steps(std::stoll(value));
  } else if (name == "transition_steps") {
    o.transition_steps(std::stoll(value));
  } else if (name == "eps") {
    o.eps(std::stod(value));
  } else if (name == "newton_iters") {
    o.newton_iters(std::stoll(value));
  } else if (name == "tmax") {
    o.tmax(std::stod(value));
  } else {
    ADD_FAILURE() << "unknown option in golden file: " << name;
  }
}

struct Golden : GoldenFile {
  SoftSignumOptions options;
};

Golden read_golden(const std::string& name) {
  Golden g;
  static_cast<GoldenFile&>(g) = read_golden_file(name);
  for (const auto& [option, value] : g.raw_options) set_option(g.options, option, value);
  return g;
}

torch::Tensor float32_tensor(const std::vector<double>& values, const std::vector<int64_t>& shape) {
  return torch::tensor(values, torch::kFloat64).to(torch::kFloat32).reshape(shape);
}

// Why this tolerance: params and the kernel's math are float32, the reference float64.
// In the sign phase the update lr * sign(d) is the same in both (the golden gradients keep
// |d| far from 0, see make_golden.py), so the difference is the float32 rounding of p
// (2^-24 relative per step, about 2e-6 relative over 32 steps). In the transition,
// tanh(tau * d) differs by the float32 rounding of tau and d (about 1e-7 relative, and
// tanh' <= 1), i.e. at most about lr * 1e-6 per step. 1e-5 relative + lr * 1e-3 absolute
// holds both with a wide margin, yet a wrong temperature index (one schedule step off
// changes tau by 10% or more) or a wrong sign moves a param by about lr and fails it.
testing::AssertionResult close_to_reference(const torch::Tensor& actual,
                                            const std::vector<double>& expected, double lr) {
  const auto a = actual.to(torch::kFloat64).contiguous().reshape(-1);
  const double* values = a.const_data_ptr<double>();
  for (size_t i = 0; i < expected.size(); ++i) {
    const double tolerance = 1e-5 * std::abs(expected[i]) + lr * 1e-3;
    if (!(std::abs(values[i] - expected[i]) <= tolerance)) {
      return testing::AssertionFailure()
             << "element " << i << ": got " << values[i] << ", reference " << expected[i]
             << " (tolerance " << tolerance << ")";
    }
  }
  return testing::AssertionSuccess();
}

class GoldenTest : public testing::TestWithParam<std::string> {};

TEST_P(GoldenTest, MatchesReferenceAtEveryStep) {
  const Golden g = read_golden(GetParam());
  ASSERT_GT(g.steps, 0);
  std::vector<torch::Tensor> params;
  for (size_t i = 0; i < g.init.size(); ++i) {
    params.push_back(float32_tensor(g.init[i], g.shapes[i]).requires_grad_(true));
  }
  SoftSignum optimizer(params, g.options);
  const double lr = g.options.lr();
  for (int64_t k = 1; k <= g.steps; ++k) {
    for (size_t i = 0; i < params.size(); ++i) {
      auto grad = g.grads.find({k, static_cast<int64_t>(i)});
      params[i].mutable_grad() =
          grad == g.grads.end() ? torch::Tensor() : float32_tensor(grad->second, g.shapes[i]);
    }
    optimizer.step();
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(close_to_reference(params[i], g.expect.at({k, static_cast<int64_t>(i)}), lr))
          << "param " << i << " after step " << k;
    }
    const std::optional<double> expected_tau = g.tau.at(k);
    const std::optional<double> tau = optimizer.temperature();
    ASSERT_EQ(tau.has_value(), expected_tau.has_value()) << "step " << k;
    if (tau) {
      // The fit sees float32 directions: the same median/MAD elements, rounded to float32.
      EXPECT_NEAR(*tau, *expected_tau, 1e-5 * *expected_tau) << "step " << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Reference, GoldenTest,
                         testing::Values("momentum", "no_momentum", "nesterov_weight_decay",
                                         "dampening_maximize", "late_param"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
