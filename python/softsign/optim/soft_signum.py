"""SoftSignum and Signum as torch.optim.Optimizer subclasses over torch.ops.softsign.

Group state lives in the param group as JSON values: "step" (the group's step number k,
counted on every step() call, like an LR scheduler) and "fit" ({"median", "mad"} once
the temperature is fitted, else None). Per-parameter state is the momentum buffer only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .. import _python_step, _select
from .._fit import resolve_phases
from .._library import ops
from . import _sharding
from ._scheduled import ScheduledOptimizer
from ._validate import (
    SCHEDULE_KEYS,
    alias,
    check_schedule_options,
    check_sgd_options,
    check_transition_length,
)

_FUSED_DEVICES = ("cpu", "cuda")


@dataclass
class _Bucket:
    """Params of one device whose momentum buffers exist (or are created now)."""

    keys: list = field(default_factory=list)  # the parameters (state keys)
    params: list = field(default_factory=list)  # what the ops update: local shards of DTensors
    grads: list = field(default_factory=list)
    sharded: bool = False  # holds DTensors


@dataclass
class _Plan:
    k: int
    buckets: dict  # (device, first_step) -> _Bucket

    def has_grads(self) -> bool:
        """Whether an element has a gradient: 0-element params give the fit nothing. Asked
        of the parameters (a DTensor's global size), not of local shards: every rank of a
        sharded group must answer alike, or the fit's collectives would not pair up."""
        return any(k.numel() for b in self.buckets.values() for k in b.keys)


class _SoftSignBase(ScheduledOptimizer):
    _kind = "tanh"

    def __init__(self, params, defaults):
        super().__init__(params, defaults)
        # GradScaler passes grad_scale/found_inf instead of unscaling and syncing.
        self._step_supports_amp_scaling = True

    def _check_group(self, group):
        for p in group["params"]:
            if torch.is_complex(p):
                raise ValueError(f"{type(self).__name__} does not support complex parameters")
        fused = group.get("fused")
        if fused and any(p.device.type not in _FUSED_DEVICES for p in group["params"]):
            raise ValueError(f"Invalid fused=True: fused kernels exist for {_FUSED_DEVICES} only")
        check_sgd_options(
            group["lr"],
            group["momentum"],
            group["dampening"],
            group["weight_decay"],
            group["nesterov"],
        )
        if "alpha_sign" in group:
            check_schedule_options(*(group[k] for k in SCHEDULE_KEYS))
            check_transition_length(group, type(self).__name__)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        # Checks and fits of every group come first: an error leaves all parameters as
        # they were.
        plans = [self._plan(group) for group in self.param_groups]
        taus = [
            self._step_temperature(gi, group, plan, grad_scale, found_inf)
            for gi, (group, plan) in enumerate(zip(self.param_groups, plans))
        ]
        for group, plan, tau in zip(self.param_groups, plans, taus):
            group["step"] = plan.k
            self._update(group, plan, tau, grad_scale, found_inf)
        return loss

    # -- internals --------------------------------------------------------------------
    def _plan(self, group) -> _Plan:
        buckets: dict = {}
        name = type(self).__name__
        state = self.state
        with_momentum = group["momentum"] != 0
        for p, param, grad, sharded in _sharding.with_grads(group["params"], name):
            st = state.get(p)
            fresh = with_momentum and (st is None or "momentum_buffer" not in st)
            bucket = buckets.get((p.device, fresh))
            if bucket is None:
                bucket = buckets[(p.device, fresh)] = _Bucket()
            bucket.keys.append(p)
            bucket.params.append(param)
            bucket.grads.append(grad)
            bucket.sharded |= sharded
        return _Plan(k=group["step"] + 1, buckets=buckets)

    def _directions(self, group, plan, grad_scale):
        """Post-momentum directions d of the group, on its first device (the fit statistic)."""
        dirs = []
        first_device = None
        for (device, fresh), b in plan.buckets.items():
            first_device = first_device or device
            bufs = [] if fresh or group["momentum"] == 0 else self._buffers(b.keys, b.sharded)
            scale = None if grad_scale is None else grad_scale.to(device, non_blocking=True)
            dirs += ops.soft_sign_direction(
                b.grads,
                bufs,
                momentum=float(group["momentum"]),
                dampening=float(group["dampening"]),
                nesterov=bool(group["nesterov"]),
                maximize=bool(group["maximize"]),
                first_step=fresh,
                grad_scale=scale,
            )
        return [d.to(first_device, non_blocking=True) for d in dirs], first_device

    def _step_temperature(self, gi, group, plan, grad_scale, found_inf):
        if not group["params"]:
            return None  # an empty group has nothing to fit or update
        if plan.buckets:
            device = next(iter(plan.buckets))[0]
        else:
            device = group["params"][0].device
        return super()._step_temperature(
            gi,
            group,
            plan.k,
            device,
            plan.has_grads,
            lambda previous: self._fit(group, plan, grad_scale, found_inf, previous),
            refit=found_inf is not None,
        )

    def _statistics(self, group, plan, grad_scale):
        """Median and MAD of the group's post-momentum directions, and their device. A group
        on one device is read in place; one spread over devices gathers its directions."""
        keys = [k for b in plan.buckets.values() for k in b.keys]
        layout = _sharding.StatisticLayout.of(keys, type(self).__name__)
        if layout is not None:
            return self._sharded_statistics(group, plan, grad_scale, layout)
        devices = {device for device, _ in plan.buckets}
        if len(devices) > 1:
            dirs, device = self._directions(group, plan, grad_scale)
            return (*ops.median_mad(dirs), device)
        (device,) = devices
        existing = plan.buckets.get((device, False), _Bucket())
        fresh = plan.buckets.get((device, True), _Bucket())
        momentum = float(group["momentum"])
        median, mad = ops.direction_median_mad(
            existing.grads,
            self._buffers(existing.keys, existing.sharded) if momentum != 0 else [],
            fresh.grads,
            momentum=momentum,
            dampening=float(group["dampening"]),
            nesterov=bool(group["nesterov"]),
            maximize=bool(group["maximize"]),
            grad_scale=None if grad_scale is None else grad_scale.to(device, non_blocking=True),
        )
        return median, mad, device

    def _sharded_statistics(self, group, plan, grad_scale, layout):
        """The statistic of a group of DTensors: each rank histograms the local elements it
        counts, and the histograms are summed over the shard dimensions (Note [sharded
        parameters]), so every rank selects the same global median and MAD."""
        devices = {device for device, _ in plan.buckets}
        if len(devices) > 1:
            raise ValueError(
                f"{type(self).__name__}: a param group of DTensors spans devices {devices}"
            )
        (device,) = devices
        sources = []
        for (_, fresh), b in plan.buckets.items():
            counted = [i for i, k in enumerate(b.keys) if layout.counts_here(k)]
            grads = [b.grads[i] for i in counted]
            bufs = [] if fresh or group["momentum"] == 0 else self._buffers(b.keys, b.sharded)
            bufs = [bufs[i] for i in counted] if bufs else []
            # The histograms read a grad and its buffer with one index (Note [step layouts]).
            grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
            bufs = [
                buf if buf.stride() == g.stride() else torch.empty_like(g).copy_(buf)
                for g, buf in zip(grads, bufs)
            ]
            sources.append(_select.Source(grads, bufs, fresh))
        return (
            *_select.median_mad(
                sources,
                device=device,
                hook=layout.hook(),
                momentum=float(group["momentum"]),
                dampening=float(group["dampening"]),
                nesterov=bool(group["nesterov"]),
                maximize=bool(group["maximize"]),
                grad_scale=None if grad_scale is None else grad_scale.to(device, non_blocking=True),
            ),
            device,
        )

    def _fit(self, group, plan, grad_scale, found_inf, previous):
        median, mad, device = self._statistics(group, plan, grad_scale)
        inf = None if found_inf is None else found_inf.to(device, non_blocking=True)
        _, steps = resolve_phases(group)
        return self._launch_fit(group, median, mad, steps, inf, previous)

    def _buffers(self, keys, sharded=True):
        state = self.state
        if not sharded:
            return [state[p]["momentum_buffer"] for p in keys]
        return [_sharding.local(state[p]["momentum_buffer"]) for p in keys]

    def _update(self, group, plan, tau, grad_scale, found_inf):
        momentum = group["momentum"]
        lr = group["lr"]
        # A device lr tensor goes to the op as it is (no host read); a CPU one is read here,
        # which never waits for a device, rather than copied to the device, which would.
        lr_tensor = lr if isinstance(lr, torch.Tensor) and lr.device.type != "cpu" else None
        for (device, fresh), b in plan.buckets.items():
            if fresh:  # (only with momentum: see _plan)
                # Zeros, not empty: a first step skipped by AMP must not leave garbage.
                for p in b.keys:
                    self.state[p]["momentum_buffer"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
            bufs = [] if momentum == 0 else self._buffers(b.keys, b.sharded)
            fused = group["fused"]
            if fused is None:
                fused = device.type in _FUSED_DEVICES
            step = ops.soft_sign_step_ if fused else _python_step.soft_sign_step_
            step(
                b.params,
                b.grads,
                bufs,
                lr=0.0 if lr_tensor is not None else float(lr),
                lr_tensor=None if lr_tensor is None else lr_tensor.to(device, non_blocking=True),
                momentum=float(momentum),
                dampening=float(group["dampening"]),
                weight_decay=float(group["weight_decay"]),
                nesterov=bool(group["nesterov"]),
                maximize=bool(group["maximize"]),
                first_step=fresh,
                temperature=None if tau is None else tau.to(device, non_blocking=True),
                grad_scale=None if grad_scale is None else grad_scale.to(device, non_blocking=True),
                found_inf=None if found_inf is None else found_inf.to(device, non_blocking=True),
            )


class SoftSignum(_SoftSignBase):
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
        alpha_sign: fraction of total_steps spent in the sign phase, in (0, 1]:
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
        sign_steps = alias("sign_steps", sign_steps, "sign_iters", sign_iters)
        transition_steps = alias(
            "transition_steps", transition_steps, "transition_iters", transition_iters
        )
        check_sgd_options(lr, momentum, dampening, weight_decay, nesterov)
        check_schedule_options(
            total_steps, alpha_sign, sign_steps, transition_steps, eps, newton_iters, tmax
        )
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            fused=fused,
            total_steps=total_steps,
            alpha_sign=alpha_sign,
            sign_steps=sign_steps,
            transition_steps=transition_steps,
            eps=eps,
            newton_iters=newton_iters,
            tmax=tmax,
        )
        super().__init__(params, defaults)


class Signum(_SoftSignBase):
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
        check_sgd_options(lr, momentum, dampening, weight_decay, nesterov)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            fused=fused,
        )
        super().__init__(params, defaults)
