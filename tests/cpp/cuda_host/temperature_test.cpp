// The CUDA temperature kernel (csrc/ops/cuda/temperature_kernel.cuh), run by the host
// execution layer, against the CPU op: the same function per index, so the same bits here
// (a GPU's tan and atan may round differently). Covers launches of many blocks with a
// ragged last one, one index alone (what a step asks for) at any transition length, the
// degenerate fits (zero MAD, zero median, NaN) and both maps.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "cuda_host/runtime.h"
#include "softsign/ops.h"
#include "temperature_kernel.cuh"

namespace {

namespace ops = softsign::ops;
namespace ch = softsign::cuda_host;

at::Tensor scalar(double v) { return at::scalar_tensor(v, at::kDouble); }

// The kernel's schedule through the op's entry, as the CUDA registration calls it.
at::Tensor kernel_schedule(double mu, double s, int64_t steps, const std::string& kind,
                           double tmax = 1e9) {
  return ops::temperature_schedule_entry<&ops::temperature_range_launch<32>>(
      scalar(mu), scalar(s), steps, 1e-4, 10, tmax, kind);
}

at::Tensor kernel_at(double mu, double s, int64_t index, int64_t steps, const std::string& kind) {
  return ops::temperature_at_entry<&ops::temperature_range_launch<32>>(scalar(mu), scalar(s), index,
                                                                       steps, 1e-4, 10, 1e9, kind);
}

void expect_same_bits(const at::Tensor& got, const at::Tensor& want) {
  ASSERT_EQ(got.sizes(), want.sizes());
  const auto g = got.contiguous();
  const auto w = want.contiguous();
  for (int64_t i = 0; i < g.numel(); ++i) {
    const double a = g.const_data_ptr<double>()[i];
    const double b = w.const_data_ptr<double>()[i];
    if (std::isnan(b)) {
      EXPECT_TRUE(std::isnan(a)) << "index " << i;
    } else {
      EXPECT_EQ(a, b) << "index " << i;
    }
  }
}

struct Fit {
  double mu, s;
};

TEST(TemperatureKernel, ScheduleMatchesTheCpuOp) {
  // 32 threads a block: 100 steps are 4 blocks, the last one ragged.
  for (const std::string kind : {"tanh", "algebraic"}) {
    for (const Fit fit : {Fit{1e-3, 2e-3}, Fit{-0.5, 1e-6}, Fit{0.25, 0.0}, Fit{0.0, 0.0}}) {
      ch::reset_counters();
      const at::Tensor got = kernel_schedule(fit.mu, fit.s, 100, kind);
      EXPECT_EQ(ch::counters().launches, 1);
      EXPECT_EQ(ch::counters().blocks, 4);
      expect_same_bits(
          got, ops::temperature_schedule(scalar(fit.mu), scalar(fit.s), 100, 1e-4, 10, 1e9, kind));
    }
  }
}

TEST(TemperatureKernel, OneIndexIsItsScheduleEntry) {
  const at::Tensor schedule = kernel_schedule(1e-3, 2e-3, 1000, "tanh");
  for (const int64_t j : {0, 1, 499, 999}) {
    ch::reset_counters();
    const at::Tensor tau = kernel_at(1e-3, 2e-3, j, 1000, "tanh");
    EXPECT_EQ(ch::counters().blocks, 1);  // one index, one block
    EXPECT_EQ(tau.dim(), 0);
    EXPECT_EQ(tau.item<double>(), schedule[j].item<double>());
  }
  // Past the end: the last temperature (the phase after the transition).
  EXPECT_EQ(kernel_at(1e-3, 2e-3, 5000, 1000, "tanh").item<double>(), schedule[999].item<double>());
}

TEST(TemperatureKernel, AnyTransitionLengthCostsOneIndex) {
  // T = 1e12 would be 8 TB as a schedule; a step's temperature is one thread's work.
  const int64_t steps = 1000000000000;
  ch::reset_counters();
  const double first = kernel_at(1e-3, 2e-3, 0, steps, "algebraic").item<double>();
  const double late = kernel_at(1e-3, 2e-3, steps - 1, steps, "algebraic").item<double>();
  EXPECT_EQ(ch::counters().blocks, 2);
  EXPECT_EQ(first,
            ops::temperature_at(scalar(1e-3), scalar(2e-3), 0, steps, 1e-4, 10, 1e9, "algebraic")
                .item<double>());
  EXPECT_EQ(late, ops::temperature_at(scalar(1e-3), scalar(2e-3), steps - 1, steps, 1e-4, 10, 1e9,
                                      "algebraic")
                      .item<double>());
  EXPECT_GT(first, late);  // the temperature falls over the transition
  EXPECT_GE(late, 1.0);
}

TEST(TemperatureKernel, NanFitGivesNanTemperatures) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const at::Tensor got = kernel_schedule(nan, nan, 40, "tanh");
  EXPECT_TRUE(at::isnan(got).all().item<bool>());
  EXPECT_TRUE(std::isnan(kernel_at(0.1, nan, 3, 40, "algebraic").item<double>()));
}

TEST(TemperatureKernel, ChecksComeBeforeTheLaunch) {
  ch::reset_counters();
  EXPECT_THROW(kernel_schedule(0.0, 1.0, 0, "tanh"), c10::Error);
  EXPECT_THROW(kernel_schedule(0.0, 1.0, 4, "cubic"), c10::Error);
  EXPECT_THROW(kernel_at(0.0, 1.0, -1, 4, "tanh"), c10::Error);
  EXPECT_EQ(ch::counters().launches, 0);
}

}  // namespace
