// The Muon/SoftMuon step (docs/algorithms.md section 5) in three stages, each an op:
//   muon_momentum_      buf <- lerp(buf, g, 1 - momentum); d <- lerp(g, buf, momentum) or buf
//   muon_orthogonalize  O <- NS5(d), or Phi_tau(d) with a temperature (zero if it is not finite)
//   muon_apply_         p <- p (1 - lr wd) - lr scale O
// muon_step_ runs the three per bucket of same-shape matrices, one call of each stage per
// bucket, the bucket's directions written straight into the batch that the matrix map
// iterates on. The stage ops exist for callers that move matrices between the stages: the
// sharded path (softsign/optim/soft_muon.py) runs the momentum and the apply on local
// shards and the map at each matrix's owner, with the same functions, so a shard steps
// bit for bit as the whole matrix does here. Nothing here reads a device value on the host.
#include <ATen/ATen.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <tuple>
#include <utility>
#include <vector>

#include "spectral.h"

namespace softsign::ops {
namespace {

// ---- shared by the stages -------------------------------------------------------------

// targets[j] <- where(ok, updated[j], targets[j]): the new values only if ok (on the device).
void keep_where(const at::Tensor& ok, at::TensorList targets,
                const std::vector<at::Tensor>& updated) {
  for (size_t j = 0; j < targets.size(); ++j) {
    at::Tensor out = targets[j];
    at::where_out(out, ok, updated[j], targets[j]);
  }
}

// The guard of a stage: undefined (the stage always lands) or a 0-dim bool device tensor
// (the stage changes nothing unless it is true).
at::Tensor guard_of(const std::optional<at::Tensor>& found_inf) {
  return found_inf.has_value() ? found_inf->reshape({}) == 0 : at::Tensor();
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
  TORCH_CHECK(false, "softsign.muon: expected adjust_lr 'original' or 'match_rms_adamw', ", "got '",
              std::string(adjust_lr), "'");
}

// Muon's view of a tensor: size(0) rows by the rest.
std::pair<int64_t, int64_t> matrix_dims(const at::Tensor& t) {
  const int64_t rows = t.size(0);
  return {rows, t.numel() / std::max<int64_t>(rows, 1)};
}

// Indices of `tensors` by (rows, cols, dtype), in order of first appearance; empty
// matrices left out (nothing to map or step).
struct MatrixBucket {
  int64_t rows, cols;
  at::ScalarType dtype;
  std::vector<size_t> members;
};

std::vector<MatrixBucket> buckets_of(at::TensorList tensors) {
  std::vector<MatrixBucket> buckets;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto [rows, cols] = matrix_dims(tensors[i]);
    if (rows * cols == 0) continue;
    const at::ScalarType dtype = tensors[i].scalar_type();
    auto it = std::find_if(buckets.begin(), buckets.end(), [&](const MatrixBucket& b) {
      return b.rows == rows && b.cols == cols && b.dtype == dtype;
    });
    if (it == buckets.end()) {
      buckets.push_back(MatrixBucket{rows, cols, dtype, {}});
      it = std::prev(buckets.end());
    }
    it->members.push_back(i);
  }
  return buckets;
}

std::vector<at::Tensor> pick(at::TensorList list, const std::vector<size_t>& members) {
  std::vector<at::Tensor> out;
  out.reserve(members.size());
  for (size_t i : members) out.push_back(list[i]);
  return out;
}

// Views of the batch's matrices with the shapes of `like`.
std::vector<at::Tensor> slots(const at::Tensor& batch, at::TensorList like) {
  std::vector<at::Tensor> out;
  out.reserve(like.size());
  for (size_t j = 0; j < like.size(); ++j) out.push_back(batch.select(0, j).view(like[j].sizes()));
  return out;
}

// ---- the stages -----------------------------------------------------------------------

// buf <- lerp(buf, g, 1 - momentum) (an EMA that starts at zero), then the directions
// d <- lerp(g, buf, momentum) with Nesterov, else buf, written into `directions` (of any
// floating dtype: muon_step_ passes the slots of the batch the map iterates on). Guarded,
// the buffers keep their old values unless `ok`: a failed fit's gradients hold inf or NaN,
// which must not reach them.
void momentum_stage(at::TensorList grads, at::TensorList bufs, at::TensorList directions,
                    double momentum, bool nesterov, const at::Tensor& ok) {
  std::vector<at::Tensor> moved;
  if (ok.defined()) {
    moved = at::_foreach_lerp(bufs, grads, 1.0 - momentum);
  } else {
    at::_foreach_lerp_(bufs, grads, 1.0 - momentum);
    moved = bufs.vec();
  }
  at::_foreach_copy_(directions, nesterov ? at::_foreach_lerp(grads, moved, momentum) : moved);
  if (ok.defined()) keep_where(ok, bufs, moved);
}

// A fresh (n, rows, cols) batch of `work` dtype, the matrices' directions written into it
// by `fill(slots)`.
template <typename Fill>
at::Tensor batch_of(at::TensorList like, int64_t rows, int64_t cols, at::ScalarType work,
                    const Fill& fill) {
  at::Tensor X =
      at::empty({static_cast<int64_t>(like.size()), rows, cols}, like[0].options().dtype(work));
  fill(slots(X, like));
  return X;
}

// The map of one owned batch X (spectral.h): NS5 without a temperature, Phi_tau with one,
// zero where the temperature is not finite (a failed fit); in the work dtype.
at::Tensor orthogonalize_stage(at::Tensor X, const std::optional<at::Tensor>& temperature,
                               detail::SoftMap method, int64_t ns_steps, int64_t soft_steps) {
  if (!temperature.has_value()) return detail::newton_schulz5_owned(std::move(X), ns_steps);
  const at::Tensor O = detail::soft_map_owned(std::move(X), *temperature, method, soft_steps);
  return at::where(at::isfinite(temperature->reshape({})), O, 0);
}

// p <- p + (-lr wd) p, then p <- p + (-lr scale) u, with u in the params' dtype. The decay
// is a product in the params' opmath: _foreach_mul_ with a scalar factor rounds the factor
// to the params' dtype first on the CPU (bf16 turns 0.998 into 0.996 and 0.9985 into 1),
// and a float factor tensor is rounded so on CUDA. Guarded, the params change only if `ok`.
void apply_stage(at::TensorList params, at::TensorList updates, double lr, double weight_decay,
                 double scale, const at::Tensor& ok) {
  if (!ok.defined()) {
    if (weight_decay != 0) at::_foreach_add_(params, params, -lr * weight_decay);
    at::_foreach_add_(params, updates, -lr * scale);
    return;
  }
  std::vector<at::Tensor> stepped;
  if (weight_decay != 0) {
    stepped = at::_foreach_add(params, params, -lr * weight_decay);
    at::_foreach_add_(stepped, updates, -lr * scale);
  } else {
    stepped = at::_foreach_add(params, updates, -lr * scale);
  }
  keep_where(ok, params, stepped);
}

// ---- input checks ---------------------------------------------------------------------

void check_like(const char* op, at::TensorList ref, at::TensorList other, const char* what,
                bool same_dtype) {
  TORCH_CHECK(other.size() == ref.size(), "softsign.", op, ": expected as many ", what,
              " as tensors, got ", other.size(), " for ", ref.size());
  for (size_t i = 0; i < ref.size(); ++i) {
    const at::Tensor& r = ref[i];
    const at::Tensor& t = other[i];
    TORCH_CHECK(r.layout() == at::kStrided && t.layout() == at::kStrided, "softsign.", op,
                ": sparse tensors are not supported (index ", i, ")");
    TORCH_CHECK(at::isFloatingType(r.scalar_type()) && at::isFloatingType(t.scalar_type()),
                "softsign.", op, ": expected real floating tensors, got ", r.scalar_type(), " and ",
                t.scalar_type(), " at index ", i);
    TORCH_CHECK(r.device() == ref[0].device(), "softsign.", op,
                ": expected all tensors on one device, got ", r.device(), " and ", ref[0].device());
    TORCH_CHECK(t.sizes() == r.sizes() && t.device() == r.device() &&
                    (!same_dtype || t.scalar_type() == r.scalar_type()),
                "softsign.", op, ": expected ", what, " of the tensor's shape, device",
                same_dtype ? " and dtype" : "", " at index ", i, ", got ", t.sizes(), " ",
                t.device(), " ", t.scalar_type(), " for ", r.sizes(), " ", r.device(), " ",
                r.scalar_type());
  }
}

void check_matrices(const char* op, at::TensorList tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    TORCH_CHECK(tensors[i].dim() >= 2, "softsign.", op,
                ": expected matrix parameters (dim >= 2), got ", tensors[i].sizes(), " at index ",
                i);
  }
}

