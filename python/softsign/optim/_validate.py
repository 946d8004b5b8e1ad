"""Constructor checks shared by the optimizers: ValueError("Invalid ...") before anything."""

from __future__ import annotations

import math
import numbers
import warnings

import torch

from .._fit import user_stacklevel

# The shortest transition that softens anything (docs/algorithms.md, "How long the
# transition must be"): the first temperature of every schedule, tau_0, is fitted to the
# quantile p_0 = 0, the fully saturated (sign-like) regime; only tau_1 on moves towards
# SGD-like steps.
MIN_TRANSITION_STEPS = 2


def check_number(name, value, *, low=None, high=None, low_open=False, integer=False):
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Invalid {name}: a tensor {name} must have one element")
        if value.device.type != "cpu":
            return  # reading a device value would wait for the device
        value = value.item()
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        what = "an integer" if integer else "a finite number"
        raise ValueError(f"Invalid {name}: {value!r} (expected {what})")
    if low is not None and (value < low or (low_open and value == low)):
        op = ">" if low_open else ">="
        raise ValueError(f"Invalid {name}: {value} (expected {op} {low})")
    if high is not None and value > high:
        raise ValueError(f"Invalid {name}: {value} (expected <= {high})")


def check_sgd_options(lr, momentum, dampening, weight_decay, nesterov):
    check_number("learning rate", lr, low=0.0)
    check_number("momentum", momentum, low=0.0, high=1.0)
    check_number("dampening", dampening, low=0.0, high=1.0)
    check_number("weight_decay", weight_decay, low=0.0)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            "Invalid nesterov: Nesterov momentum requires momentum > 0 and dampening = 0"
        )


def check_schedule_options(
    total_steps, alpha_sign, sign_steps, transition_steps, eps, newton_iters, tmax
):
    if total_steps is not None:
        check_number("total_steps", total_steps, low=1, integer=True)
    check_number("alpha_sign", alpha_sign, low=0.0, high=1.0, low_open=True)
    if sign_steps is not None:
        check_number("sign_steps", sign_steps, low=0, integer=True)
    if transition_steps is not None:
        check_number("transition_steps", transition_steps, low=1, integer=True)
    check_number("eps", eps, low=0.0, high=1.0, low_open=True)
    if eps >= 1:
        raise ValueError(f"Invalid eps: {eps} (expected < 1)")
    check_number("newton_iters", newton_iters, low=0, integer=True)
    # tau is used in float32 by the kernels: keep it finite there.
    check_number("tmax", tmax, low=1.0, high=1e38)
    if total_steps is None and (sign_steps is None or transition_steps is None):
        raise ValueError(
            "Invalid schedule: pass total_steps (the transition starts at "
            "round(alpha_sign * total_steps)), or both sign_steps and transition_steps"
        )


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


# check_schedule_options' arguments, in order, as param group keys.
SCHEDULE_KEYS = (
    "total_steps",
    "alpha_sign",
    "sign_steps",
    "transition_steps",
    "eps",
    "newton_iters",
    "tmax",
)
_ALIASES = (("sign_steps", "sign_iters"), ("transition_steps", "transition_iters"))


def group_aliases(group: dict) -> dict:
    """A param group dict with sign_iters/transition_iters (the public code's names) under
    the names the optimizers read."""
    for name, alias_name in _ALIASES:
        if alias_name in group:
            group[name] = alias(name, group.get(name), alias_name, group.pop(alias_name))
    return group


def alias(name, value, alias_name, alias_value):
    """The value of an option that also has an alias (the public code's name)."""
    if alias_value is None:
        return value
    if value is not None and value != alias_value:
        raise ValueError(f"Invalid {alias_name}: {alias_value} contradicts {name}={value}")
    return alias_value


def check_grad(owner: str, grad: torch.Tensor) -> None:
    """A gradient the optimizers can step on: dense and real."""
    if grad.is_sparse:
        raise RuntimeError(f"{owner} does not support sparse gradients")
    if torch.is_complex(grad):
        raise RuntimeError(f"{owner} does not support complex gradients")
