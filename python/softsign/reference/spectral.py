"""Reference spectral maps of SoftMuon / Muon (docs/algorithms.md sections 1 and 5).

Every map takes a batch of matrices (..., m, n). The exact maps (phi_tau, polar) run an fp64
SVD; the iterations (newton_schulz5, soft_newton_schulz) run in the dtype they are given, so
dtype=torch.bfloat16 emulates the bf16 path product by product (each matmul rounded to bf16, as
torch.optim.Muon computes it) and dtype=torch.float64 is the tight reference.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "matrix_view",
    "muon_scale",
    "newton_schulz5",
    "phi_tau",
    "polar",
    "soft_newton_schulz",
    "soft_singular_values",
    "statistic_view",
]

NS5_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS5_EPS = 1e-7


def matrix_view(t: torch.Tensor) -> torch.Tensor:
    """The 2-D view the update is computed on: 2-D as is, >= 3-D (conv) as (size0, -1)."""
    if t.dim() < 2:
        raise ValueError(f"a matrix parameter needs >= 2 dimensions, got shape {tuple(t.shape)}")
    return t if t.dim() == 2 else t.reshape(t.shape[0], -1)


def statistic_view(t: torch.Tensor) -> torch.Tensor:
    """The view whose singular values enter the schedule statistic: 0-D/1-D as (1, n),
    2-D as is, >= 3-D as (size0, -1)."""
    if t.dim() < 2:
        return t.reshape(1, -1)
    return matrix_view(t)


def _scalar(x, like: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64, device=like.device)


def soft_singular_values(sigma: torch.Tensor, tau) -> torch.Tensor:
    """phi(tau * sigma) = sigma / sqrt(sigma^2 + tau^-2), computed with hypot so that
    tau = 1e9 (or inf) and tiny tau neither overflow nor underflow; sigma = 0 gives 0."""
    sigma = sigma.double()
    inv = 1.0 / _scalar(tau, sigma)  # tau = inf: 0, the polar limit
    out = sigma / torch.hypot(sigma, inv.expand_as(sigma))
    return torch.where(sigma > 0, out, torch.zeros_like(out))


def phi_tau(M: torch.Tensor, tau) -> torch.Tensor:
    """Phi_tau(M) = U diag(phi(tau sigma)) V^T = (M M^T + tau^-2 I)^(-1/2) M, fp64 SVD.

    Zero and rank-deficient matrices are fine: phi(0) = 0, so the arbitrary singular vectors
    of the zero singular values do not contribute. tau is a float or a 0-dim tensor.
    """
    M = M.double()
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    return (U * soft_singular_values(S, tau).unsqueeze(-2)) @ Vh


def polar(M: torch.Tensor) -> torch.Tensor:
    """The polar factor U V^T (what Muon approximates), fp64 SVD.

    Convention for singular matrices: singular values at or below the numerical-rank
    threshold max(m, n) * eps_fp64 * sigma_max (the default of torch.linalg.matrix_rank)
    contribute 0, so the result is the partial isometry M (M^T M)^(+1/2), the tau -> inf
    limit of phi_tau. A zero matrix gives 0.
    """
    M = M.double()
    U, S, Vh = torch.linalg.svd(M, full_matrices=False)
    m, n = M.shape[-2:]
    smax = S.amax(dim=-1, keepdim=True) if S.numel() else S
    tol = max(m, n) * torch.finfo(torch.float64).eps * smax
    ones = (S > tol).to(S.dtype)
    return (U * ones.unsqueeze(-2)) @ Vh


def _mm_add(C: torch.Tensor, A: torch.Tensor, B: torch.Tensor, beta: float, alpha: float = 1.0):
    """beta * C + alpha * (A @ B) with one rounding in low precision, as torch.addmm does;
    batched over leading dims."""
    if C.dim() == 2:
        return torch.addmm(C, A, B, beta=beta, alpha=alpha)
    batch = C.shape[:-2]
    out = torch.baddbmm(
        C.reshape(-1, *C.shape[-2:]),
        A.reshape(-1, *A.shape[-2:]),
        B.reshape(-1, *B.shape[-2:]),
        beta=beta,
        alpha=alpha,
    )
    return out.reshape(*batch, *out.shape[-2:])


def newton_schulz5(M: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.float64):
    """Muon's quintic Newton-Schulz orthogonalization (docs/algorithms.md section 5), run in
    `dtype`.

    X = M in dtype, transposed so that rows <= cols, X <- X / (||X||_F + 1e-7) per matrix,
    then `steps` times A = X X^T; B = b A + c A A; X <- a X + B X, (a, b, c) = (3.4445,
    -4.7750, 2.0315); transposed back. Returns a tensor of `dtype`.
    """
    a, b, c = NS5_COEFFICIENTS
    X = M.to(dtype)
    tall = X.shape[-2] > X.shape[-1]
    if tall:
        X = X.mT
    X = X / (torch.linalg.vector_norm(X, dim=(-2, -1), keepdim=True) + NS5_EPS)
    for _ in range(steps):
        A = X @ X.mT
        B = _mm_add(A, A, A, beta=b, alpha=c)
        X = _mm_add(X, B, X, beta=a)
    return X.mT if tall else X


def soft_newton_schulz(M: torch.Tensor, tau, steps: int = 5, dtype: torch.dtype = torch.float64):
    """The authors' soft map (docs/algorithms.md section 5, soft_map="newton_schulz"), run in
    `dtype`.

    X = M in dtype, wide (transposed if rows > cols); A = X X^T + tau^-2 I; n = ||A||_F;
    A <- A / n; Y = A, Z = I; `steps` times T = (3I - Z Y)/2, Y <- Y T, Z <- T Z; result
    Z X / sqrt(n), transposed back. Z -> (A/n)^(-1/2), so with enough steps this converges to
    phi_tau(M) wherever A is well conditioned; 5 steps are far from it when tau*sigma spans a
    wide range. tau is a float or a 0-dim tensor.
    """
    X = M.to(dtype)
    tall = X.shape[-2] > X.shape[-1]
    if tall:
        X = X.mT
    r = X.shape[-2]
    eye = torch.eye(r, dtype=dtype, device=X.device).expand(*X.shape[:-2], r, r)
    inv2 = (1.0 / _scalar(tau, X)) ** 2
    A = X @ X.mT + inv2.to(dtype) * eye
    n = torch.linalg.vector_norm(A, dim=(-2, -1), keepdim=True)
    A = A / n
    Y, Z = A, eye
    for _ in range(steps):
        T = (3 * eye - Z @ Y) / 2
        Y = Y @ T
        Z = T @ Z
    out = (Z @ X) / torch.sqrt(n)
    return out.mT if tall else out


def muon_scale(rows: int, cols: int, adjust_lr: str = "original") -> float:
    """The update scale of a (rows, cols) view: "original" sqrt(max(1, rows/cols)),
    "match_rms_adamw" 0.2 * sqrt(max(rows, cols)) (torch.optim.Muon's two options)."""
    if adjust_lr in (None, "original"):
        return math.sqrt(max(1.0, rows / cols))
    if adjust_lr == "match_rms_adamw":
        return 0.2 * math.sqrt(max(rows, cols))
    raise ValueError(f"Invalid adjust_lr: {adjust_lr!r} (expected 'original' or 'match_rms_adamw')")
