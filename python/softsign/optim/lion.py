"""Lion and SoftLion: Lion's momentum rule over the element-wise soft-sign step
(softsign/optim/_elementwise.py). Per-parameter state is "exp_avg" (the name lion-pytorch
uses, so its checkpoints load)."""

from __future__ import annotations

import torch

from .._python_step import _one_minus, foreach_rule
from ..reference.options import OPTIONS
from ._base import given
from ._elementwise import ElementwiseOptimizer
from ._warm_start import SourceRule, foreign_source


@foreach_rule("lion", always_buffered=True, exact=False)
def _lion_foreach(g, bufs, op, *, momentum, dampening, nesterov, first_step, coeffs):
    """The unfused Lion rule (fused=False): c = b1 * m + (1 - b1) * g, then
    m = b2 * m + (1 - b2) * g with b2 = momentum = dampening; m is read as 0 on its first
    step."""
    (beta1,) = coeffs
    if first_step:  # b1 * 0 + (1 - b1) g, as the kernels add it: a -0 becomes +0
        d = torch._foreach_mul(g, _one_minus(beta1, op))
        torch._foreach_add_(d, 0.0)
        torch._foreach_copy_(bufs, g)
        torch._foreach_mul_(bufs, _one_minus(dampening, op))
        torch._foreach_add_(bufs, 0.0)
    else:
        # Each average in one pass, by lerp (as pytorch-optimizer's foreach Lion forms
        # them): b1 * buf + (1 - b1) * g up to rounding, where the kernels round both
        # products (nine passes instead of four: see benchmarks/README.md). A c within
        # rounding of 0 may take the other sign.
        d = torch._foreach_lerp(bufs, g, _one_minus(beta1, op))
        torch._foreach_lerp_(bufs, g, _one_minus(dampening, op))
    return d, True


def lion_rule(betas) -> dict:
    """The ops' keywords of Lion with these betas (also lion-pytorch's, for warm starts): the
    "lion" rule, whose buffer moves with momentum = dampening = beta2 and whose one
    coefficient beta1 interpolates the direction from the old buffer."""
    beta1, beta2 = betas
    return dict(
        momentum=float(beta2),
        dampening=float(beta2),
        nesterov=False,
        momentum_rule="lion",
        rule_coeffs=[float(beta1)],
    )


@foreign_source(
    "lion_pytorch", "lion_pytorch.Lion", same_as="Lion", options=("lr", "betas", "weight_decay")
)
def _lion_pytorch(group) -> SourceRule:
    # lion-pytorch keeps no step count and no maximize; its moment is our buffer. Its steps
    # are Lion's with these three options (it has neither maximize nor fused).
    return SourceRule(dict(lion_rule(group["betas"]), maximize=False), ("exp_avg",), None)


class _LionRule(ElementwiseOptimizer):
    """c = beta1 * m + (1 - beta1) * g from the buffer m before its update, which then
    becomes beta2 * m + (1 - beta2) * g; m starts at zero (Note [lion rule])."""

    _buffer = "exp_avg"
    _statistic = "Lion's interpolated directions c"

    @staticmethod
    def _rule(group) -> dict:
        return lion_rule(group["betas"])

    @staticmethod
    def _buffered(group) -> bool:
        return True


class Lion(_LionRule):
    r"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"): for each
    parameter p with gradient g (negated when maximize=True) and buffer m (zeros at first),

        c = beta1 * m + (1 - beta1) * g
        p <- p * (1 - lr * weight_decay) - lr * sign(c)
        m <- beta2 * m + (1 - beta2) * g

    Same defaults and state ("exp_avg") as the lion-pytorch package, whose steps it equals
    (to float32 rounding) and whose state dicts it loads. Every option may also be set per
    param group.

    Args:
        params: parameters or param group dicts, as for any torch.optim.Optimizer.
        lr: step size, >= 0; a float or a one-element tensor. Lion wants a step size 3-10x
            smaller than AdamW's. Default 1e-4.
        betas: (beta1, beta2), each in [0, 1]: beta1 mixes the buffer into the direction,
            beta2 is the buffer's decay. Default (0.9, 0.99).
        weight_decay: decoupled weight decay, >= 0: p *= 1 - lr * weight_decay before the
            update. Default 0.
        maximize: ascend the objective (steps on -g) instead of descending. Default False.
        fused: None picks the fused kernel where the device has one (CPU, CUDA); True
            requires it; False runs plain PyTorch ops. Default None.

    Raises:
        ValueError: an option out of its range.
    """

    _table = OPTIONS["Lion"]

    def __init__(
        self,
        params,
        lr=1e-4,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        *,
        maximize=False,
        fused=None,
    ):
        super().__init__(params, given(locals()))


class SoftLion(_LionRule):
    r"""Lion whose sign becomes tanh(tau * c) over the last part of training, with
    SoftSignum's temperature schedule.

    This is softsign's own extension of the Softsign method to Lion, not part of the paper
    (which softens Signum and Muon) nor of Lion's. Steps 1..S are Lion. At step S + 1 the
    median and MAD of the group's interpolated directions c = beta1 * m + (1 - beta1) * g
    (the values Lion takes the sign of) are fitted once, exactly, on the device, and steps
    S+1..S+T use tanh(tau_j * c) with tau_j falling from sign-like to SGD-like; later steps
    keep tau_{T-1}. S = round(alpha_sign * total_steps), T = total_steps - S, unless
    sign_steps/transition_steps are given. Every option may also be set per param group;
    docs/algorithms.md explains the schedule.

    Args:
        params: parameters or param group dicts, as for any torch.optim.Optimizer.
        lr: step size, >= 0; a float or a one-element tensor. Default 1e-4.
        betas: (beta1, beta2), each in [0, 1], as for Lion. Default (0.9, 0.99).
        weight_decay: decoupled weight decay, >= 0. Default 0.
        total_steps: planned number of step() calls, an integer >= 1; with alpha_sign it
            sets S and T. Required unless both sign_steps and transition_steps are given.
            "auto": the run's length, filled in before the first step by a trainer
            callback (softsign.integrations); a step() before that raises RuntimeError.
        alpha_sign: fraction of total_steps spent in the sign (Lion) phase, in [0, 1].
            Default 0.9.
        sign_steps: explicit S, an integer >= 0. Alias: sign_iters. Default None.
        transition_steps: explicit T, an integer >= 1. Alias: transition_iters.
            Default None.
        eps: saturation level in (0, 1): c_eps = atanh(1 - eps). Default 1e-4.
        newton_iters: Newton steps of each quantile solve, an integer >= 0. Default 10.
        tmax: upper clamp of tau, in [1, 1e38]. Default 1e9.
        maximize: ascend the objective (steps on -g) instead of descending. Default False.
        fused: None picks the fused kernel where the device has one (CPU, CUDA); True
            requires it; False runs plain PyTorch ops. Default None.
        sign_iters: alias of sign_steps. Default None.
        transition_iters: alias of transition_steps. Default None.

    A transition shorter than 2 steps warns (UserWarning), as for SoftSignum.

    Raises:
        ValueError: an option out of its range, or neither total_steps nor both explicit
            counts.
    """

    _table = OPTIONS["SoftLion"]

    def __init__(
        self,
        params,
        lr=1e-4,
        betas=(0.9, 0.99),
        weight_decay=0.0,
        *,
        total_steps=None,
        alpha_sign=0.9,
        sign_steps=None,
        transition_steps=None,
        eps=1e-4,
        newton_iters=10,
        tmax=1e9,
        maximize=False,
        fused=None,
        sign_iters=None,
        transition_iters=None,
    ):
        super().__init__(params, given(locals()))
