// soft_map="accurate": Phi_tau(M) within docs/algorithms.md's 1e-2 (relative Frobenius) for tau in
// [1, 1e9] and spectra spanning 3-4 decades, at about 3x the cost of Muon's NS5.
//
// Note [accurate soft map]: Phi_tau(M) is the first block of the polar factor of the
// augmented matrix [M, tau^-1 I] (M wide; docs/algorithms.md section 5). We run a quintic polar
// iteration X <- a X + (b A + c A^2) X, A = X X^T, on the augmented matrix without forming it:
// every iterate is P(G) [M, tau^-1 I] for a polynomial P of G = M M^T + tau^-2 I, so we keep the
// blocks Y = P M (m x n) and Z = tau^-1 P (m x m), with A = Y Y^T + Z Z^T. The smallest
// augmented singular value is at least tau^-1 / ||.||, so no singular value of M is lost
// to rounding at small tau, and at tau = 1e9 the iteration is a polar iteration on M itself
// (no jump against NS5 when the transition starts).
//
// Coefficients (the rule is stated and checked in tests/python/test_soft_map_design.py):
// per step the best odd quintic on [l_k, 1.02] under the constraint that it never falls
// below half its peak after the peak (unlike unconstrained minimax polynomials, whose dip
// amplifies rounding ~1000x in low precision); designed for l_0 = 1e-4 after scaling by
// ||X X^T||_F^(1/2), 9 steps.
// Precision (chosen with a CPU emulation of the tensor cores while designing the map;
// test_soft_map_design.py holds it to the 1e-2 bound on CPU and CUDA): the Gram-side
// products (Y Y^T, Z Z^T, A^2) run bf16 in / fp32 out; the X-side products B Y, B Z run
// TF32 for steps 0-6 and bf16 for the last two; the linear terms a Y, a Z and all state stay
// fp32 (they carry the small singular values). Worst error then 5.3e-3 over 3-decade,
// 4-decade, rank-deficient and Gaussian matrices; all-bf16 gave ~1.7e-2.
// float64 input runs everything in float64.
#include <ATen/ATen.h>
#include <ATen/Context.h>

#include <array>

#include "spectral.h"

namespace softsign::ops::detail {
namespace {

struct Coefficients {
  double a, b, c;
};

constexpr std::array<Coefficients, 9> kSteps = {{
    {3.6190244185513682, -7.96454406447367, 5.2175827656393574},
    {3.619024605352382, -7.9645446511314697, 5.2175831563743751},
    {3.6190243378537272, -7.964543373798997, 5.2175821763365704},
    {3.6190246102567674, -7.964544595475231, 5.217583098123983},
    {3.6190243717857089, -7.9645437842263807, 5.2175825376287728},
    {3.6190242911593318, -7.9645433025092851, 5.2175821487939862},
    {3.3423282145312925, -6.3731062542734591, 3.9435669462662366},
    {2.2522191929308573, -2.11936885062936, 0.86209958518478813},
    {1.8664055871300622, -1.2326763638625629, 0.36627256866320496},
}};

enum class Precision { kBF16, kTF32, kFull };

// Lets cuBLAS use TF32 for float32 GEMMs while alive. The setting is process-global:
// another thread's float32 GEMM issued meanwhile may run in TF32 as well.
class TF32Matmuls {
 public:
  TF32Matmuls()
      : saved_(
            at::globalContext().float32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL)) {
    at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL,
                                            at::Float32Precision::TF32);
  }
  ~TF32Matmuls() {
    at::globalContext().setFloat32Precision(at::Float32Backend::CUDA, at::Float32Op::MATMUL,
                                            saved_);
  }
  TF32Matmuls(const TF32Matmuls&) = delete;
  TF32Matmuls& operator=(const TF32Matmuls&) = delete;

 private:
  at::Float32Precision saved_;
};

// a @ b (batched) with a float32 (float64 for kFull on float64) result.
at::Tensor gemm(const at::Tensor& a, const at::Tensor& b, Precision p) {
  if (p == Precision::kFull) return at::bmm(a, b);
  if (a.is_cuda()) {
    if (p == Precision::kBF16) {
      return at::bmm(a.to(at::kBFloat16), b.to(at::kBFloat16), at::kFloat);
    }
    TF32Matmuls tf32;
    return at::bmm(a, b);
  }
  // Elsewhere: what the tensor cores compute, bf16 operands with float32 accumulation
  // (exact in a float32 GEMM); without TF32 hardware, TF32 steps run in full float32.
  if (p == Precision::kBF16) {
    return at::bmm(a.to(at::kBFloat16).to(at::kFloat), b.to(at::kBFloat16).to(at::kFloat));
  }
  return at::bmm(a, b);
}

}  // namespace

at::Tensor accurate_soft_map_owned(at::Tensor X, const at::Tensor& tau) {
  const bool tall = X.size(1) > X.size(2);
  const at::Tensor W = tall ? X.mT() : X;
  const bool full = W.scalar_type() == at::kDouble;
  const auto opmath = full ? at::kDouble : at::kFloat;
  const Precision gram = full ? Precision::kFull : Precision::kBF16;
  const int64_t m = W.size(1);
  const auto f64 = at::kDouble;

  // Scale to unit Frobenius norm (a zero matrix stays zero), then by ||X0 X0^T||_F^(1/2)
  // of the augmented X0 = [Xn, w I], w = 1 / (tau f): all its singular values are <= 1.
  at::Tensor f = at::linalg_vector_norm(W.to(opmath), 2, at::IntArrayRef{1, 2}, true);
  f = at::where(f > 0, f, at::ones_like(f));
  const at::Tensor Xn = W.to(opmath) / f;
  const at::Tensor w = (tau.reshape({}).to(f64) * f.to(f64)).reciprocal();
  const at::Tensor G = gemm(Xn, Xn.mT(), gram);
  const at::Tensor g2 = G.to(f64).square().sum({1, 2}, true);
  const at::Tensor x2 = Xn.to(f64).square().sum({1, 2}, true);
  const at::Tensor nu2 = (g2 + 2.0 * w.square() * x2 + static_cast<double>(m) * w.pow(4)).sqrt();
  const at::Tensor rnu = nu2.rsqrt();
  at::Tensor Y = Xn * rnu.to(opmath);
  const at::Tensor z = (w * rnu).to(opmath);
  const at::Tensor eye = at::eye(m, Xn.options());
  at::Tensor A = G * nu2.reciprocal().to(opmath) + z.square() * eye;
  at::Tensor Z;  // tau^-1 P, undefined until step 0 forms it without a GEMM

  const int64_t steps = static_cast<int64_t>(kSteps.size());
  for (int64_t k = 0; k < steps; ++k) {
    const auto [a, b, c] = kSteps[k];
    const Precision side = full            ? Precision::kFull
                           : k < steps - 2 ? Precision::kTF32
                                           : Precision::kBF16;
    if (k > 0) A = gemm(Y, Y.mT(), gram).add_(gemm(Z, Z.mT(), gram));
    const at::Tensor B = gemm(A, A, gram).mul_(c).add_(A, b);
    at::Tensor next = gemm(B, Y, side).add_(Y, a);
    if (k == 0) {
      Z = (B + eye * a) * z;  // Z_0 = z I, so Z_1 = z (a I + B)
    } else if (k < steps - 1) {
      Z = gemm(B, Z, side).add_(Z, a);
    }
    Y = std::move(next);
  }
  Y = Y.to(X.scalar_type() == at::kDouble ? at::kDouble : at::kFloat);
  return tall ? Y.mT() : Y;
}

}  // namespace softsign::ops::detail
