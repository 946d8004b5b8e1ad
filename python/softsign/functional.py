"""Stateless entry points over torch.ops.softsign."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ._library import ops

__all__ = ["median_mad", "temperature_schedule"]

_KINDS = ("tanh", "algebraic")


def median_mad(tensors: Sequence[torch.Tensor] | torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact lower median and MAD over all elements of `tensors` (float64 0-dim tensors).

    The lower median is the element of rank floor((n - 1) / 2), as torch.median.
    """
    if isinstance(tensors, torch.Tensor):
        tensors = [tensors]
    tensors = [t.detach() for t in tensors]
    if not tensors or sum(t.numel() for t in tensors) == 0:
        raise ValueError("median_mad needs at least one element")
    return ops.median_mad(tensors)


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
    """
    if kind not in _KINDS:
        raise ValueError(f"Invalid kind: {kind!r} (expected one of {_KINDS})")
    if int(steps) < 1:
        raise ValueError(f"Invalid steps: {steps} (expected >= 1)")
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
