"""Pure-PyTorch prototype of the accurate soft spectral map (reference for the C++/ATen port).

    Phi_tau(M) = U diag(phi(tau sigma)) V^T,  phi(x) = x / sqrt(1 + x^2)
               = first block of polar([M, tau^-1 I])            (M wide; tall M is transposed)

Algorithm (m <= n after transposing; every step is batched over the leading dims):
  0. X = M.float(); f = ||X||_F (f = 1 where X == 0); Xn = X / f; w = 1 / (tau f)   [w: float64]
  1. G = Xn Xn^T                                         bf16 inputs, fp32 accumulate + fp32 output
  2. nu^2 = sqrt(||G||_F^2 + 2 w^2 ||Xn||_F^2 + m w^4)  (= ||X0 X0^T||_F, float64 per-matrix scalar)
     Y = Xn / nu (fp32),  z = w / nu,  A = G / nu^2 + z^2 I
     (the augmented X0 = [Y, z I], A = X0 X0^T)
  3. step 0 (a, b, c = COEFFS[0]):  A2 = A A [bf16]; B = b A + c A2 (fp32);
     Y <- a Y + B Y [TF32 GEMM, fp32 axpy];  Z <- z (a I + B)  (no GEMM)
  4. steps k = 1..K-1:  A = Y Y^T + Z Z^T [Gram GEMMs, bf16];  A2 = A A [bf16];  B = b A + c A2;
     Y <- a Y + B Y;  Z <- a Z + B Z  (Z skipped at the last step)
     the two "X-side" GEMMs B Y, B Z run in TF32 for steps 0..K-3 and in bf16 for the last two
     steps (see PRECISION); everything elementwise and all state (Y, Z, A, B) stay fp32.
  5. return Y (transposed back), float32.
Never reads tau or any norm on the host. The linear term a Y is always applied in fp32: it
carries the small singular values, which a bf16 copy of Y would destroy.

GPU mapping: "bf16" GEMM = torch.bmm / baddbmm(..., out_dtype=torch.float32) on bf16 operands
(at::bmm(a, b, at::kFloat) / at::baddbmm(self, a, b, at::kFloat, beta, alpha)), i.e. bf16
tensor cores with fp32 output; "tf32" GEMM = fp32 bmm with TF32 allowed.  On CPU both are
emulated exactly as the tensor cores see them: operands rounded to bf16 (resp. 10-bit TF32
mantissa), product accumulated and returned in fp32.

Run `python scripts/soft_map_prototype.py` for the accuracy table (CPU, a few minutes).
"""

from __future__ import annotations

import contextlib
import sys

import torch
from torch import Tensor

# From scripts/design_soft_map.py --l0 1e-4 --steps 9 --gamma 0.5 --delta 0.02
COEFFS: tuple[tuple[float, float, float], ...] = (
    (3.6190244185513682, -7.96454406447367, 5.2175827656393574),
    (3.619024605352382, -7.9645446511314697, 5.2175831563743751),
    (3.6190243378537272, -7.964543373798997, 5.2175821763365704),
    (3.6190246102567674, -7.964544595475231, 5.217583098123983),
    (3.6190243717857089, -7.9645437842263807, 5.2175825376287728),
    (3.6190242911593318, -7.9645433025092851, 5.2175821487939862),
    (3.3423282145312925, -6.3731062542734591, 3.9435669462662366),
    (2.2522191929308573, -2.11936885062936, 0.86209958518478813),
    (1.8664055871300622, -1.2326763638625629, 0.36627256866320496),
)
# precision of the X-side GEMMs (B Y, B Z) per step; Gram-side GEMMs are always bf16.
PRECISION: tuple[str, ...] = ("tf32",) * (len(COEFFS) - 2) + ("bf16", "bf16")


def _round_tf32(x: Tensor) -> Tensor:
    i = x.contiguous().view(torch.int32)
    return ((i + 0x1000) & ~0x1FFF).view(torch.float32)


def _mm(a: Tensor, b: Tensor, prec: str) -> Tensor:
    """Batched a @ b with fp32 output; prec in {"bf16", "tf32", "fp32"}."""
    if prec == "fp32":
        return torch.matmul(a, b)
    if a.is_cuda:
        if prec == "bf16":
            return torch.bmm(a.bfloat16(), b.bfloat16(), out_dtype=torch.float32)
        ctx = torch.backends.cuda.matmul
        old = ctx.allow_tf32
        ctx.allow_tf32 = True
        try:
            return torch.bmm(a, b)
        finally:
            ctx.allow_tf32 = old
    if prec == "bf16":
        return torch.matmul(a.bfloat16().float(), b.bfloat16().float())
    return torch.matmul(_round_tf32(a), _round_tf32(b))


