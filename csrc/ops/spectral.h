// Batched matrix maps of SoftMuon (docs/algorithms.md sections 1 and 5), composed of ATen batched
// matmuls so that cuBLAS runs them on tensor cores. Shared by the functional ops
// (spectral_maps.cpp) and the fused Muon step (muon_step.cpp).
//
// Contract of the *_owned functions: X is a (B, m, n) batch in the working dtype that the
// function owns (it may overwrite it); the result has X's shape and dtype unless stated.
// Tall matrices (m > n) are iterated through their transposed view, so the Gram matrices
// are always min(m, n) square; no copy is made for the transposition.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace softsign::ops::detail {

enum class SoftMap { kNewtonSchulz, kAccurate };

// "newton_schulz" or "accurate"; anything else is a c10::Error naming the choices.
SoftMap parse_soft_map(c10::string_view method);

// The dtype a map iterates in for an input dtype: float64 stays float64 (reference checks
// and users who want it), "accurate" runs in float32, the Newton-Schulz family in bfloat16
// (what Muon and the public SoftMuon run).
at::ScalarType work_dtype(at::ScalarType input, bool accurate);

// Muon's quintic Newton-Schulz: X <- X / (||X||_F + 1e-7), then `steps` times
// A = X X^T, X <- a X + (b A + c A^2) X with (a, b, c) = (3.4445, -4.7750, 2.0315).
at::Tensor newton_schulz5_owned(at::Tensor X, int64_t steps);

// Phi_tau(X) = (X X^T + tau^-2 I)^(-1/2) X by the public SoftMuon's coupled iteration
// (A = (XX^T + tau^-2 I) / n, Y = A, Z = I, T = (3I - ZY)/2, Y <- YT, Z <- TZ, result
// Z X / sqrt(n)), op for op, in X's dtype. tau: a 1-element tensor on X's device.
at::Tensor soft_newton_schulz_owned(at::Tensor X, const at::Tensor& tau, int64_t steps);

// Phi_tau(X) to the accuracy bound of docs/algorithms.md (see accurate_soft_map.cpp); float32 in
// and out (float64 stays float64).
at::Tensor accurate_soft_map_owned(at::Tensor X, const at::Tensor& tau);

// Either soft map.
at::Tensor soft_map_owned(at::Tensor X, const at::Tensor& tau, SoftMap method, int64_t steps);

}  // namespace softsign::ops::detail
