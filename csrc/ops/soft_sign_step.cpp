// Input contract of softsign::soft_sign_step_, shared by its CPU and CUDA kernels.
#include "soft_sign_step.h"

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
                          at::TensorList momentum_buffers, double momentum,
                          const std::optional<at::Tensor>& lr_tensor,
                          const std::optional<at::Tensor>& temperature,
                          const std::optional<at::Tensor>& grad_scale,
                          const std::optional<at::Tensor>& found_inf) {
  TORCH_CHECK(params.size() == grads.size(), "softsign: expected as many grads as params, got ",
              grads.size(), " and ", params.size());
  if (momentum != 0.0) {
    TORCH_CHECK(momentum_buffers.size() == params.size(),
                "softsign: expected one momentum buffer per param, got ", momentum_buffers.size(),
                " for ", params.size(), " params");
  } else {
    TORCH_CHECK(momentum_buffers.empty(),
                "softsign: expected no momentum buffers with momentum = 0, got ",
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
    TORCH_CHECK(p.is_non_overlapping_and_dense() && g.strides() == p.strides(),
                "softsign: expected dense params with grads of the same strides (index ", i, ")");
    if (!momentum_buffers.empty()) {
      const at::Tensor& b = momentum_buffers[i];
      TORCH_CHECK(b.device() == device && b.scalar_type() == p.scalar_type() &&
                      b.sizes() == p.sizes() && b.strides() == p.strides(),
                  "softsign: expected momentum buffer like its param at index ", i);
    }
  }
  check_scalar_tensor(lr_tensor, "lr_tensor", device);
  check_scalar_tensor(temperature, "temperature", device);
  check_scalar_tensor(grad_scale, "grad_scale", device);
  check_scalar_tensor(found_inf, "found_inf", device);
}

}  // namespace softsign::ops