def soft_spectral_map_accurate(
    M: Tensor,
    tau: Tensor,
    coeffs: tuple[tuple[float, float, float], ...] = COEFFS,
    precision: tuple[str, ...] | str = PRECISION,
) -> Tensor:
    """Phi_tau(M) for M of shape (..., m, n); tau 0-dim or broadcastable to M.shape[:-2]."""
    if isinstance(precision, str):
        precision = (precision,) * len(coeffs)
    batch = M.shape[:-2]
    m0, n0 = M.shape[-2:]
    tall = m0 > n0
    X = M.reshape(-1, m0, n0).float()
    if tall:
        X = X.mT
    X = X.contiguous()
    bsz, m, _ = X.shape
    tau64 = torch.as_tensor(tau, dtype=torch.float64, device=X.device)
    tau64 = tau64.expand(batch).reshape(bsz, 1, 1)

    f = torch.linalg.vector_norm(X, dim=(-2, -1), keepdim=True)
    f = torch.where(f > 0, f, torch.ones_like(f))
    Xn = X / f
    f64 = f.double()
    w = 1.0 / (tau64 * f64)
    G = _mm(Xn, Xn.mT, "bf16" if precision[0] != "fp32" else "fp32")
    g2 = G.double().square().sum((-2, -1), keepdim=True)
    x2 = Xn.double().square().sum((-2, -1), keepdim=True)
    nu2 = torch.sqrt(g2 + 2.0 * w * w * x2 + m * w**4)
    Y = Xn * torch.rsqrt(nu2).float()
    z = (w * torch.rsqrt(nu2)).float()
    eye = torch.eye(m, device=X.device, dtype=torch.float32)
    A = G * (1.0 / nu2).float() + (z * z) * eye
    Z = Y.new_empty(0)
    K = len(coeffs)
    for k, (a, b, c) in enumerate(coeffs):
        gram = "fp32" if precision[k] == "fp32" else "bf16"
        xside = precision[k]
        if k > 0:
            A = _mm(Y, Y.mT, gram) + _mm(Z, Z.mT, gram)
        A2 = _mm(A, A, gram)
        B = b * A + c * A2
        Y_next = a * Y + _mm(B, Y, xside)
        if k < K - 1:
            Z = z * (a * eye + B) if k == 0 else a * Z + _mm(B, Z, xside)
        Y = Y_next
    if tall:
        Y = Y.mT
    return Y.reshape(*batch, m0, n0).contiguous()


# ----------------------------------------------------------------------------- evaluation


def ns5(M: Tensor) -> Tensor:
    """Muon's NS5 in bf16 (CPU bf16 matmul: fp32 accumulate, bf16 output, as on the GPU)."""
    X = M.bfloat16()
    tall = X.shape[-2] > X.shape[-1]
    if tall:
        X = X.mT
    X = X / (torch.linalg.vector_norm(X.float()) + 1e-7).bfloat16()
    a, b, c = 3.4445, -4.7750, 2.0315
    for _ in range(5):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    X = X.float()
    return X.mT if tall else X


def _orth(n: int, g: torch.Generator) -> Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def make_matrix(
    kind: str, m: int, n: int, decades: float = 3.0, rank: int | None = None, seed: int = 0
) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    k = min(m, n)
    if kind == "zero":
        return torch.zeros(m, n, dtype=torch.float64)
    if kind == "gauss":
        M = torch.randn(m, n, generator=g, dtype=torch.float64)
        return M / torch.linalg.matrix_norm(M, 2)
    r = k if rank is None else rank
    s = torch.zeros(k, dtype=torch.float64)
    s[:r] = torch.logspace(0, -decades, r, dtype=torch.float64)
    return (_orth(m, g)[:, :k] * s) @ _orth(n, g)[:, :k].T


def phi_reference(M: Tensor, tau: float) -> Tensor:
    U, s, Vh = torch.linalg.svd(M, full_matrices=False)
    ts = tau * s
    return (U * (ts / torch.sqrt(1.0 + ts * ts))) @ Vh


def _rel(X: Tensor, R: Tensor) -> float:
    d = torch.linalg.vector_norm(R).item()
    e = torch.linalg.vector_norm(X.double() - R).item()
    return e / d if d > 0 else e


