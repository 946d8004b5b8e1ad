"""Stateless entry points over torch.ops.softsign."""

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
    """Exact lower median and MAD over all elements of `tensors` (float64 0-dim tensors).

    The lower median is the element of rank floor((n - 1) / 2), as torch.median; any NaN
    makes both NaN. No concatenated copy is made: a few histogram passes read the tensors
    in place (radix selection, csrc/ops/radix_select.h).

    `histogram_hook(h)` sees each pass's int64 histogram on the device before its bin is
    picked and may change it in place: `lambda h: dist.all_reduce(h)` selects over the
    values of every rank without gathering them (each rank passes its own shard; a rank
    may pass no elements).
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
    """The T = `steps` temperatures of the transition (float64), spec section 3.

    `median` and `mad` are numbers or 0-dim tensors; the schedule lives on their device.
    A number is checked (a MAD >= 0); a tensor is not read (no host synchronization).
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
    """Muon's orthogonalization: `steps` quintic Newton-Schulz iterations in bfloat16,
    batched over the leading dims of M (..., m, n), with Muon's coefficients
    (3.4445, -4.7750, 2.0315) after scaling M to unit Frobenius norm. Returns bfloat16
    (float64 input is iterated and returned in float64)."""
    if int(steps) < 0:
        raise ValueError(f"Invalid steps: {steps} (expected >= 0)")
    return ops.newton_schulz5(M.detach(), steps=int(steps))


def soft_spectral_map(
    M: torch.Tensor, tau, method: str = "newton_schulz", steps: int = 5
) -> torch.Tensor:
    """SoftMuon's Phi_tau(M) = U diag(sigma' ) V^T with sigma' = tau sigma / sqrt(1 +
    (tau sigma)^2), batched over the leading dims of M (..., m, n).

    method="newton_schulz": the public SoftMuon's coupled iteration with `steps` steps in
    bfloat16 (returns bfloat16); far from Phi_tau when tau * sigma spans decades.
    method="accurate": within 1e-2 (relative Frobenius) of Phi_tau for tau in [1, 1e9]
    and spectra spanning up to 4 decades; returns float32. float64 input runs in float64.
    `tau` is a positive number or a 1-element tensor (kept on the device: no host
    synchronization, so a tensor's value is not checked; a non-finite one gives zeros).
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
    """All singular values (float32, in no particular order) of each tensor viewed as a
    matrix the way SoftMuon's statistic views it: 1-D as 1 x n, >= 3-D as (size0, -1)."""
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    return ops.singular_values([t.detach() for t in tensors])
