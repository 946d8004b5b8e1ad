// Multi-step parity of softsign::optim::SoftSignum (float32 params, fused CPU kernel) with
// the float64 reference, through golden files written by make_golden.py.
#include "golden.h"

#include <gtest/gtest.h>
#include <softsign/softsign.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "helpers.h"

namespace {

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
  const GoldenFile g = read_golden_file(GetParam());
  const auto options = golden_options<SoftSignumOptions>(g);
  std::vector<torch::Tensor> params = golden_params(g, torch::kFloat32);
  SoftSignum optimizer(params, options);
  // The fit sees float32 directions: the same median/MAD elements, rounded to float32.
  run_golden(g, optimizer, params, /*rtol=*/1e-5, [&](int64_t k) {
    for (size_t i = 0; i < params.size(); ++i) {
      EXPECT_TRUE(
          close_to_reference(params[i], g.expect.at({k, static_cast<int64_t>(i)}), options.lr()))
          << "param " << i << " after step " << k;
    }
  });
}

INSTANTIATE_TEST_SUITE_P(Reference, GoldenTest,
                         testing::Values("momentum", "no_momentum", "nesterov_weight_decay",
                                         "dampening_maximize", "late_param"),
                         [](const testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace
