"""The temperature-schedule bookkeeping shared by SoftSignum and SoftMuon (docs/algorithms.md
section 3).

Group state lives in the param group as JSON values: "step" (the group's step number k,
counted on every step() call, like an LR scheduler) and "fit" ({"median", "mad"} once the
temperature is fitted, else None). The fit itself runs on the device (see softsign/_fit.py);
this base decides when to fit, which schedule entry a step uses, and reads fit statuses
back without waiting.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.optim import Optimizer

from .._fit import PendingFit, apply_status, resolve_phases, schedule_from_fit
from .._library import ops
from ._validate import group_aliases


class ScheduledOptimizer(Optimizer):
    """An Optimizer whose groups may switch to a fitted temperature schedule.

    Subclasses set `_kind` ("tanh" or "algebraic") and call `_step_temperature` once per
    group and step before changing any parameter."""

    _kind = "tanh"
    _statistic = "the post-momentum directions"  # what the fit reads (for its errors)

    def __init__(self, params, defaults):
        super().__init__(params, dict(defaults, step=0, fit=None))
        self._init_runtime()

    def _init_runtime(self):
        self._pending: dict[int, PendingFit] = {}
        self._schedules: dict[int, tuple[tuple, torch.Tensor]] = {}

    def add_param_group(self, param_group):
        """torch's add_param_group between the subclass's two hooks: `_prepare_group` on
        the user's dict (aliases already resolved), `_check_group` on the group as added,
        which is taken out again if the check fails: a refused group leaves the optimizer
        as it was."""
        super().add_param_group(self._prepare_group(group_aliases(dict(param_group))))
        try:
            self._check_group(self.param_groups[-1])
        except Exception:
            self.param_groups.pop()
            raise

    def _prepare_group(self, group: dict) -> dict:
        return group

    def _check_group(self, group: dict) -> None:
        """Raises for a group the optimizer cannot step (every group's options are checked,
        not only the constructor's: a group dict may set any)."""

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("step", 0)
            group.setdefault("fit", None)
        self._init_runtime()

    def state_dict(self):
        """torch.optim's state dict; a group's "fit" is always {"median", "mad"} (NaN before
        the fit), so that the state dict of a fresh optimizer has the keys of a fitted one:
        torch.distributed.checkpoint loads into such a template."""
        for gi in list(self._pending):
            self._resolve_pending(gi, wait=True)
        sd = super().state_dict()
        for group in sd["param_groups"]:  # copies made by Optimizer.state_dict
            if "fit" in group and group["fit"] is None:
                group["fit"] = {"median": math.nan, "mad": math.nan}
        return sd

    def load_state_dict(self, state_dict):
        groups = []
        for group in state_dict["param_groups"]:
            fit = group.get("fit")
            if isinstance(fit, dict) and not math.isfinite(fit["median"]):
                group = dict(group, fit=None)  # a fit is never stored non-finite
            groups.append(group)
        super().load_state_dict(dict(state_dict, param_groups=groups))
        self._init_runtime()

    def _has_schedule(self, group) -> bool:
        return True

    def temperature(self, group: int = 0) -> float | None:
        """The temperature tau used by the group's last step; None in the sign phase or
        before the fit. Reads a device value: call it for logging, not in a hot loop."""
        g = self.param_groups[group]
        if not self._has_schedule(g):
            return None
        sign_steps, steps = resolve_phases(g)
        k = g["step"]
        if k <= sign_steps:
            return None
        if group in self._pending:
            self._resolve_pending(group, wait=True)
        if g["fit"] is None:
            return None
        schedule = self._schedule(group, g, steps, g["params"][0].device)
        return float(schedule[min(k - sign_steps - 1, steps - 1)])

    def _step_temperature(
        self,
        gi: int,
        group,
        k: int,
        device,
        has_grads: Callable[[], bool],
        fit: Callable[[PendingFit | None], PendingFit],
        refit: bool = False,
    ) -> torch.Tensor | None:
        """The temperature (a 0-dim float64 tensor on `device`) of group gi's step k, or None
        in the sign phase or while the fit waits for gradients (`has_grads()`: whether the
        group has an element with a gradient; asked only then). Fits when due:
        `fit(previous)` launches the fit on the device; `refit` (AMP may have skipped the
        step) launches it again while the previous one is still on its way."""
        sign_steps, steps = resolve_phases(group)
        if k <= sign_steps:
            return None
        pending = self._pending.get(gi)
        if group["fit"] is None and pending is not None and pending.ready():
            del self._pending[gi]
            if not apply_status(group, gi, pending, type(self).__name__, self._statistic):
                pending = None  # AMP skipped the fit step: fit again
        if group["fit"] is None:
            if not has_grads():
                return None  # nothing to update; the fit waits for gradients
            if pending is None or refit:
                pending = fit(pending)
                if pending.ready():
                    apply_status(group, gi, pending, type(self).__name__, self._statistic)
                else:
                    self._pending[gi] = pending
        if group["fit"] is not None:
            schedule = self._schedule(gi, group, steps, device)
        else:
            schedule = pending.schedule
        return schedule[min(k - sign_steps - 1, steps - 1)]

    def _launch_fit(self, group, median, mad, steps, found_inf, previous) -> PendingFit:
        stats, schedule = ops.fit_temperature(
            median,
            mad,
            steps,
            eps=float(group["eps"]),
            newton_iters=int(group["newton_iters"]),
            tmax=float(group["tmax"]),
            kind=self._kind,
            found_inf=found_inf,
        )
        if previous is not None:
            # An earlier fit may have succeeded after all: keep it (decided on the device).
            done = previous.stats[2] != 0
            stats = torch.where(done, previous.stats, stats)
            schedule = torch.where(done, previous.schedule, schedule)
        return PendingFit.launch(stats, schedule)

    def _resolve_pending(self, gi, wait):
        pending = self._pending.pop(gi)
        if wait:
            pending.wait()
        apply_status(self.param_groups[gi], gi, pending, type(self).__name__, self._statistic)

    def _schedule(self, gi, group, steps, device) -> torch.Tensor:
        fit = group["fit"]
        key = (
            fit["median"],
            fit["mad"],
            steps,
            group["eps"],
            group["newton_iters"],
            group["tmax"],
            str(device),
        )
        cached = self._schedules.get(gi)
        if cached is None or cached[0] != key:
            cached = (key, schedule_from_fit(group, steps, device, self._kind))
            self._schedules[gi] = cached
        return cached[1]
