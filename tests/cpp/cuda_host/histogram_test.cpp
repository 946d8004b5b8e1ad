// The CUDA histogram kernel (csrc/ops/cuda/radix_select_kernel.cuh), run by the host
// execution layer with tiny launch limits, against the CPU op: every pass of both stages
// of a selection, driven by the CPU's advance, gives equal counts.
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compare.h"
#include "radix_select.h"
#include "radix_select_kernel.cuh"
#include "rule_cases.h"
#include "softsign/ops.h"

namespace {

namespace ops = softsign::ops;
namespace mt = softsign::ops::multi_tensor;
using Tiny = mt::Limits<64, 3, 2>;

struct Source {
  std::vector<at::Tensor> grads, bufs, first;
  ops::SelectionSource src;
};

at::Tensor randn(int64_t n, at::ScalarType dtype) {
  return at::randn({n}, at::TensorOptions().dtype(at::kDouble)).to(dtype);
}

// Walks every pass of both stages: at each, the host-run kernel's histogram must equal the
// CPU op's; the CPU advance then moves the state on.
void expect_same_histograms(const Source& s, int64_t key_bits, const std::string& what) {
  const at::Tensor state = at::zeros({softsign::ops::radix::kStateSize}, at::kLong);
  const ops::SelectionSource& src = s.src;
  const at::TensorList bufs = ops::reads_buffers(src) ? src.momentum_buffers : at::TensorList();
  for (int64_t stage = 0; stage < 2; ++stage) {
    const int64_t passes = (stage == 0 ? key_bits : 64) / 8;
    for (int64_t pass = 0; pass < passes; ++pass) {
      const std::string where =
          what + " stage " + std::to_string(stage) + " pass " + std::to_string(pass);
      at::Tensor want = ops::radix_select_histogram(src.grads, bufs, state, stage, pass, 8,
                                                    key_bits, src, false, src.grad_scale);
      at::Tensor got = ops::radix_select_histogram_launch<Tiny>(
          src.grads, bufs, state, stage, pass, 8, key_bits, src.momentum, src.dampening,
          src.nesterov, src.maximize, false, src.grad_scale, src.momentum_rule, src.rule_coeffs);
      if (!src.first_step_grads.empty()) {
        want.add_(ops::radix_select_histogram(src.first_step_grads, {}, state, stage, pass, 8,
                                              key_bits, src, true, src.grad_scale));
        got.add_(ops::radix_select_histogram_launch<Tiny>(
            src.first_step_grads, {}, state, stage, pass, 8, key_bits, src.momentum, src.dampening,
            src.nesterov, src.maximize, true, src.grad_scale, src.momentum_rule, src.rule_coeffs));
      }
      ASSERT_TRUE(at::equal(got, want)) << where;
      ops::radix_select_advance_(state, want, stage, pass, 8, key_bits);
    }
  }
}

Source make_source(const std::vector<at::ScalarType>& dtypes, double momentum, bool nesterov,
                   bool first, bool scaled, bool nan) {
  Source s;
  const std::vector<int64_t> sizes = {1, 3, 5, 63, 64, 65, 300, 0, 17};
  for (size_t i = 0; i < sizes.size(); ++i) {
    const at::ScalarType t = dtypes[i % dtypes.size()];
    at::Tensor g = randn(sizes[i] + 1, t).narrow(0, 1, sizes[i]);  // misaligned views
    if (i % 2 == 0) g = randn(sizes[i], t);
    if (g.numel() > 4) g.narrow(0, 0, g.numel() / 4).zero_();  // skew: many exact zeros
    s.grads.push_back(g);
    s.bufs.push_back(randn(sizes[i], t));
  }
  if (nan) s.grads[6][10] = std::numeric_limits<double>::quiet_NaN();
  if (first) s.first = {randn(33, dtypes[0]), randn(64, dtypes.back())};
  s.src.grads = s.grads;
  s.src.momentum_buffers = s.bufs;
  s.src.first_step_grads = s.first;
  s.src.momentum = momentum;
  s.src.dampening = 0.25;
  s.src.nesterov = nesterov;
  s.src.maximize = nesterov;
  if (scaled) s.src.grad_scale = at::full({}, 512.0, at::TensorOptions().dtype(at::kFloat));
  return s;
}

struct HistCase {
  std::vector<at::ScalarType> dtypes;
  int64_t key_bits;
  double momentum;
  bool nesterov;  // also maximize and grad_scale
  bool first;     // some grads start their buffers this step
};

TEST(HistogramKernel, EveryPassMatchesTheCpuOp) {
  at::manual_seed(0);
  // Every dtype and both key widths, each momentum variant at least once (float64 math
  // needs 64-bit keys; float32 math takes both, as under a histogram hook).
  const std::vector<HistCase> cases = {
      {{at::kFloat}, 32, 0.0, false, false},
      {{at::kFloat}, 64, 0.9, true, false},
      {{at::kBFloat16}, 32, 0.9, false, true},
      {{at::kHalf}, 32, 0.9, true, false},
      {{at::kDouble}, 64, 0.9, false, true},
      {{at::kFloat, at::kHalf}, 32, 0.9, false, false},
      {{at::kBFloat16, at::kDouble}, 64, 0.0, true, false},
  };
  for (const HistCase& c : cases) {
    const Source s = make_source(c.dtypes, c.momentum, c.nesterov, c.first, c.nesterov, false);
    expect_same_histograms(s, c.key_bits,
                           std::string(at::toString(c.dtypes[0])) + " keys " +
                               std::to_string(c.key_bits) + " m " + std::to_string(c.momentum) +
                               (c.nesterov ? " nesterov" : "") + (c.first ? " first" : ""));
  }
}

// Note [rule cases]: every form of every momentum rule, over grads whose buffers exist and,
// for a first step, grads whose buffers start this step (read as zeros).
TEST(HistogramKernel, EveryRuleCaseMatchesTheCpuOp) {
  at::manual_seed(3);
  for (const auto& r : ops::testing::rule_cases()) {
    for (const auto& dtypes : std::vector<std::vector<at::ScalarType>>{
             {at::kFloat}, {at::kBFloat16, at::kHalf}, {at::kDouble}}) {
      const ops::SoftSignStepArgs& a = r.args;
      Source s = make_source(dtypes, a.momentum, a.nesterov, a.first_step, true, false);
      s.src.dampening = a.dampening;
      s.src.maximize = a.maximize;
      s.src.momentum_rule = a.momentum_rule;
      s.src.rule_coeffs = a.rule_coeffs;
      const int64_t key_bits = dtypes[0] == at::kDouble ? 64 : 32;
      expect_same_histograms(s, key_bits, r.name + " " + std::string(at::toString(dtypes[0])));
    }
  }
}

TEST(HistogramKernel, NaNIsCountedOnTheFirstPassOnly) {
  at::manual_seed(1);
  const Source s = make_source({at::kFloat}, 0.9, false, false, false, true);
  expect_same_histograms(s, 32, "with NaN");
}

TEST(HistogramKernel, DefaultLimitsAcrossChunks) {
  at::manual_seed(2);
  Source s;
  s.grads = {randn(65537, at::kFloat), randn(65535, at::kFloat)};
  s.grads[0].narrow(0, 0, 60000).zero_();
  s.src.grads = s.grads;
  const at::Tensor state = at::zeros({ops::radix::kStateSize}, at::kLong);
  const at::Tensor want =
      ops::radix_select_histogram(s.src.grads, {}, state, 0, 0, 8, 32, s.src, false, {});
  const at::Tensor got = ops::radix_select_histogram_launch<mt::DefaultLimits>(
      s.src.grads, {}, state, 0, 0, 8, 32, 0.0, 0.0, false, false, false, std::nullopt,
      "heavy_ball", {});
  EXPECT_TRUE(at::equal(got, want));
}

}  // namespace

