// The CUDA histogram kernel (csrc/ops/cuda/radix_select_kernel.cuh), run by the host
// execution layer with tiny launch limits, against the CPU op: every pass of both stages
// of a selection, driven by the CPU's advance, gives equal counts.
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "compare.h"
#include "radix_select.h"
#include "radix_select_kernel.cuh"
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
  const at::TensorList bufs = src.momentum == 0.0 ? at::TensorList() : src.momentum_buffers;
  for (int64_t stage = 0; stage < 2; ++stage) {
    const int64_t passes = (stage == 0 ? key_bits : 64) / 8;
    for (int64_t pass = 0; pass < passes; ++pass) {
      const std::string where =
          what + " stage " + std::to_string(stage) + " pass " + std::to_string(pass);
      at::Tensor want = ops::radix_select_histogram(src.grads, bufs, state, stage, pass, 8,
                                                    key_bits, src, false, src.grad_scale);
      at::Tensor got = ops::radix_select_histogram_launch<Tiny>(
          src.grads, bufs, state, stage, pass, 8, key_bits, src.momentum, src.dampening,
          src.nesterov, src.maximize, false, src.grad_scale);
      if (!src.first_step_grads.empty()) {
        want.add_(ops::radix_select_histogram(src.first_step_grads, {}, state, stage, pass, 8,
                                              key_bits, src, true, src.grad_scale));
        got.add_(ops::radix_select_histogram_launch<Tiny>(
            src.first_step_grads, {}, state, stage, pass, 8, key_bits, src.momentum, src.dampening,
            src.nesterov, src.maximize, true, src.grad_scale));
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
      s.src.grads, {}, state, 0, 0, 8, 32, 0.0, 0.0, false, false, false, std::nullopt);
  EXPECT_TRUE(at::equal(got, want));
}

}  // namespace
