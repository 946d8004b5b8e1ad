"""The temperature schedule of a param group (docs/algorithms.md sections 2 and 3): its
phases, its fit and the temperature of each step, for every soft optimizer.

The fit runs on the device inside step() (torch.ops.softsign.fit_temperature); its
status reaches the host through a non-blocking copy that a later step() reads once the
copy is done (an event query, never a wait). Until then the step uses the device fit,
which is NaN for a failed fit, so the kernels leave parameters untouched. Each step's
temperature is computed on the device from the fit alone (torch.ops.softsign.temperature_at),
at a cost that does not depend on the transition's length.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ._library import ops
from .reference.temperature import resolve_phases as _phases_of

# Mirrors softsign::ops::FitStatus (csrc/include/softsign/ops.h).
PENDING, OK, ZERO_MAD, NON_FINITE = 0, 1, 2, 3


# total_steps="auto": the run's length, filled in by a trainer callback before the first
# step (softsign.integrations.fill_total_steps).
AUTO = "auto"


def unfilled(group) -> bool:
    """Whether the group's schedule still waits for its total_steps: "auto", and not both
    explicit sign_steps and transition_steps (which make total_steps unused)."""
    return group.get("total_steps") == AUTO and (
        group.get("sign_steps") is None or group.get("transition_steps") is None
    )


def resolve_phases(group) -> tuple[float, int]:
    """(S, T) of a group; S is inf for a group with no schedule options (Signum, Muon)."""
    if group.get("total_steps", None) is None and group.get("sign_steps", None) is None:
        return math.inf, 1
    return _phases_of(
        group["total_steps"], group["alpha_sign"], group["sign_steps"], group["transition_steps"]
    )


@dataclass
class PendingFit:
    """A fit computed on the device whose status the host has not read yet."""

    stats: torch.Tensor  # float64 [median, mad, status] on the device
    fit: torch.Tensor  # float64 [median, mad] on the device (NaN unless usable)
    host: torch.Tensor  # CPU copy of stats, filled asynchronously
    event: torch.Event | None

    @classmethod
    def launch(cls, stats, fit):
        if stats.device.type == "cpu":
            return cls(stats, fit, stats, None)
        host = torch.empty(3, dtype=torch.float64, pin_memory=True)
        host.copy_(stats, non_blocking=True)
        event = torch.Event(device=stats.device)
        event.record()
        return cls(stats, fit, host, event)

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


class GroupSchedule:
    """The schedule of one param group: which phase a step is in, the fit (launched on the
    device when due, its status read back without waiting) and the temperature of a step.

    What a checkpoint needs stays in the group dict as JSON values: "step" (the group's step
    number k) and "fit" ({"median", "mad"} once fitted, else None). Everything held here is
    rebuilt from them: a fit whose status is still on its way, and the fit as a device
    tensor."""

    def __init__(self, group: dict, index: int, kind: str, owner: str, statistic: str):
        self.group = group
        self.index = index  # the group's position, for messages
        self.kind = kind  # "tanh" or "algebraic": which c_eps the fit uses
        self.owner = owner
        self.statistic = statistic  # what the fit reads, for its errors
        self.pending: PendingFit | None = None
        self._cached: tuple[tuple, torch.Tensor] | None = None

    def phases(self) -> tuple[float, int]:
        return resolve_phases(self.group)

    def temperature(
        self,
        k: int,
        device,
        has_grads: Callable[[], bool],
        measure: Callable[[], tuple[torch.Tensor, torch.Tensor]],
        found_inf: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """The temperature (a 0-dim float64 tensor on `device`) of step k, or None in the sign
        phase or while the fit waits for gradients (`has_grads()`: whether the group has an
        element with a gradient; asked only then). Fits when due from `measure()`, the median
        and MAD of the group's statistic. With `found_inf` (AMP may skip this step on the
        device) the fit is launched again while an earlier one's status is on its way."""
        sign_steps, steps = self.phases()
        if k <= sign_steps:
            return None
        pending = self.pending
        if self.group["fit"] is None and pending is not None and pending.ready():
            self.pending = None
            if not self._apply(pending):
                pending = None  # AMP skipped the fit step: fit again
        if self.group["fit"] is None:
            if not has_grads():
                return None  # nothing to update; the fit waits for gradients
            if pending is None or found_inf is not None:
                pending = self._launch(*measure(), found_inf, pending)
                if pending.ready():
                    self.pending = None
                    self._apply(pending)
                else:
                    self.pending = pending
        fit = self._fit_tensor(device) if self.group["fit"] is not None else pending.fit
        return self._temperature(fit, k - sign_steps - 1, steps)

    def last_temperature(self) -> float | None:
        """The temperature of the group's last step as a number; None in the sign phase or
        before the fit. Waits for a fit still on its way."""
        sign_steps, steps = self.phases()
        k = self.group["step"]
        if k <= sign_steps:
            return None
        self.settle(wait=True)
        if self.group["fit"] is None:
            return None
        fit = self._fit_tensor(self.group["params"][0].device)
        return float(self._temperature(fit, k - sign_steps - 1, steps))

    def settle(self, wait: bool) -> None:
        """Reads the status of a fit still on its way (`wait`: even if that waits)."""
        if self.pending is None:
            return
        pending, self.pending = self.pending, None
        if wait:
            pending.wait()
        self._apply(pending)

    def _launch(self, median, mad, found_inf, previous) -> PendingFit:
        if found_inf is not None:
            found_inf = found_inf.to(median.device, non_blocking=True)
        stats, fit = ops.fit_temperature(median, mad, found_inf=found_inf)
        if previous is not None:
            # An earlier fit may have succeeded after all: keep it (decided on the device).
            done = previous.stats[2] != 0
            stats = torch.where(done, previous.stats, stats)
            fit = torch.where(done, previous.fit, fit)
        return PendingFit.launch(stats, fit)

    def _apply(self, pending: PendingFit) -> bool:
        """Acts on a read-back fit status. Returns True when the fit is done (its median and
        MAD stored in the group)."""
        median, mad, status = pending.host.tolist()
        status = int(status)
        if status == NON_FINITE:
            raise ValueError(
                f"{self.owner}: the temperature fit of param group {self.index} found "
                f"non-finite statistics (median={median}, MAD={mad}) of {self.statistic}: the "
                "gradients contain inf or NaN. The fit step changed neither the group's "
                "parameters nor its state."
            )
        if status == PENDING:
            return False
        if status == ZERO_MAD:
            warnings.warn(
                f"{self.owner}: the temperature fit of param group {self.index} found a zero "
                f"MAD (median={median}); every step of the transition uses tau = c_eps / "
                "|median| (tmax when the median is 0 as well)",
                stacklevel=user_stacklevel(),
            )
        self.group["fit"] = {"median": median, "mad": mad}
        return True

    def _temperature(self, fit: torch.Tensor, index: int, steps: int) -> torch.Tensor:
        """tau_index (0-dim float64, on fit's device; an index past the transition gives its
        last temperature), computed on the device from the fit alone."""
        group = self.group
        return ops.temperature_at(
            fit[0],
            fit[1],
            index,
            steps,
            eps=float(group["eps"]),
            newton_iters=int(group["newton_iters"]),
            tmax=float(group["tmax"]),
            kind=self.kind,
        )

    def _fit_tensor(self, device) -> torch.Tensor:
        """The stored fit as a float64 [median, mad] tensor on `device`: the same numbers
        whether the run was resumed or not, so a resumed run gets the same bits."""
        fit = self.group["fit"]
        key = (fit["median"], fit["mad"], str(device))
        if self._cached is None or self._cached[0] != key:
            # fill_ writes on the device; torch.tensor(x, device=...) would copy from
            # pageable host memory, which synchronizes.
            tensor = torch.empty(2, dtype=torch.float64, device=device)
            tensor[0].fill_(fit["median"])
            tensor[1].fill_(fit["mad"])
            self._cached = (key, tensor)
        return self._cached[1]
