// What the histogram costs, counted by the host execution layer (Note [host execution
// layer]): colliding shared-memory atomics per element on the skewed keys gradients give,
// and full passes over the model per median/MAD selection. Counts, not times: they are
// the same on every machine, so CI can hold the kernels to them.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cuda_host/runtime.h"
#include "radix_select.h"
#include "radix_select_kernel.cuh"
#include "softsign/ops.h"

namespace {

namespace ops = softsign::ops;
namespace mt = softsign::ops::multi_tensor;
namespace ch = softsign::cuda_host;

// Gradient-like values: Gaussian, 1e-3 scale, and (by default) a quarter exact zeros.
// Stage 1's first pass puts every |x - mu| of them into one bin of 256.
std::vector<at::Tensor> gradient_like(int64_t n, bool zeros = true) {
  at::manual_seed(0);
  at::Tensor g = at::randn({n}) * 1e-3;
  if (zeros) g.narrow(0, 0, n / 4).zero_();
  return {g.narrow(0, 0, n / 2).clone(), g.narrow(0, n / 2, n - n / 2).clone()};
}

struct PassCost {
  double atomics_per_element;
  double colliding_per_element;
};

PassCost first_pass_cost(const std::vector<at::Tensor>& grads, int64_t stage) {
  int64_t n = 0;
  for (const auto& g : grads) n += g.numel();
  at::Tensor state = at::zeros({ops::radix::kStateSize}, at::kLong);
  if (stage == 1) {  // the true median's prefix, from the CPU op
    for (int64_t pass = 0; pass < 4; ++pass) {
      const at::Tensor h =
          ops::radix_select_histogram(grads, {}, state, 0, pass, 8, 32, {}, false, std::nullopt);
      ops::radix_select_advance_(state, h, 0, pass, 8, 32);
    }
  }
  ch::reset_counters();
  ops::radix_select_histogram_launch<>(grads, {}, state, stage, 0, 8, 32, 0.0, 0.0, false, false,
                                       false, std::nullopt, "heavy_ball", {});
  // The per-block merge into the global histogram is a few atomics per block, not per
  // element; it is included.
  return {static_cast<double>(ch::counters().atomics) / n,
          static_cast<double>(ch::counters().colliding_atomics) / n};
}

TEST(HistogramCounts, SkewedKeysDoNotCollide) {
  const auto grads = gradient_like(1 << 17);
  for (const int64_t stage : {0, 1}) {
    const PassCost c = first_pass_cost(grads, stage);
    std::printf("stage %ld pass 0: %.4f atomics and %.4f colliding atomics per element\n",
                static_cast<long>(stage), c.atomics_per_element, c.colliding_per_element);
    RecordProperty("stage" + std::to_string(stage) + "_colliding_per_element",
                   std::to_string(c.colliding_per_element));
    EXPECT_LT(c.colliding_per_element, 0.05);
    EXPECT_LT(c.atomics_per_element, 0.5);
  }
}

// Elements of the model read by one selection: the plain passes of the radix selection
// (4 + 8 with 32-bit keys, each over every element: what the CUDA driver did before the
// candidate finish) against the device-side driver of radix_select_kernel.cuh.
// A quarter exact zeros put the median on 16384 equal keys: stage 0 cannot finish early
// with a capacity below that (8 passes); Gaussian values finish both stages early (7).
TEST(HistogramCounts, TheFitReadsTheModelFewerTimes) {
  for (const bool zeros : {false, true}) {
    const auto grads = gradient_like(1 << 16, zeros);
    int64_t n = 0;
    for (const auto& g : grads) n += g.numel();
    ops::SelectionSource src;
    src.grads = grads;

    ch::reset_counters();
    at::Tensor state = at::zeros({ops::radix::kStateSize}, at::kLong);
    for (int64_t stage = 0; stage < 2; ++stage) {
      for (int64_t pass = 0; pass < (stage == 0 ? 4 : 8); ++pass) {
        const at::Tensor h = ops::radix_select_histogram_launch<>(grads, {}, state, stage, pass, 8,
                                                                  32, 0.0, 0.0, false, false, false,
                                                                  std::nullopt, "heavy_ball", {});
        ops::radix_select_advance_(state, h, stage, pass, 8, 32);
      }
    }
    const double plain = static_cast<double>(ch::counters().elements_read) / n;
    const auto [mu, mad] = ops::radix_select_result(state, 32);

    ch::reset_counters();
    // The default capacity's share of the model (n / 128) without its floor of 2^16,
    // which would cover this small model whole.
    const auto [got_mu, got_mad] = ops::select_median_mad_launch<>(src, n / 128);
    const double finished = static_cast<double>(ch::counters().elements_read) / n;
    std::printf(
        "%s: full passes over the model per selection: %.2f plain, %.2f with the "
        "candidate finish\n",
        zeros ? "a quarter zeros" : "gaussian", plain, finished);
    RecordProperty(zeros ? "zeros_passes" : "gaussian_passes", std::to_string(finished));
    EXPECT_TRUE(at::equal(got_mu, mu) && at::equal(got_mad, mad));
    EXPECT_EQ(plain, 12.0);
    EXPECT_LE(finished, zeros ? 8.0 : 7.0);
  }
}

}  // namespace