void check_momentum(const char* op, double momentum) {
  TORCH_CHECK(momentum >= 0 && momentum < 1, "softsign.", op, ": expected 0 <= momentum < 1, got ",
              momentum);
}

void check_lr(const char* op, double lr) {
  TORCH_CHECK(std::isfinite(lr) && lr >= 0, "softsign.", op, ": invalid lr ", lr);
}

void check_steps(const char* op, int64_t ns_steps, int64_t soft_steps) {
  TORCH_CHECK(ns_steps >= 0 && soft_steps >= 0, "softsign.", op,
              ": expected ns_steps, soft_steps >= 0");
}

// A one-element device scalar (temperature, found_inf) on the tensors' device.
void check_scalar(const char* op, const char* name, const std::optional<at::Tensor>& s,
                  at::TensorList tensors, bool floating) {
  if (!s.has_value()) return;
  TORCH_CHECK(s->numel() == 1 && (!floating || at::isFloatingType(s->scalar_type())), "softsign.",
              op, ": expected a 1-element", floating ? " floating " : " ", name);
  TORCH_CHECK(tensors.empty() || s->device() == tensors[0].device(), "softsign.", op,
              ": expected the ", name, " on ", tensors[0].device(), ", got ", s->device());
}

// ---- the ops --------------------------------------------------------------------------

