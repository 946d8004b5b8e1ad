// Muon's Newton-Schulz orthogonalization and SoftMuon's soft spectral map Phi_tau (spec
// sections 1 and 5): the iterations of spectral.h and the functional ops over them.
#include <ATen/ATen.h>
#include <torch/library.h>

#include "spectral.h"

namespace softsign::ops {
namespace detail {

SoftMap parse_soft_map(c10::string_view method) {
  if (method == "newton_schulz") return SoftMap::kNewtonSchulz;
  if (method == "accurate") return SoftMap::kAccurate;
  TORCH_CHECK(false, "softsign: expected soft_map 'newton_schulz' or 'accurate', got '",
              std::string(method), "'");
}

at::ScalarType work_dtype(at::ScalarType input, bool accurate) {
  if (input == at::kDouble) return at::kDouble;
  return accurate ? at::kFloat : at::kBFloat16;
}

at::Tensor newton_schulz5_owned(at::Tensor X, int64_t steps) {
  // Muon's coefficients (Keller Jordan): the slope at 0 is pushed up at the price of
  // converging to [0.7, 1.2] rather than to 1.
  constexpr double a = 3.4445, b = -4.7750, c = 2.0315;
  const bool tall = X.size(1) > X.size(2);
  at::Tensor W = tall ? X.mT() : X;
  const auto acc = W.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  W.div_(at::linalg_vector_norm(W, 2, at::IntArrayRef{1, 2}, /*keepdim=*/true, acc).add_(1e-7));
  for (int64_t s = 0; s < steps; ++s) {
    const at::Tensor A = at::bmm(W, W.mT());
    const at::Tensor B = at::baddbmm(A, A, A, /*beta=*/b, /*alpha=*/c);
    W = at::baddbmm(W, B, W, /*beta=*/a, /*alpha=*/1.0);
  }
  return tall ? W.mT() : W;
}

at::Tensor soft_newton_schulz_owned(at::Tensor X, const at::Tensor& tau, int64_t steps) {
  // Op for op the public SoftMuon (each product rounded to X's dtype), so that
  // soft_map="newton_schulz" reproduces it; see docs/algorithms.md section 5 for why it is far
  // from Phi_tau when tau * sigma spans a wide range.
  const bool tall = X.size(1) > X.size(2);
  const at::Tensor W = tall ? X.mT() : X;
  const at::Tensor I = at::eye(W.size(1), W.options());
  at::Tensor A = at::bmm(W, W.mT()) + I / tau.reshape({}).square();
  const at::Tensor norm = at::linalg_vector_norm(A, 2, at::IntArrayRef{1, 2}, /*keepdim=*/true);
  A = A / norm;
  const at::Tensor I3 = I * 3;
  at::Tensor Y = A;
  at::Tensor Z;  // undefined stands for the identity: I Y = Y and T I = T exactly
  for (int64_t s = 0; s < steps; ++s) {
    const at::Tensor T = (I3 - (Z.defined() ? at::bmm(Z, Y) : Y)) * 0.5;
    Y = at::bmm(Y, T);
    Z = Z.defined() ? at::bmm(T, Z) : T;
  }
  const at::Tensor out = (Z.defined() ? at::bmm(Z, W) : W) / norm.sqrt();
  return tall ? out.mT() : out;
}

at::Tensor soft_map_owned(at::Tensor X, const at::Tensor& tau, SoftMap method, int64_t steps) {
  return method == SoftMap::kAccurate ? accurate_soft_map_owned(std::move(X), tau)
                                      : soft_newton_schulz_owned(std::move(X), tau, steps);
}

}  // namespace detail

namespace {

void check_matrices(const at::Tensor& M, const char* op) {
  TORCH_CHECK(M.layout() == at::kStrided, "softsign.", op, ": expected a dense tensor");
  TORCH_CHECK(at::isFloatingType(M.scalar_type()), "softsign.", op,
              ": expected a real floating-point tensor, got ", M.scalar_type());
  TORCH_CHECK(M.dim() >= 2, "softsign.", op, ": expected matrices (..., m, n), got shape ",
              M.sizes());
}

// A fresh contiguous (B, m, n) copy of M in dtype `dtype`.
at::Tensor batch_copy(const at::Tensor& M, at::ScalarType dtype) {
  at::Tensor X = at::empty(
      {M.numel() == 0 ? 0 : M.numel() / (M.size(-2) * M.size(-1)), M.size(-2), M.size(-1)},
      M.options().dtype(dtype));
  if (M.numel() != 0) X.view(M.sizes()).copy_(M);
  return X;
}

at::Tensor newton_schulz5_impl(const at::Tensor& M, int64_t steps) {
  check_matrices(M, "newton_schulz5");
  TORCH_CHECK(steps >= 0, "softsign.newton_schulz5: expected steps >= 0, got ", steps);
  const at::Tensor X = batch_copy(M, detail::work_dtype(M.scalar_type(), false));
  if (M.numel() == 0) return X.view(M.sizes());
  return detail::newton_schulz5_owned(X, steps).contiguous().view(M.sizes());
}

at::Tensor soft_spectral_map_impl(const at::Tensor& M, const at::Tensor& tau,
                                  c10::string_view method, int64_t steps) {
  check_matrices(M, "soft_spectral_map");
  const auto kind = detail::parse_soft_map(method);
  TORCH_CHECK(tau.numel() == 1 && at::isFloatingType(tau.scalar_type()),
              "softsign.soft_spectral_map: expected tau as a 1-element floating tensor, got ",
              tau.sizes(), " ", tau.scalar_type());
  TORCH_CHECK(tau.device() == M.device(), "softsign.soft_spectral_map: expected tau on ",
              M.device(), ", got ", tau.device());
  TORCH_CHECK(steps >= 0, "softsign.soft_spectral_map: expected steps >= 0, got ", steps);
  const at::Tensor X =
      batch_copy(M, detail::work_dtype(M.scalar_type(), kind == detail::SoftMap::kAccurate));
  if (M.numel() == 0) return X.view(M.sizes());
  return detail::soft_map_owned(X, tau, kind, steps).contiguous().view(M.sizes());
}

}  // namespace

TORCH_LIBRARY_IMPL(softsign, CompositeExplicitAutograd, m) {
  m.impl("newton_schulz5", &newton_schulz5_impl);
  m.impl("soft_spectral_map", &soft_spectral_map_impl);
}

}  // namespace softsign::ops
