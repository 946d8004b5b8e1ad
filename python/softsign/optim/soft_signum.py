"""SoftSignum and Signum as torch.optim.Optimizer subclasses over torch.ops.softsign.

Group state lives in the param group as JSON values: "step" (the group's step number k,
counted on every step() call, like an LR scheduler) and "fit" ({"median", "mad"} once
the temperature is fitted, else None). Per-parameter state is the momentum buffer only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.optim import Optimizer

from .. import _python_step
from .._fit import PendingFit, apply_status, resolve_phases, schedule_from_fit
from .._library import ops
from ._validate import check_schedule_options, check_sgd_options

_FUSED_DEVICES = ("cpu", "cuda")


@dataclass
class _Bucket:
    """Params of one device whose momentum buffers exist (or are created now)."""

    params: list = field(default_factory=list)
    grads: list = field(default_factory=list)


@dataclass
class _Plan:
    k: int
    buckets: dict  # (device, first_step) -> _Bucket

    @property
    def has_grads(self) -> bool:
        return bool(self.buckets)


class _SoftSignBase(Optimizer):
    _kind = "tanh"

    def __init__(self, params, defaults):
        defaults = dict(defaults, step=0, fit=None)
        super().__init__(params, defaults)
        # GradScaler passes grad_scale/found_inf instead of unscaling and syncing.
        self._step_supports_amp_scaling = True
        self._init_runtime()

    def _init_runtime(self):
        self._pending: dict[int, PendingFit] = {}
        self._schedules: dict[int, tuple[tuple, torch.Tensor]] = {}

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:
            group.setdefault("step", 0)
            group.setdefault("fit", None)
        self._init_runtime()

    def add_param_group(self, param_group):
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        for p in group["params"]:
            if torch.is_complex(p):
                raise ValueError(f"{type(self).__name__} does not support complex parameters")
        fused = group.get("fused")
        if fused and any(p.device.type not in _FUSED_DEVICES for p in group["params"]):
            raise ValueError(f"Invalid fused=True: fused kernels exist for {_FUSED_DEVICES} only")

    # -- state dict -------------------------------------------------------------------
    def state_dict(self):
        for gi in list(self._pending):
            self._resolve_pending(gi, wait=True)
        return super().state_dict()

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        self._init_runtime()

    # -- public -----------------------------------------------------------------------
    def temperature(self, group: int = 0) -> float | None:
        """The temperature tau used by the group's last step; None in the sign phase or
        before the fit. Reads a device value: call it for logging, not in a hot loop."""
        g = self.param_groups[group]
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
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
            if torch.is_complex(p.grad):
                raise RuntimeError(f"{type(self).__name__} does not support complex gradients")
            fresh = group["momentum"] != 0 and "momentum_buffer" not in self.state.get(p, {})
            bucket = buckets.setdefault((p.device, fresh), _Bucket())
            bucket.params.append(p)
            bucket.grads.append(p.grad)
        return _Plan(k=group["step"] + 1, buckets=buckets)

    def _directions(self, group, plan, grad_scale):
        """Post-momentum directions d of the group, on its first device (the fit statistic)."""
        dirs = []
        first_device = None
        for (device, fresh), b in plan.buckets.items():
            first_device = first_device or device
            bufs = [] if fresh or group["momentum"] == 0 else self._buffers(b.params)
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
        sign_steps, steps = resolve_phases(group)
        if plan.k <= sign_steps:
            return None
        pending = self._pending.get(gi)
        if group["fit"] is None and pending is not None and pending.ready():
            del self._pending[gi]
            if not apply_status(group, gi, pending, type(self).__name__):
                pending = None  # AMP skipped the fit step: fit again
        if group["fit"] is None:
            if not plan.has_grads:
                return None  # nothing to update; the fit waits for gradients
            if pending is None or found_inf is not None:
                pending = self._fit(group, plan, steps, grad_scale, found_inf, pending)
                if pending.ready():
                    apply_status(group, gi, pending, type(self).__name__)
                else:
                    self._pending[gi] = pending
        if group["fit"] is not None:
            schedule = self._schedule(
                gi,
                group,
                steps,
                next(iter(plan.buckets))[0] if plan.has_grads else group["params"][0].device,
            )
        else:
            schedule = pending.schedule
        return schedule[min(plan.k - sign_steps - 1, steps - 1)]

    def _statistics(self, group, plan, grad_scale):
        """Median and MAD of the group's post-momentum directions, and their device. A group
        on one device is read in place; one spread over devices gathers its directions."""
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
            self._buffers(existing.params) if momentum != 0 else [],
            fresh.grads,
            momentum=momentum,
            dampening=float(group["dampening"]),
            nesterov=bool(group["nesterov"]),
            maximize=bool(group["maximize"]),
            grad_scale=None if grad_scale is None else grad_scale.to(device, non_blocking=True),
        )
        return median, mad, device

    def _fit(self, group, plan, steps, grad_scale, found_inf, previous):
        median, mad, device = self._statistics(group, plan, grad_scale)
        inf = None if found_inf is None else found_inf.to(device, non_blocking=True)
        stats, schedule = ops.fit_temperature(
            median,
            mad,
            steps,
            eps=float(group["eps"]),
            newton_iters=int(group["newton_iters"]),
            tmax=float(group["tmax"]),
            kind=self._kind,
            found_inf=inf,
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
        apply_status(self.param_groups[gi], gi, pending, type(self).__name__)

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

    def _buffers(self, params):
        return [self.state[p]["momentum_buffer"] for p in params]

    def _update(self, group, plan, tau, grad_scale, found_inf):
        momentum = group["momentum"]
        lr = group["lr"]
        for (device, fresh), b in plan.buckets.items():
            if momentum == 0:
                bufs = []
            elif fresh:
                # Zeros, not empty: a first step skipped by AMP must not leave garbage.
                bufs = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in b.params]
                for p, buf in zip(b.params, bufs):
                    self.state[p]["momentum_buffer"] = buf
            else:
                bufs = self._buffers(b.params)
            fused = group["fused"]
            if fused is None:
                fused = device.type in _FUSED_DEVICES
            step = ops.soft_sign_step_ if fused else _python_step.soft_sign_step_
            step(
                b.params,
                b.grads,
                bufs,
                lr=0.0 if isinstance(lr, torch.Tensor) else float(lr),
                lr_tensor=lr.to(device) if isinstance(lr, torch.Tensor) else None,
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

    Steps 1..S are Signum (sign of the heavy-ball momentum). At step S + 1 the median and
    MAD of the post-momentum directions of the group are fitted once (exactly, on the
    device), and steps S+1..S+T use tanh(tau_j * d) with tau_j falling from sign-like to
    SGD-like; later steps keep tau_{T-1}. S = round(alpha_sign * total_steps),
    T = total_steps - S, unless sign_steps/transition_steps are given.
    See shared/spec/ALGORITHMS.md sections 2-4.
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
        sign_steps = _alias("sign_steps", sign_steps, "sign_iters", sign_iters)
        transition_steps = _alias(
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
    with decoupled weight decay. SoftSignum's sign phase, forever."""

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


def _alias(name, value, alias, alias_value):
    if alias_value is None:
        return value
    if value is not None and value != alias_value:
        raise ValueError(f"Invalid {alias}: {alias_value} contradicts {name}={value}")
    return alias_value
