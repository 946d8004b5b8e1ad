"""Checks of the optimizers beyond an option's range (those are in the option table,
softsign/reference/options.py): the transition-length warning and the gradients."""

from __future__ import annotations

import math
import warnings

import torch

from .._fit import user_stacklevel

# The shortest transition that softens anything (docs/algorithms.md, "How long the
# transition must be"): the first temperature of every schedule, tau_0, is fitted to the
# quantile p_0 = 0, the fully saturated (sign-like) regime; only tau_1 on moves towards
# SGD-like steps.
MIN_TRANSITION_STEPS = 2


def _min_total_steps(alpha_sign: float) -> int:
    """The smallest total_steps whose derived transition, total_steps minus
    round(alpha_sign * total_steps), lasts MIN_TRANSITION_STEPS (alpha_sign < 1). That length
    never falls as total_steps grows, so the search starts just below the answer."""
    n = max(1, math.floor((MIN_TRANSITION_STEPS - 0.5) / (1.0 - alpha_sign)) - 2)
    while n - math.floor(alpha_sign * n + 0.5) < MIN_TRANSITION_STEPS:
        n += 1
    return n


def check_transition_length(group: dict, owner: str) -> None:
    """Warns (UserWarning) when a group's schedule options leave a transition shorter than
    MIN_TRANSITION_STEPS. Options that ask for no transition within total_steps
    (alpha_sign = 1, or sign_steps >= total_steps) do not warn: that run is Signum (Muon)."""
    total, alpha = group["total_steps"], float(group["alpha_sign"])
    sign_steps, transition_steps = group["sign_steps"], group["transition_steps"]
    if total == "auto" and transition_steps is None:
        return  # checked when a trainer callback fills it (integrations.fill_total_steps)
    least = MIN_TRANSITION_STEPS
    if transition_steps is not None:
        length = int(transition_steps)
        what = f"transition_steps={length} is"
        fix = f"pass transition_steps >= {least}"
    elif sign_steps is None:
        if alpha >= 1:
            return
        sign = math.floor(alpha * total + 0.5)
        length = total - sign
        what = (
            f"total_steps={total} with alpha_sign={alpha} leaves a transition of {length} "
            f"step(s) after round(alpha_sign * total_steps) = {sign} sign steps,"
        )
        fix = (
            f"raise total_steps (to at least {_min_total_steps(alpha)} for "
            f"alpha_sign={alpha}), lower alpha_sign, or pass transition_steps >= {least}"
        )
    else:
        if sign_steps >= total:
            return
        length = total - int(sign_steps)
        what = (
            f"total_steps={total} with sign_steps={sign_steps} leaves a transition of "
            f"{length} step(s),"
        )
        fix = f"lower sign_steps (to at most {total - least}) or raise total_steps"
    if length >= least:
        return
    warnings.warn(
        f"{owner}: {what} shorter than the {least} steps a transition needs to soften "
        "anything (its first temperature is fitted to the saturated, sign-like regime, and "
        f"the steps after it keep the last temperature); {fix}",
        UserWarning,
        stacklevel=user_stacklevel(),
    )


def check_grad(owner: str, grad: torch.Tensor) -> None:
    """A gradient the optimizers can step on: dense and real."""
    if grad.is_sparse:
        raise RuntimeError(f"{owner} does not support sparse gradients")
    if torch.is_complex(grad):
        raise RuntimeError(f"{owner} does not support complex gradients")