def accuracy_table(precision: tuple[str, ...] | str = PRECISION) -> float:
    torch.set_num_threads(max(1, torch.get_num_threads()))
    taus = [10.0**e for e in range(10)]
    cases = [
        ("geom 3dec 64x256", make_matrix("geom", 64, 256)),
        ("geom 3dec 256x64", make_matrix("geom", 256, 64, seed=1)),
        ("geom 3dec 256x256", make_matrix("geom", 256, 256, seed=2)),
        ("geom 3dec 512x512", make_matrix("geom", 512, 512, seed=3)),
        ("geom 3dec 128x512", make_matrix("geom", 128, 512, seed=4)),
        ("rank 32 of 128x256", make_matrix("geom", 128, 256, rank=32, seed=5)),
        ("rank 16 of 256x64", make_matrix("geom", 256, 64, rank=16, seed=6)),
        ("gauss 64x256", make_matrix("gauss", 64, 256, seed=7)),
        ("gauss 256x256", make_matrix("gauss", 256, 256, seed=8)),
        ("gauss 512x512", make_matrix("gauss", 512, 512, seed=9)),
        ("geom 4dec 256x256", make_matrix("geom", 256, 256, 4.0, seed=10)),
        ("geom 4dec 64x256", make_matrix("geom", 64, 256, 4.0, seed=11)),
        ("geom 6dec 256x256", make_matrix("geom", 256, 256, 6.0, seed=12)),
        ("geom 6dec 64x256", make_matrix("geom", 64, 256, 6.0, seed=13)),
    ]
    scales = [1e-4, 1e-2, 1.0, 100.0]
    print(f"precision schedule (X-side GEMMs): {precision}")
    hdr = (
        "case                  scale    worst   @tau       tau=1   tau=1e3  tau=1e9  mid-spec"
        "  NS5|.|/polar ours|.|/polar"
    )
    print(hdr)
    worst_in_spec = 0.0
    for name, M0 in cases:
        s = torch.linalg.svdvals(M0)
        s = s[s > 1e-12 * s[0]]
        for sc in scales:
            M = M0 * sc
            mids = [1.0 / (sc * s[len(s) // 2].item()), 1.0 / (sc * s[(9 * len(s)) // 10].item())]
            tt = taus + mids
            errs = []
            for t in tt:
                out = soft_spectral_map_accurate(
                    M.float(), torch.tensor(t, dtype=torch.float64), precision=precision
                )
                assert torch.isfinite(out).all()
                errs.append(_rel(out, phi_reference(M, t)))
            i = max(range(len(tt)), key=lambda j: errs[j])
            P = phi_reference(M, 1e12)  # polar factor U V^T
            pn = torch.linalg.vector_norm(P).item()
            ns = torch.linalg.vector_norm(ns5(M.float())).item() / pn
            ours = (
                torch.linalg.vector_norm(
                    soft_spectral_map_accurate(
                        M.float(), torch.tensor(1e9, dtype=torch.float64), precision=precision
                    )
                ).item()
                / pn
            )
            print(
                f"{name:20s} {sc:7.0e}  {errs[i]:.2e} {tt[i]:8.1e}   "
                f"{errs[0]:.1e}  {errs[3]:.1e}  {errs[9]:.1e}  "
                f"{max(errs[10:]):.1e}    {ns:.3f}        {ours:.3f}"
            )
            if "dec" not in name or "3dec" in name:
                if "gauss" not in name or "64x" in name:
                    worst_in_spec = max(worst_in_spec, errs[i])
    # zero matrix: exactly zero, finite, batched over a tau vector
    Zm = torch.zeros(3, 64, 96)
    tz = torch.tensor([1.0, 1e4, 1e9], dtype=torch.float64)
    out = soft_spectral_map_accurate(Zm, tz, precision=precision)
    print(
        "zero matrices (batch of 3, tau = 1, 1e4, 1e9): "
        f"max|out| = {out.abs().max().item():.1e}, finite = {bool(torch.isfinite(out).all())}"
    )
    # batched call agrees with per-matrix calls
    Mb = torch.stack(
        [make_matrix("geom", 64, 128, seed=20 + i) * 10.0 ** (-i) for i in range(3)]
    ).float()
    tb = torch.tensor([1.0, 30.0, 1e9], dtype=torch.float64)
    ob = soft_spectral_map_accurate(Mb, tb, precision=precision)
    dif = max(
        (ob[i] - soft_spectral_map_accurate(Mb[i], tb[i], precision=precision)).abs().max().item()
        for i in range(3)
    )
    print(f"batched vs per-matrix max diff: {dif:.1e}")
    print(
        "worst rel. error over in-spec cases (3-decade geom, rank-deficient, wide/tall Gaussian): "
        f"{worst_in_spec:.2e}"
    )
    return worst_in_spec


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "schedule"
    with contextlib.suppress(Exception):
        torch.set_num_threads(2)
    accuracy_table(PRECISION if mode == "schedule" else mode)