void muon_momentum_impl(at::TensorList grads, at::TensorList bufs, at::TensorList directions,
                        double momentum, bool nesterov,
                        const std::optional<at::Tensor>& found_inf) {
  constexpr const char* op = "muon_momentum_";
  check_like(op, grads, bufs, "momentum buffers", /*same_dtype=*/true);
  check_like(op, grads, directions, "directions", /*same_dtype=*/false);
  check_momentum(op, momentum);
  check_scalar(op, "found_inf", found_inf, grads, /*floating=*/false);
  momentum_stage(grads, bufs, directions, momentum, nesterov, guard_of(found_inf));
}

std::vector<at::Tensor> muon_orthogonalize_impl(at::TensorList directions, int64_t ns_steps,
                                                const std::optional<at::Tensor>& temperature,
                                                c10::string_view soft_map, int64_t soft_steps) {
  constexpr const char* op = "muon_orthogonalize";
  check_like(op, directions, directions, "directions", /*same_dtype=*/true);
  check_matrices(op, directions);
  check_steps(op, ns_steps, soft_steps);
  check_scalar(op, "temperature", temperature, directions, /*floating=*/true);
  const auto method = detail::parse_soft_map(soft_map);
  const bool accurate = temperature.has_value() && method == detail::SoftMap::kAccurate;
  std::vector<at::Tensor> out(directions.size());
  for (const MatrixBucket& b : buckets_of(directions)) {
    const std::vector<at::Tensor> ds = pick(directions, b.members);
    const at::Tensor X = batch_of(ds, b.rows, b.cols, detail::work_dtype(b.dtype, accurate),
                                  [&](at::TensorList to) { at::_foreach_copy_(to, ds); });
    const at::Tensor O = orthogonalize_stage(X, temperature, method, ns_steps, soft_steps);
    for (size_t j = 0; j < ds.size(); ++j) {
      out[b.members[j]] =
          O.select(0, j)
              .to(b.dtype, /*non_blocking=*/false, /*copy=*/true, at::MemoryFormat::Contiguous)
              .view(ds[j].sizes());
    }
  }
  for (size_t i = 0; i < out.size(); ++i) {
    if (!out[i].defined()) out[i] = at::empty_like(directions[i], at::MemoryFormat::Contiguous);
  }
  return out;
}

