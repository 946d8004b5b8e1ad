// soft_map="accurate": Phi_tau to the spec's accuracy bound (section 5).
// INTERIM: an eigendecomposition of the Gram matrix; replaced by the polynomial iteration.
#include <ATen/ATen.h>

#include "spectral.h"

namespace softsign::ops::detail {

at::Tensor accurate_soft_map_owned(at::Tensor X, const at::Tensor& tau) {
  const bool tall = X.size(1) > X.size(2);
  const at::Tensor W = tall ? X.mT() : X;
  const at::Tensor G = at::bmm(W.to(at::kDouble), W.mT().to(at::kDouble));
  auto [lambda, V] = at::linalg_eigh(G);
  const at::Tensor inv_tau2 = tau.to(at::kDouble).reshape({}).reciprocal().square();
  const at::Tensor d = (lambda.clamp_min(0) + inv_tau2).rsqrt();
  const at::Tensor P = at::matmul(V * d.unsqueeze(1), V.mT());
  const at::Tensor out = at::bmm(P, W.to(at::kDouble)).to(X.scalar_type());
  return tall ? out.mT() : out;
}

}  // namespace softsign::ops::detail