namespace {

// The advance kernel (CUB's BlockScan on the GPU, the host layer's scan here) against the
// ATen-op advance of the CPU driver: the same state after every pass, for counts of every
// shape (empty, one bin, rank in the first/last bin, NaN count) and digit widths 8 and 16.
TEST(AdvanceKernel, MatchesTheAtenDriverStateForState) {
  at::manual_seed(3);
  for (const int64_t digit_bits : {int64_t{8}, int64_t{16}}) {
    const int64_t bins = int64_t{1} << digit_bits;
    for (int trial = 0; trial < 12; ++trial) {
      at::Tensor want = at::zeros({ops::radix::kStateSize}, at::kLong);
      at::Tensor got = want.clone();
      const int64_t stage = trial % 2;
      const int64_t passes = (stage == 0 ? 32 : 64) / digit_bits;
      for (int64_t pass = 0; pass < passes; ++pass) {
        at::Tensor hist = at::zeros({bins + 1}, at::kLong);
        if (trial % 4 == 1) {
          hist[trial % bins] = 7;  // one bin
        } else if (trial % 4 == 2) {
          hist[0] = 3;
          hist[bins - 1] = 5;
          hist[bins] = pass == 0 ? 2 : 0;
        } else if (trial % 4 == 3) {
          hist.narrow(0, 0, bins).copy_(at::randint(0, 3, {bins}, at::kLong));
        }  // else: all zero
        ops::radix_select_advance_(want, hist, stage, pass, digit_bits, 32);
        ops::radix_select_advance_entry(got, hist, stage, pass, digit_bits, 32);
        ASSERT_TRUE(at::equal(got, want))
            << "digits " << digit_bits << " trial " << trial << " pass " << pass << "\n"
            << got << want;
      }
    }
  }
}

// The device-side driver with its candidate finish against the CPU op: the same median
// and MAD, exactly, whether the candidates fit (small capacity or large) or not at all.
TEST(SelectionDriver, MatchesTheCpuMedianAndMad) {
  at::manual_seed(4);
  const std::vector<std::vector<at::ScalarType>> dtype_lists = {
      {at::kFloat}, {at::kBFloat16, at::kHalf}, {at::kDouble, at::kFloat}};
  // No momentum (""), the heavy ball with Nesterov, and every other rule of kRuleSpecs with
  // coefficients 0.8, 0.7, ... (Note [rule cases]): a new rule is selected here without an edit.
  std::vector<std::pair<std::string, std::vector<double>>> rules = {{"", {}}, {"heavy_ball", {}}};
  for (const ops::RuleSpec& spec : ops::kRuleSpecs) {
    if (spec.id == ops::Rule::kHeavyBall) continue;
    std::vector<double> coeffs;
    for (int i = 0; i < spec.coeffs; ++i) coeffs.push_back(0.8 - 0.1 * i);
    rules.emplace_back(spec.name, coeffs);
  }
  for (const auto& dtypes : dtype_lists) {
    for (const auto& [rule, coeffs] : rules) {
      const bool momentum = !rule.empty();
      const bool nesterov = rule == "heavy_ball";
      Source s = make_source(dtypes, momentum ? 0.9 : 0.0, nesterov, momentum, momentum, false);
      if (momentum && !nesterov) {
        s.src.momentum_rule = rule;
        s.src.rule_coeffs = coeffs;
      }
      const auto [mu, mad] = ops::direction_median_mad(s.src);
      for (const int64_t capacity : {int64_t{0}, int64_t{8}, int64_t{40}, int64_t{3000}}) {
        const auto [got_mu, got_mad] = ops::select_median_mad_launch<Tiny>(s.src, capacity);
        EXPECT_TRUE(at::equal(got_mu, mu) && at::equal(got_mad, mad))
            << at::toString(dtypes[0]) << " capacity " << capacity << ": " << got_mu.item<double>()
            << " " << got_mad.item<double>() << " vs " << mu.item<double>() << " "
            << mad.item<double>();
      }
    }
  }
  // NaN anywhere: both NaN, as torch.median.
  Source nan = make_source({at::kFloat}, 0.0, false, false, false, true);
  const auto [nan_mu, nan_mad] = ops::select_median_mad_launch<Tiny>(nan.src, 3000);
  EXPECT_TRUE(std::isnan(nan_mu.item<double>()) && std::isnan(nan_mad.item<double>()));
}

}  // namespace
