// The CUDA step kernel (csrc/ops/cuda/soft_sign_step_kernel.cuh), run by the host execution
// layer with tiny launch limits, against the CPU op on the same inputs: bit-identical in
// the sign phase, within the tolerance of compare.h in the soft phase, buffers always
// bit-identical, and one outcome per call for every temperature.
#include <gtest/gtest.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "compare.h"
#include "rule_cases.h"
#include "soft_sign_step_kernel.cuh"
#include "softsign/ops.h"

namespace {

using namespace cuda_host_test;
namespace ops = softsign::ops;
namespace mt = softsign::ops::multi_tensor;

// Chunks of 64 elements, 3 blocks and 2 tensors per launch: a list of a dozen small
// tensors takes every relaunch path.
using Tiny = mt::Limits<64, 3, 2>;

enum class Temp { kSign, kFinite, kInf, kNaN, kHuge };

struct Case {
  std::string name;
  ops::SoftSignStepArgs args;
  bool lr_tensor = false;
  bool grad_scale = false;
  std::optional<double> found_inf;
};

struct Inputs {
  std::vector<at::Tensor> params, grads, bufs;
};

at::Tensor randn(std::vector<int64_t> sizes, at::ScalarType dtype) {
  return at::randn(sizes, at::TensorOptions().dtype(at::kDouble)).to(dtype);
}

// A user's model in miniature: sizes 0, 1, the vector width 4 +-1, the tiny chunk 64 +-1,
// several chunks, a view at an odd storage offset (misaligned), a transposed matrix and
// a strided (non-dense) view; some exact zeros in the grads (sign(0) = 0).
Inputs make_inputs(const std::vector<at::ScalarType>& dtypes, bool with_bufs) {
  Inputs in;
  const std::vector<int64_t> sizes = {0, 1, 3, 4, 5, 63, 64, 65, 200};
  size_t k = 0;
  auto dtype = [&] { return dtypes[k++ % dtypes.size()]; };
  auto add = [&](at::Tensor p) {
    at::Tensor g = randn(p.sizes().vec(), p.scalar_type());
    if (g.numel() > 2) g.view(-1)[1] = 0;
    in.params.push_back(p);
    in.grads.push_back(g);
  };
  for (const int64_t n : sizes) add(randn({n}, dtype()));
  const at::ScalarType t = dtype();
  add(randn({38}, t).narrow(0, 1, 37));          // storage offset 1
  add(randn({5, 7}, dtype()).t());               // transposed
  add(randn({90}, dtype()).slice(0, 0, 90, 2));  // every other element
  if (with_bufs) {
    for (const auto& p : in.params) in.bufs.push_back(randn(p.sizes().vec(), p.scalar_type()));
  }
  return in;
}

std::optional<at::Tensor> temperature_of(Temp temp) {
  const auto f64 = at::TensorOptions().dtype(at::kDouble);
  switch (temp) {
    case Temp::kSign:
      return std::nullopt;
    case Temp::kFinite:
      return at::full({}, 1.7, f64);
    case Temp::kInf:
      return at::full({}, std::numeric_limits<double>::infinity(), f64);
    case Temp::kNaN:
      return at::full({}, std::numeric_limits<double>::quiet_NaN(), f64);
    case Temp::kHuge:
      return at::full({}, 1e39, f64);  // finite in float64, beyond float32's range
  }
  return std::nullopt;
}

// Runs the CPU op on `in` and the host-run CUDA kernel on twins; compares everything.
template <typename L>
void run_and_compare(const Inputs& in, const Case& c, Temp temp, const std::string& what) {
  Inputs host{twins(in.params), twins(in.grads), twins(in.bufs)};
  Inputs cpu{twins(in.params), twins(in.grads), twins(in.bufs)};
  const auto f32 = at::TensorOptions().dtype(at::kFloat);
  std::optional<at::Tensor> lr_t, scale, inf;
  if (c.lr_tensor) lr_t = at::full({}, c.args.lr * 2, f32);
  if (c.grad_scale) scale = at::full({}, 1024.0, f32);
  if (c.found_inf.has_value()) inf = at::full({}, *c.found_inf, f32);
  if (c.grad_scale) {
    for (auto* list : {&host.grads, &cpu.grads}) {
      for (auto& g : *list) g.mul_(1024);
    }
  }
  const std::optional<at::Tensor> tau = temperature_of(temp);
  const ops::SoftSignStepArgs& a = c.args;
  ops::soft_sign_step_(cpu.params, cpu.grads, cpu.bufs, a, lr_t, tau, scale, inf);
  ops::soft_sign_step_entry<&ops::soft_sign_step_launch<L>>(
      host.params, host.grads, host.bufs, a.lr, lr_t, a.momentum, a.dampening, a.weight_decay,
      a.nesterov, a.maximize, a.first_step, tau, scale, inf, a.momentum_rule, a.rule_coeffs);
  const double lr = c.lr_tensor ? a.lr * 2 : a.lr;
  for (size_t i = 0; i < in.params.size(); ++i) {
    const std::string where = what + " tensor " + std::to_string(i) + " " +
                              std::string(at::toString(in.params[i].scalar_type()));
    if (temp == Temp::kFinite) {
      expect_close_soft(host.params[i], cpu.params[i], lr, where + " param");
    } else {
      expect_same_bits(host.params[i], cpu.params[i], where + " param");
    }
    if (!in.bufs.empty()) expect_same_bits(host.bufs[i], cpu.bufs[i], where + " buffer");
    expect_same_bits(host.grads[i], cpu.grads[i], where + " grad");
  }
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (const auto& r : ops::testing::rule_cases()) out.push_back({r.name, r.args});
  auto heavy_ball = [] {
    ops::SoftSignStepArgs a;
    a.lr = 0.01;
    a.momentum = 0.9;
    return a;
  };
  Case amp{"grad_scale_lr_tensor_found_inf_zero", heavy_ball()};
  amp.lr_tensor = amp.grad_scale = true;
  amp.found_inf = 0.0;
  out.push_back(amp);
  Case skipped{"found_inf_nonzero", heavy_ball()};
  skipped.grad_scale = true;
  skipped.found_inf = 1.0;
  out.push_back(skipped);
  return out;
}

class StepKernel : public testing::TestWithParam<Temp> {};

const std::vector<std::vector<at::ScalarType>> kDtypeLists = {
    {at::kFloat},
    {at::kBFloat16},
    {at::kHalf},
    {at::kDouble},
    {at::kFloat, at::kBFloat16, at::kDouble, at::kHalf}};

TEST_P(StepKernel, MatchesTheCpuOp) {
  at::manual_seed(0);
  for (const Case& c : cases()) {
    for (const auto& dtypes : kDtypeLists) {
      const Inputs in = make_inputs(dtypes, ops::testing::step_buffered(c.args));
      const std::string what = c.name + " [" + std::to_string(dtypes.size()) + " dtypes, " +
                               std::string(at::toString(dtypes[0])) + "]";
      run_and_compare<Tiny>(in, c, GetParam(), what);
    }
  }
}

std::string temp_name(const testing::TestParamInfo<Temp>& info) {
  static const char* const kNames[] = {"sign", "finite", "inf", "nan", "huge"};
  return kNames[static_cast<int>(info.param)];
}

INSTANTIATE_TEST_SUITE_P(Temperatures, StepKernel,
                         testing::Values(Temp::kSign, Temp::kFinite, Temp::kInf, Temp::kNaN,
                                         Temp::kHuge),
                         temp_name);

// The GPU's own limits: chunk size 65536 +-1 and a list longer than one launch holds.
TEST(StepKernelDefaultLimits, ChunkEdgesAndLongLists) {
  at::manual_seed(1);
  Inputs in;
  for (const int64_t n : {65535, 65536, 65537}) {
    in.params.push_back(randn({n}, at::kFloat));
    in.grads.push_back(randn({n}, at::kFloat));
    in.bufs.push_back(randn({n}, at::kFloat));
  }
  for (int i = 0; i < 50; ++i) {  // 53 tensors: more than the 48 of a depth-3 launch
    in.params.push_back(randn({7}, at::kBFloat16));
    in.grads.push_back(randn({7}, at::kBFloat16));
    in.bufs.push_back(randn({7}, at::kBFloat16));
  }
  Case c{"heavy_ball", {}};
  c.args.lr = 0.01;
  c.args.momentum = 0.9;
  run_and_compare<mt::DefaultLimits>(in, c, Temp::kSign, "default limits");
  run_and_compare<mt::DefaultLimits>(in, c, Temp::kFinite, "default limits");
}

// One tensor spanning more blocks than a launch holds (3 here: 5 launches of it).
TEST(StepKernelTinyLimits, OneTensorAcrossLaunches) {
  at::manual_seed(2);
  Inputs in{{randn({64 * 14 + 9}, at::kFloat)}, {randn({64 * 14 + 9}, at::kFloat)}, {}};
  Case c{"no_momentum", {}};
  c.args.momentum = 0.0;
  run_and_compare<Tiny>(in, c, Temp::kSign, "across launches");
}

}  // namespace
