"""Stateless entry points over torch.ops.softsign: the pieces the optimizers are made of
(the exact median/MAD, the temperature schedule, the spectral maps), for use on their own.
The math: docs/algorithms.md."""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch

from . import _select
from ._library import ops

__all__ = [
    "median_mad",
    "newton_schulz5",
    "singular_values",
    "soft_spectral_map",
    "temperature_schedule",
]

_KINDS = ("tanh", "algebraic")
_SOFT_MAPS = ("newton_schulz", "accurate")


def median_mad(
    tensors: Sequence[torch.Tensor] | torch.Tensor,
    *,
    histogram_hook: Callable[[torch.Tensor], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact lower median and MAD over all elements of `tensors`.

    The lower median is the element of rank floor((n - 1) / 2) in sorted order, as
    torch.median returns it; the MAD is the lower median of |x - median|. Any NaN makes
    both NaN. No concatenated copy is made: a few histogram passes read the tensors in
    place (radix selection).

    Args:
        tensors: one tensor or a sequence of real floating tensors, on one device; every
            element of every tensor counts.
        histogram_hook: None, or a callable that sees each pass's int64 histogram on the
            device before its bin is picked and may change it in place:
            `lambda h: dist.all_reduce(h)` selects over the values of every rank without
            gathering them (each rank passes its own shard; a rank may pass no elements,
            but at least one tensor). Default None.

    Returns:
        (median, mad), float64 0-dim tensors on the tensors' device.

    Raises:
        ValueError: no elements at all (without a hook), or no tensor (with one).
    """
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    tensors = [t.detach() for t in tensors]
    if histogram_hook is None:
        if not tensors or sum(t.numel() for t in tensors) == 0:
            raise ValueError("median_mad needs at least one element")
        return ops.median_mad(tensors)
    if not tensors:
        raise ValueError("median_mad needs at least one tensor (it may be empty)")
    tensors = [t if t.is_contiguous() else t.contiguous() for t in tensors]
    return _select.median_mad(
        [_select.Source(tensors)],
        device=tensors[0].device,
        hook=histogram_hook,
    )


def temperature_schedule(
    median,
    mad,
    steps: int,
    *,
    eps: float = 1e-4,
    newton_iters: int = 10,
    tmax: float = 1e9,
    kind: str = "tanh",
) -> torch.Tensor:
    """The T = `steps` temperatures tau_0..tau_{T-1} of the transition, from a fitted
    median and MAD (the folded-Cauchy quantile schedule of docs/algorithms.md).

    Args:
        median: the median of the statistic, a number or a 0-dim tensor; the schedule
            lives on its device. A tensor is not read (no host synchronization).
        mad: the MAD of the statistic, >= 0, a number or a 0-dim tensor (a number is
            checked, a tensor is not). A zero MAD gives tau = c_eps / |median| throughout.
        steps: T, the length of the transition, an integer >= 1.
        eps: saturation level in (0, 1): each tau_j maps the quantile q_j to 1 - eps.
            Default 1e-4.
        newton_iters: Newton steps of each quantile solve, an integer >= 0. Default 10.
        tmax: upper clamp of tau (the lower clamp is 1), used as well where q_j = 0.
            Default 1e9.
        kind: "tanh" (SoftSignum: c_eps = atanh(1 - eps)) or "algebraic" (SoftMuon:
            c_eps = y / sqrt(1 - y^2), y = 1 - eps). Default "tanh".

    Returns:
        A float64 tensor of shape [steps] (tau falls along it: q_j grows with j).

    Raises:
        ValueError: an unknown kind, steps < 1, or a negative number as mad.
    """
    if kind not in _KINDS:
        raise ValueError(f"Invalid kind: {kind!r} (expected one of {_KINDS})")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"Invalid steps: {steps!r} (expected an integer >= 1)")
    if not isinstance(mad, torch.Tensor) and not float(mad) >= 0:
        raise ValueError(f"Invalid mad: {mad} (expected >= 0)")
    median = torch.as_tensor(median, dtype=torch.float64)
    mad = torch.as_tensor(mad, dtype=torch.float64, device=median.device)
    return ops.temperature_schedule(
        median,
        mad,
        int(steps),
        eps=float(eps),
        newton_iters=int(newton_iters),
        tmax=float(tmax),
        kind=kind,
    )


def newton_schulz5(M: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """Muon's orthogonalization NS5: quintic Newton-Schulz iterations with Muon's
    coefficients (3.4445, -4.7750, 2.0315), after scaling each matrix to unit Frobenius
    norm. It maps the singular values of M into about [0.7, 1.2], not exactly to 1.

    Args:
        M: a tensor (..., m, n), batched over the leading dims.
        steps: number of iterations, an integer >= 0. Default 5.

    Returns:
        A tensor of M's shape in bfloat16 (float64 input is iterated and returned in
        float64).

    Raises:
        ValueError: steps < 0.
    """
    if int(steps) < 0:
        raise ValueError(f"Invalid steps: {steps} (expected >= 0)")
    return ops.newton_schulz5(M.detach(), steps=int(steps))


def soft_spectral_map(
    M: torch.Tensor, tau, method: str = "newton_schulz", steps: int = 5
) -> torch.Tensor:
    """SoftMuon's soft spectral map Phi_tau(M) = U diag(phi(tau sigma)) V^T, with
    phi(x) = x / sqrt(1 + x^2), batched over the leading dims of M.

    Args:
        M: a tensor (..., m, n).
        tau: the temperature, a finite number > 0 or a 1-element tensor (kept on the
            device: no host synchronization, so a tensor's value is not checked; a
            non-finite one gives zeros).
        method: "newton_schulz", the authors' coupled iteration in bfloat16 (far from
            Phi_tau when tau * sigma spans decades), or "accurate", within 1e-2
            (relative Frobenius) of Phi_tau for tau in [1, 1e9] and spectra spanning up
            to 4 decades. Default "newton_schulz".
        steps: iterations of the "newton_schulz" method, an integer >= 0 ("accurate" runs
            a fixed iteration and ignores it). Default 5.

    Returns:
        A tensor of M's shape: bfloat16 for "newton_schulz", float32 for "accurate";
        float64 input runs and returns float64.

    Raises:
        ValueError: an unknown method, steps < 0, or a number tau that is not finite
            and > 0.
    """
    if method not in _SOFT_MAPS:
        raise ValueError(f"Invalid method: {method!r} (expected one of {_SOFT_MAPS})")
    if int(steps) < 0:
        raise ValueError(f"Invalid steps: {steps} (expected >= 0)")
    if not isinstance(tau, torch.Tensor):
        if not (math.isfinite(float(tau)) and float(tau) > 0):
            raise ValueError(f"Invalid tau: {tau} (expected a finite number > 0)")
        tau = torch.full((), float(tau), dtype=torch.float64, device=M.device)
    return ops.soft_spectral_map(M.detach(), tau.detach(), method=method, steps=int(steps))


def singular_values(tensors: Sequence[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
    """All singular values of each tensor viewed as a matrix the way SoftMuon's schedule
    statistic views it: 1-D as 1 x n, 2-D as it is, >= 3-D as (size0, -1).

    The values come from the small-side Gram matrix's eigenvalues, computed in float64
    (float32 loses the singular values below about 3e-4 of the largest).

    Args:
        tensors: one tensor or a sequence of real floating tensors.

    Returns:
        A list with one 1-D tensor of min(rows, cols) singular values per input tensor,
        in no particular order: float32 (float64 for float64 input).
    """
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    return ops.singular_values([t.detach() for t in tensors])
