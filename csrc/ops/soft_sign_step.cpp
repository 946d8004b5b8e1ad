// Input contract of softsign::soft_sign_step_, shared by its CPU and CUDA kernels.
#include "soft_sign_step.h"

#include <ATen/MemoryOverlap.h>

namespace softsign::ops {
namespace {

void check_scalar_tensor(const std::optional<at::Tensor>& t, const char* name,
                         const at::Device& device) {
  if (!t.has_value()) return;
  TORCH_CHECK(t->numel() == 1, "softsign: expected ", name, " to have one element, got ",
              t->numel());
  TORCH_CHECK(t->device() == device, "softsign: expected ", name, " on ", device, ", got ",
              t->device());
  TORCH_CHECK(t->is_floating_point(), "softsign: expected ", name, " to be floating point, got ",
              t->scalar_type());
}

}  // namespace

void check_soft_sign_step(at::TensorList params, at::TensorList grads,
                          at::TensorList momentum_buffers, const StepScalars& s,
                          const std::optional<at::Tensor>& lr_tensor,
                          const std::optional<at::Tensor>& temperature,
                          const std::optional<at::Tensor>& grad_scale,
                          const std::optional<at::Tensor>& found_inf) {
  TORCH_CHECK(params.size() == grads.size(), "softsign: expected as many grads as params, got ",
              grads.size(), " and ", params.size());
  if (s.buffered()) {
    TORCH_CHECK(momentum_buffers.size() == params.size(),
                "softsign: expected one momentum buffer per param, got ", momentum_buffers.size(),
                " for ", params.size(), " params");
  } else {
    TORCH_CHECK(momentum_buffers.empty(),
                "softsign: expected no momentum buffers with the heavy ball at momentum = 0, got ",
                momentum_buffers.size());
  }
  if (params.empty()) return;
  const at::Device device = params[0].device();
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    const at::Tensor& g = grads[i];
    TORCH_CHECK(p.device() == device && g.device() == device,
                "softsign: expected every tensor of one fused call on ", device, ", got ",
                p.device(), " and ", g.device(), " at index ", i);
    TORCH_CHECK(p.layout() == at::kStrided && g.layout() == at::kStrided,
                "softsign: sparse tensors are not supported (index ", i, ")");
    TORCH_CHECK(!p.is_complex() && !g.is_complex(),
                "softsign: complex tensors are not supported (index ", i, ")");
    TORCH_CHECK(p.scalar_type() == at::kFloat || p.scalar_type() == at::kBFloat16 ||
                    p.scalar_type() == at::kHalf || p.scalar_type() == at::kDouble,
                "softsign: expected float64, float32, bfloat16 or float16 params, got ",
                p.scalar_type(), " at index ", i);
    TORCH_CHECK(g.scalar_type() == p.scalar_type(), "softsign: expected grad dtype ",
                p.scalar_type(), ", got ", g.scalar_type(), " at index ", i);
    TORCH_CHECK(p.sizes() == g.sizes(), "softsign: expected grad of shape ", p.sizes(), ", got ",
                g.sizes(), " at index ", i);
    // A strided view is stepped through a dense stand-in (Note [step layouts]), but one
    // whose elements overlap (expand) cannot take the result back.
    TORCH_CHECK(at::has_internal_overlap(p) != at::MemOverlap::Yes,
                "softsign: expected params whose elements do not overlap (index ", i, ")");
    if (!momentum_buffers.empty()) {
      const at::Tensor& b = momentum_buffers[i];
      TORCH_CHECK(at::has_internal_overlap(b) != at::MemOverlap::Yes,
                  "softsign: expected momentum buffers whose elements do not overlap (index ", i,
                  ")");
      TORCH_CHECK(b.device() == device && b.scalar_type() == p.scalar_type() &&
                      b.sizes() == p.sizes() && b.layout() == at::kStrided,
                  "softsign: expected a momentum buffer of the param's device, dtype and shape "
                  "at index ",
                  i);
    }
  }
  check_scalar_tensor(lr_tensor, "lr_tensor", device);
  check_scalar_tensor(temperature, "temperature", device);
  check_scalar_tensor(grad_scale, "grad_scale", device);
  check_scalar_tensor(found_inf, "found_inf", device);
}

StepLayout::StepLayout(at::TensorList params, at::TensorList grads, at::TensorList momentum_buffers)
    : orig_params_(params), orig_grads_(grads), orig_bufs_(momentum_buffers) {
  const bool with_bufs = !momentum_buffers.empty();
  auto fits = [&](size_t i) {
    const at::Tensor& p = params[i];
    return p.is_non_overlapping_and_dense() && grads[i].strides() == p.strides() &&
           (!with_bufs || momentum_buffers[i].strides() == p.strides());
  };
  size_t i = 0;
  while (i < params.size() && fits(i)) ++i;
  if (i == params.size()) return;
  copied_ = true;
  params_.assign(params.begin(), params.end());
  grads_.assign(grads.begin(), grads.end());
  bufs_.assign(momentum_buffers.begin(), momentum_buffers.end());
  for (; i < params.size(); ++i) {
    if (fits(i)) continue;
    at::Tensor& p = params_[i];
    // empty_like keeps a dense tensor's strides, and gives a strided view dense strides in
    // the same dimension order.
    if (!p.is_non_overlapping_and_dense()) p = at::empty_like(p).copy_(p);
    if (grads_[i].strides() != p.strides()) grads_[i] = at::empty_like(p).copy_(grads_[i]);
    if (with_bufs && bufs_[i].strides() != p.strides()) {
      bufs_[i] = at::empty_like(p).copy_(bufs_[i]);
    }
  }
}

void StepLayout::write_back() const {
  if (!copied_) return;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].is_same(orig_params_[i])) orig_params_[i].copy_(params_[i]);
    if (!bufs_.empty() && !bufs_[i].is_same(orig_bufs_[i])) orig_bufs_[i].copy_(bufs_[i]);
  }
}

}  // namespace softsign::ops
