// The fused Muon/SoftMuon step over a list of matrix parameters (docs/algorithms.md section 5).
// Same-shape matrices are stacked into one batch so that each Newton-Schulz or soft-map
// iteration is a few batched matmuls; everything else is a torch foreach op. Nothing here
// reads a device value on the host.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>
#include <vector>

#include "spectral.h"

namespace softsign::ops {
namespace {

struct MatrixBucket {
  int64_t rows, cols;
  at::ScalarType dtype;
  std::vector<size_t> members;
};

// targets[j] <- where(ok, updated[j], targets[j]): the new values only if ok (on the device).
void keep_where(const at::Tensor& ok, const std::vector<at::Tensor>& targets,
                const std::vector<at::Tensor>& updated) {
  for (size_t j = 0; j < targets.size(); ++j) {
    at::Tensor out = targets[j];
    at::where_out(out, ok, updated[j], targets[j]);
  }
}

// Update scale of a (rows x cols) matrix: "original" (Keller Jordan's Muon) keeps the RMS
// of tall updates; "match_rms_adamw" (Moonshot) matches AdamW's update RMS.
double update_scale(c10::string_view adjust_lr, int64_t rows, int64_t cols) {
  if (adjust_lr == "original") {
    return std::sqrt(std::max(1.0, static_cast<double>(rows) / static_cast<double>(cols)));
  }
  if (adjust_lr == "match_rms_adamw") {
    return 0.2 * std::sqrt(static_cast<double>(std::max(rows, cols)));
  }
  TORCH_CHECK(false, "softsign.muon_step_: expected adjust_lr 'original' or 'match_rms_adamw', ",
              "got '", std::string(adjust_lr), "'");
}

void check_inputs(at::TensorList params, at::TensorList grads, at::TensorList bufs, double lr,
                  double momentum, int64_t ns_steps, int64_t soft_steps,
                  const std::optional<at::Tensor>& temperature) {
  TORCH_CHECK(grads.size() == params.size() && bufs.size() == params.size(),
              "softsign.muon_step_: expected equal numbers of params, grads and momentum "
              "buffers, got ",
              params.size(), ", ", grads.size(), ", ", bufs.size());
  TORCH_CHECK(std::isfinite(lr) && lr >= 0, "softsign.muon_step_: invalid lr ", lr);
  TORCH_CHECK(momentum >= 0 && momentum < 1,
              "softsign.muon_step_: expected 0 <= momentum < 1, got ", momentum);
  TORCH_CHECK(ns_steps >= 0 && soft_steps >= 0,
              "softsign.muon_step_: expected ns_steps, soft_steps >= 0");
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    TORCH_CHECK(p.layout() == at::kStrided && grads[i].layout() == at::kStrided,
                "softsign.muon_step_: sparse tensors are not supported (index ", i, ")");
    TORCH_CHECK(at::isFloatingType(p.scalar_type()),
                "softsign.muon_step_: expected real floating params, got ", p.scalar_type());
    TORCH_CHECK(p.dim() >= 2, "softsign.muon_step_: expected matrix parameters (dim >= 2), got ",
                p.sizes(), " at index ", i);
    TORCH_CHECK(p.device() == params[0].device(),
                "softsign.muon_step_: expected all tensors on one device, got ", p.device(),
                " and ", params[0].device());
    for (const at::Tensor* t : {&grads[i], &bufs[i]}) {
      TORCH_CHECK(t->sizes() == p.sizes() && t->device() == p.device() &&
                      t->scalar_type() == p.scalar_type(),
                  "softsign.muon_step_: expected grads and buffers of the param's shape, device "
                  "and dtype at index ",
                  i, ", got ", t->sizes(), " ", t->device(), " ", t->scalar_type(), " for ",
                  p.sizes(), " ", p.device(), " ", p.scalar_type());
    }
  }
  if (temperature.has_value()) {
    TORCH_CHECK(temperature->numel() == 1 && at::isFloatingType(temperature->scalar_type()),
                "softsign.muon_step_: expected a 1-element floating temperature");
    TORCH_CHECK(params.empty() || temperature->device() == params[0].device(),
                "softsign.muon_step_: expected the temperature on ", params[0].device(), ", got ",
                temperature->device());
  }
}

std::vector<at::Tensor> pick(at::TensorList list, const std::vector<size_t>& members) {
  std::vector<at::Tensor> out;
  out.reserve(members.size());
  for (size_t i : members) out.push_back(list[i]);
  return out;
}

// Views of the batch's matrices with the shapes of `like`.
std::vector<at::Tensor> slots(const at::Tensor& batch, const std::vector<at::Tensor>& like) {
  std::vector<at::Tensor> out;
  out.reserve(like.size());
  for (size_t j = 0; j < like.size(); ++j) out.push_back(batch.select(0, j).view(like[j].sizes()));
  return out;
}

void muon_step_impl(at::TensorList params, at::TensorList grads, at::TensorList bufs, double lr,
                    double momentum, bool nesterov, double weight_decay, int64_t ns_steps,
                    c10::string_view adjust_lr, const std::optional<at::Tensor>& temperature,
                    c10::string_view soft_map, int64_t soft_steps,
                    const std::optional<at::Tensor>& found_inf) {
  check_inputs(params, grads, bufs, lr, momentum, ns_steps, soft_steps, temperature);
  const auto method = detail::parse_soft_map(soft_map);
  update_scale(adjust_lr, 1, 1);  // rejects an unknown adjust_lr before anything changes
  std::vector<MatrixBucket> buckets;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t rows = params[i].size(0), cols = params[i].numel() / std::max<int64_t>(rows, 1);
    auto it = std::find_if(buckets.begin(), buckets.end(), [&](const MatrixBucket& b) {
      return b.rows == rows && b.cols == cols && b.dtype == params[i].scalar_type();
    });
    if (it == buckets.end()) {
      buckets.push_back(MatrixBucket{rows, cols, params[i].scalar_type(), {}});
      it = std::prev(buckets.end());
    }
    it->members.push_back(i);
  }
  if (params.empty()) return;

