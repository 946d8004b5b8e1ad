"""Derive the coefficient sequence of the accurate soft spectral map.

The soft map Phi_tau(M) = (M M^T + tau^-2 I)^{-1/2} M is the first block of the polar
factor of the augmented matrix X0 = [M, tau^-1 I] / nu.  We run K odd-quintic steps
X <- p_k(X) = a_k X + (b_k A + c_k A^2) X,  A = X X^T, on its singular values, which lie in
[l0, 1] after the normalisation nu = ||X0 X0^T||_F^(1/2).

Each p_k is designed greedily for the current interval [l_k, 1 + delta]:

  maximise   min_{[l_k, 1+delta]} p / max_{[l_k, 1+delta]} p
  subject to p(x) >= gamma * max p  for every x past the first local maximum x1 of p.

Without the floor (gamma = 0) this is the equioscillating minimax ("Polar Express") step;
its interior minimum sends singular values near x ~ 0.85 back down to 1 - E ~ 1e-3, a
catastrophic cancellation (|a x| + |b x^3| + |c x^5| ~ 50 vs p ~ 1e-3) that bf16/TF32
matmuls cannot afford.  The floor gamma = 0.5 costs ~10% growth per step (slope 3.62
instead of 4.16, both normalised to max p = 1) and removes that loss of precision.
delta = 0.02 gives headroom at the top end (singular values pushed slightly above the
design interval by rounding are mapped back inside instead of being amplified).
p_k is normalised to max p = 1, so l_{k+1} = min p_k; the last polynomial is rescaled by
2 / (1 + l_K) so the final singular values are centred on 1.

Deterministic: pure float64 numpy, fixed grids and a fixed pattern search.
Usage:  python scripts/design_soft_map.py [--l0 1e-4] [--steps 9] [--gamma 0.5] [--delta 0.02]
"""

from __future__ import annotations

import argparse

import numpy as np


def quintic_from_critical_points(x1: float, x2: float) -> np.ndarray:
    """Odd quintic with p'(x) = 5 (x^2 - x1^2)(x^2 - x2^2).

    Returns the coefficients (a, b, c) of x, x^3, x^5.
    """
    return np.array([5.0 * x1**2 * x2**2, -5.0 / 3.0 * (x1**2 + x2**2), 1.0])


def evaluate(cf: np.ndarray, x: np.ndarray) -> np.ndarray:
    return cf[0] * x + cf[1] * x**3 + cf[2] * x**5


def score(x1: float, x2: float, xs: np.ndarray, gamma: float) -> tuple[float, np.ndarray | None]:
    cf = quintic_from_critical_points(x1, x2)
    pv = evaluate(cf, xs)
    mx = pv.max()
    if not mx > 0:
        return -1.0, None
    pv = pv / mx
    ratio = pv.min()
    if ratio <= 0:
        return -1.0, None
    if gamma > 0:
        after = pv[xs >= x1]
        if after.size and after.min() < gamma - 1e-12:
            return -1.0, None
    return float(ratio), cf / mx


def design_step(lo: float, hi: float, gamma: float) -> tuple[float, np.ndarray]:
    """Best floored quintic on [lo, hi]; returns (min/max ratio, coefficients with max p = 1)."""
    xs = np.unique(np.concatenate([np.geomspace(lo, hi, 4001), np.linspace(lo, hi, 4001)]))
    best_r, best_cf, b1, b2 = -1.0, None, 0.0, 0.0
    for x1 in np.linspace(0.0, hi, 121)[1:]:
        for x2 in np.linspace(x1, 3.0 * hi, 121)[1:]:
            r, cf = score(x1, x2, xs, gamma)
            if r > best_r:
                best_r, best_cf, b1, b2 = r, cf, x1, x2
    h1, h2 = hi / 120, 3.0 * hi / 120
    while h1 > 1e-10 * hi:
        improved = False
        for d1 in (-h1, 0.0, h1):
            for d2 in (-h2, 0.0, h2):
                x1, x2 = b1 + d1, b2 + d2
                if (d1 == 0.0 and d2 == 0.0) or not (0.0 < x1 < x2):
                    continue
                r, cf = score(x1, x2, xs, gamma)
                if r > best_r + 1e-15:
                    best_r, best_cf, b1, b2, improved = r, cf, x1, x2, True
        if not improved:
            h1, h2 = h1 / 2, h2 / 2
    assert best_cf is not None
    return best_r, best_cf


def design(l0: float, steps: int, gamma: float, delta: float):
    lo, rows = l0, []
    for _ in range(steps):
        r, cf = design_step(lo, 1.0 + delta, gamma)
        rows.append((lo, cf, r))
        lo = r
    scale = 2.0 / (1.0 + lo)
    lo_last, cf_last, r_last = rows[-1]
    rows[-1] = (lo_last, cf_last * scale, r_last)
    final_err = (1.0 - lo) / (1.0 + lo)  # final singular values lie in [1 - err, 1 + err]
    return rows, final_err


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--l0", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=9)
    ap.add_argument("--gamma", type=float, default=0.5)
    ap.add_argument("--delta", type=float, default=0.02)
    args = ap.parse_args()
    rows, final_err = design(args.l0, args.steps, args.gamma, args.delta)
    print(f"// Soft spectral map, accurate mode: {args.steps} floored odd-quintic steps")
    print(f"// design interval [l0, 1] = [{args.l0:g}, 1] (after nu = ||X0 X0^T||_F^(1/2)),")
    print(f"// floor gamma = {args.gamma:g}, top headroom delta = {args.delta:g};")
    print(f"// singular values in [l0, 1] end in [1 - {final_err:.2e}, 1 + {final_err:.2e}].")
    print("// step k: X <- a X + (b A + c A^2) X, A = X X^T;")
    print("//         interval [l_k, 1 + delta] -> [l_{k+1}, 1]")
    print(f"constexpr int kSoftMapSteps = {args.steps};")
    print("constexpr double kSoftMapCoeffs[kSoftMapSteps][3] = {")
    for k, (lo, cf, r) in enumerate(rows):
        print(
            f"    {{{cf[0]:.17g}, {cf[1]:.17g}, {cf[2]:.17g}}},  // k={k}: l_k={lo:.6e} -> {r:.6e}"
        )
    print("};")


if __name__ == "__main__":
    main()
