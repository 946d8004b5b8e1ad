"""The accurate soft map (csrc/ops/accurate_soft_map.cpp, docs/algorithms.md section 5) by
its design: its coefficients are the floored odd quintics they claim to be, and the shipped
map keeps the documented 1e-2 bound where the bound is hardest to keep (4-decade spectra,
temperatures in the middle of the spectrum, tiny and large matrices), on every device.

The design rule, for the record (it replaces the script that derived the coefficients):
step k acts on the singular values of the augmented matrix, all in [l_k, 1 + delta] after
the normalisation, and is the odd quintic p(x) = a x + b x^3 + c x^5 that

    maximises   min p / max p   over [l_k, 1 + delta]
    subject to  p(x) >= gamma * max p for every x past p's first local maximum x1,

normalised to max p = 1, so that l_{k+1} = min p; l_0 = 1e-4, delta = 0.02, gamma = 0.5, and
the last step is scaled by 2 / (1 + l_K) to centre the final singular values on 1. Without
the floor (gamma = 0) the optimum is the equioscillating minimax step, whose dip sends
singular values near 0.85 down to ~1e-3 through a cancellation of terms ~50 times larger:
bf16 and TF32 products cannot afford that.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import softsign

SOURCE = Path(__file__).resolve().parents[2] / "csrc" / "ops" / "accurate_soft_map.cpp"
L0, DELTA, GAMMA = 1e-4, 0.02, 0.5
F64 = torch.float64


def shipped_coefficients() -> list[tuple[float, float, float]]:
    """(a, b, c) of every step, read from the C++ source (the one place they live)."""
    if not SOURCE.exists():
        pytest.skip("csrc/ not in this checkout")
    block = re.search(r"kSteps = \{\{(.*?)\}\};", SOURCE.read_text(), re.S)
    assert block, f"no kSteps table in {SOURCE.name}"
    number = r"(-?[\d.]+(?:e-?\d+)?)"
    rows = re.findall(rf"\{{{number}, {number}, {number}\}}", block.group(1))
    return [tuple(float(v) for v in row) for row in rows]


def grid(lo: float, hi: float) -> torch.Tensor:
    """The design's grid: 4001 geometric and 4001 linear points over [lo, hi]."""
    geometric = torch.logspace(torch.tensor(lo).log10(), torch.tensor(hi).log10(), 4001, dtype=F64)
    return torch.cat([geometric, torch.linspace(lo, hi, 4001, dtype=F64)]).unique()


def quintic(cf, x: torch.Tensor) -> torch.Tensor:
    a, b, c = cf
    return a * x + b * x**3 + c * x**5


def critical_points(cf) -> tuple[float, float]:
    """x1 < x2 with p'(x) = a + 3 b x^2 + 5 c x^4 = 0."""
    a, b, c = cf
    disc = (9 * b * b - 20 * a * c) ** 0.5
    roots = sorted(((-3 * b - disc) / (10 * c), (-3 * b + disc) / (10 * c)))
    return roots[0] ** 0.5, roots[1] ** 0.5


def score(x1: float, x2: float, xs: torch.Tensor) -> float:
    """min p / max p over xs for the quintic with p' = 5 (x^2 - x1^2)(x^2 - x2^2), or -1
    where it breaks the floor or is not positive: the quantity each step maximises."""
    cf = (5 * x1**2 * x2**2, -5 / 3 * (x1**2 + x2**2), 1.0)
    p = quintic(cf, xs)
    p = p / p.max()
    if p.min() <= 0 or p[xs >= x1].min() < GAMMA - 1e-12:
        return -1.0
    return p.min().item()


def test_the_steps_chain_their_intervals_and_end_centred_on_one():
    steps = shipped_coefficients()
    assert len(steps) == 9
    lo = L0
    for k, cf in enumerate(steps):
        p = quintic(cf, grid(lo, 1 + DELTA))
        if k < len(steps) - 1:  # normalised: the next interval is [min p, 1 + delta]
            assert abs(p.max().item() - 1) < 1e-9, k
        assert p.min() > lo, k  # every step lifts the lower end
        lo = (p.min() / p.max()).item()
    # All 9 steps together: [1e-4, 1 + delta] ends within 1 +- (1 - l_K) / (1 + l_K).
    x = torch.logspace(-4, torch.tensor(1 + DELTA).log10(), 20001, dtype=F64)
    for cf in steps:
        x = quintic(cf, x)
    err = (1 - lo) / (1 + lo)
    assert err < 3e-6
    assert (x - 1).abs().max() <= err * (1 + 1e-6)


def test_every_step_keeps_the_floor_and_is_its_best_floored_quintic():
    lo = L0
    for k, cf in enumerate(shipped_coefficients()):
        xs = grid(lo, 1 + DELTA)
        p = quintic(cf, xs)
        x1, x2 = critical_points(cf)
        assert (p[xs >= x1] >= GAMMA * p.max() - 1e-9).all(), k
        best = score(x1, x2, xs)
        assert abs(best - (p.min() / p.max()).item()) < 1e-9, k
        # No neighbouring pair of critical points does better under the floor.
        for h in (1e-5, 1e-3):
            for d1 in (-h, 0.0, h):
                for d2 in (-3 * h, 0.0, 3 * h):
                    if (d1, d2) != (0.0, 0.0):
                        assert score(x1 + d1, x2 + d2, xs) <= best + 1e-9, (k, d1, d2)
        lo = best


def spectrum(m: int, n: int, decades: float, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    k = min(m, n)
    u, _ = torch.linalg.qr(torch.randn(m, k, generator=gen, dtype=F64))
    v, _ = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=F64))
    return (u * torch.logspace(0, -decades, k, dtype=F64)) @ v.T


@pytest.mark.parametrize("shape", [(48, 160), (160, 48), (96, 96)])
def test_accurate_map_keeps_its_bound_over_four_decades(device, shape):
    """The temperatures where phi bends in the middle of the spectrum (1 / sigma at its
    median and 90th percentile) and matrices scaled far from unit norm are where the
    reduced-precision products lose most; on CUDA they run on the tensor cores."""
    from softsign.reference.spectral import phi_tau

    base = spectrum(*shape, decades=4.0, seed=sum(shape))
    sigma = torch.linalg.svdvals(base)
    worst = 0.0
    for scale in (1e-4, 100.0):
        M = base * scale
        mid = [1 / (scale * sigma[len(sigma) * q // 10].item()) for q in (5, 9)]
        for tau in (1.0, 1e3, 1e9, *mid):
            want = phi_tau(M, tau)
            got = softsign.functional.soft_spectral_map(M.float().to(device), tau, "accurate")
            assert got.dtype == torch.float32 and torch.isfinite(got).all()
            err = ((got.cpu().double() - want).norm() / want.norm()).item()
            worst = max(worst, err)
            assert err <= 1e-2, (scale, tau, err)
    assert worst > 0  # the comparison ran in reduced precision, not float64


def test_accurate_map_of_a_batch_is_the_map_of_each_matrix(device):
    mats = torch.stack([spectrum(40, 72, 3.0, seed=i) * 10.0**-i for i in range(3)])
    mats = mats.float().to(device)
    batched = softsign.functional.soft_spectral_map(mats, 30.0, "accurate")
    for i in range(3):
        alone = softsign.functional.soft_spectral_map(mats[i], 30.0, "accurate")
        # Batched products may accumulate in another order than single ones (on GPUs):
        # the two agree far within the map's own 1e-2 bound.
        assert ((batched[i] - alone).norm() / alone.norm()).item() < 1e-4, i