  // Decided on the device. A temperature that is not finite (a failed fit) zeroes the
  // update. A nonzero found_inf makes the call a no-op: no update, no weight decay, and
  // the old momentum kept (a failed fit's gradients hold inf or NaN, which must not reach
  // the buffers). Only that costs copies (`guard`): the optimizers pass found_inf only
  // while a fit's status is unread, once per run.
  at::Tensor ok;
  if (temperature.has_value()) ok = at::isfinite(temperature->reshape({}));
  const bool guard = found_inf.has_value();
  if (guard) {
    const at::Tensor clean = found_inf->reshape({}) == 0;
    ok = ok.defined() ? at::logical_and(ok, clean) : clean;
  }
  // buf <- lerp(buf, g, 1 - momentum): an EMA that starts at zero.
  if (!guard) at::_foreach_lerp_(bufs, grads, 1.0 - momentum);

  for (const MatrixBucket& b : buckets) {
    if (b.rows * b.cols == 0) continue;
    const std::vector<at::Tensor> ps = pick(params, b.members);
    const std::vector<at::Tensor> gs = pick(grads, b.members);
    const std::vector<at::Tensor> bs = pick(bufs, b.members);
    const std::vector<at::Tensor> moved = guard ? at::_foreach_lerp(bs, gs, 1.0 - momentum) : bs;
    const auto work = detail::work_dtype(
        b.dtype, temperature.has_value() && method == detail::SoftMap::kAccurate);
    at::Tensor X =
        at::empty({static_cast<int64_t>(ps.size()), b.rows, b.cols}, ps[0].options().dtype(work));
    // d <- lerp(g, buf, momentum) with Nesterov, else buf; written straight into the batch.
    at::_foreach_copy_(slots(X, ps), nesterov ? at::_foreach_lerp(gs, moved, momentum) : moved);
    at::Tensor O = temperature.has_value()
                       ? detail::soft_map_owned(X, *temperature, method, soft_steps)
                       : detail::newton_schulz5_owned(X, ns_steps);
    if (ok.defined()) O = at::where(ok, O, 0);
    if (guard) keep_where(ok, bs, moved);
    O = O.to(b.dtype, /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::Contiguous);
    if (weight_decay != 0) {
      // p + (-lr wd) p, in the params' opmath: _foreach_mul_ with a scalar factor rounds
      // the factor to the params' dtype first on the CPU (bf16 turns 0.998 into 0.996 and
      // 0.9985 into 1), and a float factor tensor is rounded so on CUDA.
      if (!guard) {
        at::_foreach_add_(ps, ps, -lr * weight_decay);
      } else {
        keep_where(ok, ps, at::_foreach_add(ps, ps, -lr * weight_decay));
      }
    }
    at::_foreach_add_(ps, slots(O, ps), -lr * update_scale(adjust_lr, b.rows, b.cols));
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CompositeExplicitAutograd, m) {
  m.impl("muon_step_", &muon_step_impl);
}

}  // namespace softsign::ops
