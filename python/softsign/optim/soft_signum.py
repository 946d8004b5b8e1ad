"""SoftSignum and Signum: the heavy-ball momentum rule over the element-wise soft-sign step
(softsign/optim/_elementwise.py). Per-parameter state is the momentum buffer only."""

from __future__ import annotations

from ..reference.options import OPTIONS
from ._base import given
from ._elementwise import ElementwiseOptimizer


class _HeavyBall(ElementwiseOptimizer):
    """d = buf = momentum * buf + (1 - dampening) * g (buf = g on the first step), or
    g + momentum * buf with Nesterov; momentum 0 keeps no buffer (d = g)."""

    _buffer = "momentum_buffer"

    @staticmethod
    def _rule(group) -> dict:
        return dict(
            momentum=float(group["momentum"]),
            dampening=float(group["dampening"]),
            nesterov=bool(group["nesterov"]),
        )

    @staticmethod
    def _buffered(group) -> bool:
        return group["momentum"] != 0


class SoftSignum(_HeavyBall):
    r"""Signum whose sign becomes tanh(tau * d) over the last part of training.

    Steps 1..S are Signum (the sign of the heavy-ball momentum direction d). At step S + 1
    the median and MAD of the post-momentum directions of the group are fitted once
    (exactly, on the device), and steps S+1..S+T use tanh(tau_j * d) with tau_j falling
    from sign-like to SGD-like; later steps keep tau_{T-1}. S = round(alpha_sign *
    total_steps), T = total_steps - S, unless sign_steps/transition_steps are given.
    Every option may also be set per param group. The math, and where it differs from the
    authors' code: docs/algorithms.md.

    Args:
        params: parameters or param group dicts, as for any torch.optim.Optimizer.
        lr: step size, >= 0; a float or a one-element tensor (a device tensor is read on
            the device, never by the host). Default 1e-3.
        momentum: heavy-ball momentum in [0, 1]: buf = momentum * buf + (1 - dampening) * g
            (buf = g on the first step). 0 steps on the gradient's sign with no buffer
            (signSGD). Default 0.9.
        dampening: dampening of the gradient in the buffer, in [0, 1]. Default 0.
        weight_decay: decoupled weight decay, >= 0: p *= 1 - lr * weight_decay before the
            update. Default 0.
        nesterov: use d = g + momentum * buf instead of d = buf. Needs momentum > 0 and
            dampening = 0. Default False.
        total_steps: planned number of step() calls, an integer >= 1; with alpha_sign it
            sets S and T. Required unless both sign_steps and transition_steps are given.
            "auto": the run's length, filled in before the first step by a trainer
            callback (softsign.integrations); a step() before that raises RuntimeError.
        alpha_sign: fraction of total_steps spent in the sign phase, in [0, 1]:
            S = round(alpha_sign * total_steps) (half away from zero). The paper reports
            stable results for 0.3 to 0.9. Default 0.9.
        sign_steps: explicit S, an integer >= 0; overrides the one derived from
            total_steps. Alias: sign_iters (the authors' name). Default None.
        transition_steps: explicit T, an integer >= 1; overrides total_steps - S.
            Alias: transition_iters. Default None.
        eps: saturation level in (0, 1): tau_j is chosen so that tanh reaches 1 - eps at
            the quantile q_j, c_eps = atanh(1 - eps). Default 1e-4.
        newton_iters: Newton steps of each quantile solve, an integer >= 0. Default 10.
        tmax: upper clamp of tau, in [1, 1e38] (the lower clamp is 1). Default 1e9.
        maximize: ascend the objective (steps on -g) instead of descending. Default False.
        fused: None picks the fused kernel where the device has one (CPU, CUDA); True
            requires it; False runs plain PyTorch ops. Default None.
        sign_iters: alias of sign_steps. Default None.
        transition_iters: alias of transition_steps. Default None.

    A transition shorter than 2 steps warns (UserWarning): its only temperature is fitted
    to the saturated, sign-like regime, so the run never softens (with alpha_sign = 0.9,
    total_steps must be at least 16). Asking for no transition at all (alpha_sign = 1, or
    sign_steps >= total_steps) does not warn.

    Raises:
        ValueError: an option out of its range, or neither total_steps nor both explicit
            counts.
    """

    _table = OPTIONS["SoftSignum"]

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
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


class Signum(_HeavyBall):
    r"""Signum: p <- p - lr * sign(d), d the (Nesterov) heavy-ball momentum of the gradient,
    with decoupled weight decay. SoftSignum's sign phase, forever (docs/algorithms.md).

    Args:
        params: parameters or param group dicts, as for any torch.optim.Optimizer.
        lr: step size, >= 0; a float or a one-element tensor. Default 1e-3.
        momentum: heavy-ball momentum in [0, 1]: buf = momentum * buf + (1 - dampening) * g
            (buf = g on the first step); 0 is signSGD, with no buffer. Default 0.9.
        dampening: dampening of the gradient in the buffer, in [0, 1]. Default 0.
        weight_decay: decoupled weight decay, >= 0: p *= 1 - lr * weight_decay before the
            update. Default 0.
        nesterov: use d = g + momentum * buf instead of d = buf. Needs momentum > 0 and
            dampening = 0. Default False.
        maximize: ascend the objective (steps on -g) instead of descending. Default False.
        fused: None picks the fused kernel where the device has one (CPU, CUDA); True
            requires it; False runs plain PyTorch ops. Default None.

    Raises:
        ValueError: an option out of its range.
    """

    _table = OPTIONS["Signum"]

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        *,
        maximize=False,
        fused=None,
    ):
        super().__init__(params, given(locals()))
