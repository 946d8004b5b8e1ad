"""Reference of the quantile temperature schedule (docs/algorithms.md sections 2 and 3),
float64."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import torch

__all__ = [
    "GroupSchedule",
    "lower_median",
    "median_mad",
    "resolve_phases",
    "saturation_constant",
    "temperature_at",
    "temperature_schedule",
]


def saturation_constant(kind: str, eps: float) -> float:
    """c_eps: where the map reaches 1 - eps (atanh for tanh, y/sqrt(1-y^2) for algebraic)."""
    y = 1.0 - eps
    if kind == "tanh":
        return math.atanh(y)
    if kind == "algebraic":
        return y / math.sqrt(1.0 - y * y)
    raise ValueError(f"Invalid kind: {kind!r} (expected 'tanh' or 'algebraic')")


def resolve_phases(total_steps, alpha_sign, sign_steps, transition_steps):
    """(S, T): explicit counts win; else S = round(alpha_sign * total_steps), T = rest.

    round() is half away from zero (floor(x + 0.5)), the same in C++ and Python.
    """
    if sign_steps is not None and transition_steps is not None:
        return int(sign_steps), max(int(transition_steps), 1)
    if total_steps is None:
        raise ValueError("pass total_steps, or both sign_steps and transition_steps")
    s = int(math.floor(alpha_sign * total_steps + 0.5)) if sign_steps is None else int(sign_steps)
    t = int(total_steps) - s if transition_steps is None else int(transition_steps)
    return s, max(t, 1)  # T = 0 (alpha_sign = 1): a one-step schedule for any step beyond


def lower_median(x: torch.Tensor) -> torch.Tensor:
    """The element of rank floor((n - 1) / 2) in sorted order (torch.median's choice)."""
    v, _ = torch.sort(x.reshape(-1))
    return v[(v.numel() - 1) // 2]


def median_mad(tensors) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact lower median and MAD of all elements, float64, by sorting the concatenation."""
    x = torch.cat([t.detach().reshape(-1).double() for t in tensors])
    mu = lower_median(x)
    return mu, lower_median((x - mu).abs())


def temperature_at(median, mad, index, steps, *, eps=1e-4, newton_iters=10, tmax=1e9, kind="tanh"):
    """tau_index (a float) of the folded-Cauchy quantile schedule of `steps` temperatures; an
    index past the end gives the last one (the phase after the transition)."""
    mu = float(median)
    s = float(mad)
    c = saturation_constant(kind, eps)
    j = min(int(index), int(steps) - 1)
    if s == 0.0:
        q = abs(mu)
    else:
        p = j / steps
        q = s * math.tan(math.pi * p / 2) + abs(mu)
        for _ in range(newton_iters):
            z1 = (q - mu) / s
            z2 = (-q - mu) / s
            f = (0.5 + math.atan(z1) / math.pi) - (0.5 + math.atan(z2) / math.pi)
            fp = (1 / (math.pi * (1 + z1 * z1)) + 1 / (math.pi * (1 + z2 * z2))) / s
            q = max(0.0, q - (f - p) / fp)
    return tmax if q == 0.0 else min(max(c / q, 1.0), tmax)


def temperature_schedule(median, mad, steps, *, eps=1e-4, newton_iters=10, tmax=1e9, kind="tanh"):
    """tau_0..tau_{steps-1} (float64) from the folded-Cauchy quantiles of |X|."""
    options = dict(eps=eps, newton_iters=newton_iters, tmax=tmax, kind=kind)
    taus = [temperature_at(median, mad, j, steps, **options) for j in range(steps)]
    return torch.tensor(taus, dtype=torch.float64)


class GroupSchedule:
    """The phases and the once-fitted schedule of one group: `temperature(k, statistic)` is
    tau of the group's step k, fitted at the first step after S on which `statistic()` (the
    values the fit reads) has elements; None in the sign phase and until then. Options
    without a schedule (Signum's, Muon's) leave the group in the sign phase forever.
    `fit` is (median, mad) once fitted; each step's temperature is computed from it."""

    def __init__(self, options: Mapping, kind: str, statistic: str):
        if "alpha_sign" in options:
            self.S, self.T = resolve_phases(
                options["total_steps"],
                options["alpha_sign"],
                options["sign_steps"],
                options["transition_steps"],
            )
        else:
            self.S, self.T = math.inf, 1
        self.options = options
        self.kind = kind
        self.statistic = statistic
        self.fit = None

    @property
    def schedule(self) -> torch.Tensor | None:
        """All T temperatures once fitted (for tests of short schedules), else None."""
        if self.fit is None:
            return None
        return temperature_schedule(
            *self.fit,
            self.T,
            eps=self.options["eps"],
            newton_iters=self.options["newton_iters"],
            tmax=self.options["tmax"],
            kind=self.kind,
        )

    def temperature(self, k: int, statistic: Callable[[], list]) -> float | None:
        if k <= self.S:
            return None
        if self.fit is None:
            values = statistic()
            if sum(v.numel() for v in values) == 0:
                return None  # no gradients: the fit waits
            mu, s = median_mad(values)
            # Any NaN makes the exact median NaN (as torch.median); sorting would not.
            nan = any(bool(torch.isnan(v).any()) for v in values)
            if nan or not (math.isfinite(mu) and math.isfinite(s)):
                raise ValueError(f"non-finite statistics ({self.statistic}) at the fit step")
            self.fit = (float(mu), float(s))
        return temperature_at(
            *self.fit,
            k - self.S - 1,
            self.T,
            eps=self.options["eps"],
            newton_iters=self.options["newton_iters"],
            tmax=self.options["tmax"],
            kind=self.kind,
        )