void muon_apply_impl(at::TensorList params, at::TensorList updates, double lr, double weight_decay,
                     c10::string_view adjust_lr, at::OptionalIntArrayRef whole_dims,
                     const std::optional<at::Tensor>& found_inf) {
  constexpr const char* op = "muon_apply_";
  check_like(op, params, updates, "updates", /*same_dtype=*/false);
  check_lr(op, lr);
  check_scalar(op, "found_inf", found_inf, params, /*floating=*/false);
  update_scale(adjust_lr, 1, 1);  // rejects an unknown adjust_lr before anything changes
  TORCH_CHECK(!whole_dims.has_value() || whole_dims->size() == 2 * params.size(),
              "softsign.muon_apply_: expected matrix_dims to hold rows and cols of each of the ",
              params.size(), " params, got ", whole_dims.has_value() ? whole_dims->size() : 0,
              " numbers");
  // Params of one update scale step in one call.
  std::vector<std::pair<double, std::vector<size_t>>> groups;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto [rows, cols] = whole_dims.has_value()
                                  ? std::pair{(*whole_dims)[2 * i], (*whole_dims)[2 * i + 1]}
                                  : matrix_dims(params[i]);
    if (rows * cols == 0) continue;
    const double scale = update_scale(adjust_lr, rows, cols);
    auto it =
        std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == scale; });
    if (it == groups.end()) {
      groups.emplace_back(scale, std::vector<size_t>{});
      it = std::prev(groups.end());
    }
    it->second.push_back(i);
  }
  const at::Tensor ok = guard_of(found_inf);
  for (const auto& [scale, members] : groups) {
    const std::vector<at::Tensor> ps = pick(params, members);
    std::vector<at::Tensor> us = pick(updates, members);
    for (size_t j = 0; j < us.size(); ++j) us[j] = us[j].to(ps[j].scalar_type());
    apply_stage(ps, us, lr, weight_decay, scale, ok);
  }
}

void muon_step_impl(at::TensorList params, at::TensorList grads, at::TensorList bufs, double lr,
                    double momentum, bool nesterov, double weight_decay, int64_t ns_steps,
                    c10::string_view adjust_lr, const std::optional<at::Tensor>& temperature,
                    c10::string_view soft_map, int64_t soft_steps,
                    const std::optional<at::Tensor>& found_inf) {
  constexpr const char* op = "muon_step_";
  check_like(op, params, grads, "grads", /*same_dtype=*/true);
  check_like(op, params, bufs, "momentum buffers", /*same_dtype=*/true);
  check_matrices(op, params);
  check_lr(op, lr);
  check_momentum(op, momentum);
  check_steps(op, ns_steps, soft_steps);
  check_scalar(op, "temperature", temperature, params, /*floating=*/true);
  const auto method = detail::parse_soft_map(soft_map);
  update_scale(adjust_lr, 1, 1);  // rejects an unknown adjust_lr before anything changes
  const bool accurate = temperature.has_value() && method == detail::SoftMap::kAccurate;

  // With found_inf the momentum and apply stages are guarded (decided on the device): a
  // nonzero found_inf, or a temperature that is not finite (a failed fit), makes the call a
  // no-op, buffers included. The guard costs copies, so the optimizers pass found_inf only
  // while a fit's status is unread, once per run.
  at::Tensor ok = guard_of(found_inf);
  if (ok.defined() && temperature.has_value()) {
    ok = at::logical_and(at::isfinite(temperature->reshape({})), ok);
  }
  for (const MatrixBucket& b : buckets_of(params)) {
    const std::vector<at::Tensor> ps = pick(params, b.members);
    // The directions go straight into the batch.
    const at::Tensor X =
        batch_of(ps, b.rows, b.cols, detail::work_dtype(b.dtype, accurate), [&](at::TensorList d) {
          momentum_stage(pick(grads, b.members), pick(bufs, b.members), d, momentum, nesterov, ok);
        });
    const at::Tensor O =
        orthogonalize_stage(X, temperature, method, ns_steps, soft_steps)
            .to(b.dtype, /*non_blocking=*/false, /*copy=*/false, at::MemoryFormat::Contiguous);
    apply_stage(ps, slots(O, ps), lr, weight_decay, update_scale(adjust_lr, b.rows, b.cols), ok);
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CompositeExplicitAutograd, m) {
  m.impl("muon_momentum_", &muon_momentum_impl);
  m.impl("muon_orthogonalize", &muon_orthogonalize_impl);
  m.impl("muon_apply_", &muon_apply_impl);
  m.impl("muon_step_", &muon_step_impl);
}

}  // namespace softsign::ops
