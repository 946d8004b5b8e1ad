"""Stateless entry points over torch.ops.softsign."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from ._library import ops

__all__ = ["median_mad", "temperature_schedule"]

_KINDS = ("tanh", "algebraic")


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
    device = tensors[0].device
    key_bits = 64 if any(t.dtype == torch.float64 for t in tensors) else 32
    digit_bits = 16 if device.type == "cpu" else 8  # as the C++ driver picks them
    state = torch.zeros(5, dtype=torch.int64, device=device)
    for stage in (0, 1):
        for pass_ in range((key_bits if stage == 0 else 64) // digit_bits):
            hist = ops.radix_select_histogram(
                tensors,
                [],
                state,
                stage=stage,
                pass_=pass_,
                digit_bits=digit_bits,
                key_bits=key_bits,
                momentum=0.0,
                dampening=0.0,
                nesterov=False,
                maximize=False,
                first_step=False,
                grad_scale=None,
            )
            histogram_hook(hist)
            ops.radix_select_advance_(
                state, hist, stage=stage, pass_=pass_, digit_bits=digit_bits, key_bits=key_bits
            )
    return ops.radix_select_result(state, key_bits=key_bits)


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
