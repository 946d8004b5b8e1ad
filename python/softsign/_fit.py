"""Bookkeeping of the temperature fit (docs/algorithms.md section 3) shared by the soft
optimizers.

The fit runs on the device inside step() (torch.ops.softsign.fit_temperature); its
status reaches the host through a non-blocking copy that a later step() reads once the
copy is done (an event query, never a wait). Until then the step uses the device
schedule, which is all NaN for a failed fit, so the kernels leave parameters untouched.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass

import torch

from ._library import ops

# Mirrors softsign::ops::FitStatus (csrc/include/softsign/ops.h).
PENDING, OK, ZERO_MAD, NON_FINITE = 0, 1, 2, 3


def resolve_phases(group) -> tuple[float, int]:
    """(S, T) of a group; S is inf for the classes with no transition."""
    if group.get("total_steps", None) is None and group.get("sign_steps", None) is None:
        return math.inf, 1
    sign_steps, transition_steps = group["sign_steps"], group["transition_steps"]
    if sign_steps is not None and transition_steps is not None:
        return int(sign_steps), max(int(transition_steps), 1)
    total = group["total_steps"]
    if sign_steps is None:
        # Half away from zero, as std::round in the C++ optimizers.
        sign_steps = int(math.floor(group["alpha_sign"] * total + 0.5))
    if transition_steps is None:
        transition_steps = total - sign_steps
    return int(sign_steps), max(int(transition_steps), 1)


@dataclass
class PendingFit:
    """A fit computed on the device whose status the host has not read yet."""

    stats: torch.Tensor  # float64 [median, mad, status] on the device
    schedule: torch.Tensor  # float64 [T] on the device (NaN unless usable)
    host: torch.Tensor  # CPU copy of stats, filled asynchronously
    event: torch.Event | None

    @classmethod
    def launch(cls, stats, schedule):
        if stats.device.type == "cpu":
            return cls(stats, schedule, stats, None)
        host = torch.empty(3, dtype=torch.float64, pin_memory=True)
        host.copy_(stats, non_blocking=True)
        event = torch.Event(device=stats.device)
        event.record()
        return cls(stats, schedule, host, event)

    def ready(self) -> bool:
        return self.event is None or self.event.query()

    def wait(self) -> None:
        if self.event is not None:
            self.event.synchronize()


def user_stacklevel() -> int:
    """The stacklevel of warnings.warn that points at the caller's own code: the first frame
    outside softsign and torch (whose step() wrappers and no_grad sit in between)."""
    here = os.path.dirname(os.path.abspath(__file__)) + os.sep
    torch_dir = os.path.dirname(os.path.abspath(torch.__file__)) + os.sep
    frame, level = sys._getframe(1), 1
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not (path.startswith(here) or path.startswith(torch_dir)):
            return level
        frame, level = frame.f_back, level + 1
    return 1


def apply_status(group, group_index: int, pending: PendingFit, owner: str, statistic: str) -> bool:
    """Acts on a read-back fit status. Returns True when the fit is done (group['fit'] set)."""
    median, mad, status = pending.host.tolist()
    status = int(status)
    if status == NON_FINITE:
        raise ValueError(
            f"{owner}: the temperature fit of param group {group_index} found non-finite "
            f"statistics (median={median}, MAD={mad}) of {statistic}: the gradients contain "
            "inf or NaN. The fit step changed neither the group's parameters nor its state."
        )
    if status == PENDING:
        return False
    if status == ZERO_MAD:
        warnings.warn(
            f"{owner}: the temperature fit of param group {group_index} found a zero MAD "
            f"(median={median}); every step of the transition uses tau = c_eps / |median| "
            "(tmax when the median is 0 as well)",
            stacklevel=user_stacklevel(),
        )
    group["fit"] = {"median": median, "mad": mad}
    return True


def schedule_from_fit(group, steps: int, device, kind: str) -> torch.Tensor:
    """The schedule of a fitted group, recomputed from its stored median and MAD: the same
    op on the same numbers, so a resumed run gets the same bits."""
    fit = group["fit"]
    # torch.full fills on the device; torch.tensor(x, device=...) would copy from pageable
    # host memory, which synchronizes.
    median = torch.full((), fit["median"], dtype=torch.float64, device=device)
    mad = torch.full((), fit["mad"], dtype=torch.float64, device=device)
    return ops.temperature_schedule(
        median,
        mad,
        steps,
        eps=float(group["eps"]),
        newton_iters=int(group["newton_iters"]),
        tmax=float(group["tmax"]),
        kind=kind,
    )
