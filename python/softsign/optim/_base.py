"""The one base of softsign's optimizers: options, param groups, checkpoints and the
three-phase step (sign, fit, soft; docs/algorithms.md sections 2 and 3).

A subclass is its update rule plus its option table (softsign/reference/options.py): it
says how a group's statistic is measured (`_statistics`) and how a group is updated at a
temperature (`_update`); the base decides everything else.

Group state lives in the param group as JSON values: "step" (the group's step number k,
counted on every step() call, like an LR scheduler) and "fit" ({"median", "mad"} once the
temperature is fitted, else None). The rest of a group's schedule (a fit on its way, the
schedule tensor) is a softsign._fit.GroupSchedule that the optimizer holds per group.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch.optim import Optimizer

from .._fit import GroupSchedule, unfilled
from ..reference.options import OptionTable
from . import _sharding
from ._validate import check_transition_length


def given(local_vars: dict) -> dict:
    """The keyword options of a constructor call, from its locals()."""
    return {k: v for k, v in local_vars.items() if k not in ("self", "params", "__class__")}


def _called_to_create_state() -> bool:
    """Whether step() was called by torch.distributed.checkpoint's _init_optim_state (see
    _create_state). Asked only while the optimizer has no state."""
    if torch.compiler.is_compiling():
        return False
    frame = sys._getframe(2)
    for _ in range(8):  # step() is wrapped by torch's hooks and profiling decorators
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "_init_optim_state" and "checkpoint" in code.co_filename:
            return True
        frame = frame.f_back
    return False


@contextmanager
def _hooks_held(optimizer: Optimizer, name: str):
    """torch.optim.Optimizer's hooks of kind `name`, taken out for the call within (which
    then runs none of them) and put back after: the caller runs them itself, where torch's
    order puts them relative to what this base adds to state_dict and load_state_dict."""
    hooks = getattr(optimizer, name)
    setattr(optimizer, name, OrderedDict())
    try:
        yield hooks
    finally:
        setattr(optimizer, name, hooks)


@dataclass
class Bucket:
    """Params of one device (and, for buffered rules, whose buffers are all old or all
    created now) with their gradients."""

    device: torch.device
    fresh: bool = False  # the buffers are created by this step
    keys: list = field(default_factory=list)  # the parameters (state keys)
    params: list = field(default_factory=list)  # what the ops update: local shards of DTensors
    grads: list = field(default_factory=list)
    sharded: bool = False  # holds DTensors


@dataclass
class Plan:
    """What one step of one group touches: the params with gradients, in buckets."""

    buckets: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device | None:
        return next(iter(self.buckets.values())).device if self.buckets else None

    def keys(self) -> list:
        return [k for b in self.buckets.values() for k in b.keys]

    def has_grads(self) -> bool:
        """Whether an element has a gradient: 0-element params give the fit nothing. Asked
        of the parameters (a DTensor's global size), not of local shards: every rank of a
        sharded group must answer alike, or the fit's collectives would not pair up."""
        return any(k.numel() for k in self.keys())


class ScheduledOptimizer(Optimizer):
    """An Optimizer whose groups may switch to a fitted temperature schedule.

    Subclasses set `_table` (their options), `_kind` ("tanh" or "algebraic": which
    saturation constant the fit uses) and `_statistic`, and implement `_statistics` and
    `_update`; `_bucket_of`, `_scheduled`, `_prepare_group` and `_check_group` are hooks."""

    _table: OptionTable
    _kind = "tanh"
    _statistic = "the post-momentum directions"  # what the fit reads (for its errors)
    _group_keys: dict = {}  # keys every group holds besides the options, "step" and "fit"

    def __init__(self, params, options: dict):
        defaults = self._table.collect(options)
        super().__init__(params, {**defaults, **self._group_keys, "step": 0, "fit": None})
        self._init_runtime()

    def _init_runtime(self):
        """Resets what the optimizer holds besides its state dict (a new one, a loaded one)."""
        self._group_schedules: dict[int, GroupSchedule] = {}

    # -- param groups -------------------------------------------------------------------
    def add_param_group(self, param_group):
        """torch's add_param_group between two hooks: `_prepare_group` on the user's dict
        (aliases already resolved), `_check_group` on the group as added, which is taken out
        again if the check fails: a refused group leaves the optimizer as it was."""
        if not isinstance(param_group, dict):  # torch's check, before anything reads it
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        group = self._table.resolve_aliases(dict(param_group))
        super().add_param_group(self._prepare_group(group))
        try:
            self._check_group(self.param_groups[-1])
        except Exception:
            self.param_groups.pop()
            raise

    def _prepare_group(self, group: dict) -> dict:
        return group

    def _check_group(self, group: dict) -> None:
        """Raises for a group the optimizer cannot step (every group's options are checked,
        not only the constructor's: a group dict may set any); warns for a transition too
        short to soften."""
        for p in group["params"]:
            if torch.is_complex(p):
                raise ValueError(f"{type(self).__name__} does not support complex parameters")
        self._check_options(group)

    def _check_options(self, group: dict) -> None:
        self._table.check(group)
        if "alpha_sign" in self._table and self._scheduled(group):
            check_transition_length(group, type(self).__name__)

    def _scheduled(self, group) -> bool:
        """Whether the group has a temperature schedule at all (SoftMuon's AdamW groups do
        not)."""
        return True

    def _group_schedule(self, index: int) -> GroupSchedule:
        """The schedule of param group `index`, made when first asked (and again for a group
        dict that load_state_dict replaced)."""
        group = self.param_groups[index]
        schedule = self._group_schedules.get(index)
        if schedule is None or schedule.group is not group:
            schedule = GroupSchedule(group, index, self._kind, type(self).__name__, self._statistic)
            self._group_schedules[index] = schedule
        return schedule

    # -- checkpoints --------------------------------------------------------------------
    def __getstate__(self):
        # A fit whose status the host has not read yet lives only in the group's schedule,
        # which a copy (deepcopy, pickle) rebuilds from the group dicts: it is read into
        # them first (waiting for the device, as state_dict() does), or the copy would fit
        # again on other gradients.
        for schedule in self._group_schedules.values():
            schedule.settle(wait=True)
        return super().__getstate__()

    def __setstate__(self, state):
        defaults = state.get("defaults", getattr(self, "defaults", {}))
        known = "differentiable" in defaults
        super().__setstate__(state)
        if not known:
            # torch.optim's __setstate__ (run by load_state_dict and by unpickling) adds its
            # own optimizers' "differentiable" flag, which these have not: add_param_group
            # would copy it into every later group.
            self.defaults.pop("differentiable", None)
        for group in self.param_groups:
            group.setdefault("step", 0)
            group.setdefault("fit", None)
        self._init_runtime()

    def state_dict(self):
        """torch.optim's state dict; a group's "fit" is always {"median", "mad"} (None before
        the fit: strict JSON, as checkpoint tools and loggers write it, has no NaN), so that
        the state dict of a fresh optimizer has the keys of a fitted one:
        torch.distributed.checkpoint loads into such a template. The post hooks
        (register_state_dict_post_hook) see the dict in that form, as the caller gets it."""
        for schedule in self._group_schedules.values():
            schedule.settle(wait=True)
        with _hooks_held(self, "_optimizer_state_dict_post_hooks") as post_hooks:
            sd = super().state_dict()
        for group in sd["param_groups"]:  # copies made by Optimizer.state_dict
            if "fit" in group:
                # The copies share the group's fit dict: a new one, so that changing the
                # state dict leaves the optimizer as it was.
                fit = group["fit"]
                group["fit"] = {"median": None, "mad": None} if fit is None else dict(fit)
        for hook in post_hooks.values():
            result = hook(self, sd)
            sd = sd if result is None else result
        return sd

    def load_state_dict(self, state_dict):
        """torch.optim's load_state_dict; a group saved without some of our keys (by another
        optimizer with the same per-parameter state, say lion-pytorch's Lion) takes their
        defaults. The pre hooks (register_load_state_dict_pre_hook) run first, as in torch:
        on the dict as given, before anything here reads it (a hook may adapt another
        optimizer's dict); the post hooks last, on the optimizer as loaded."""
        state_dict = state_dict.copy()  # shallow, as torch's: hooks may replace its keys
        pre = _hooks_held(self, "_optimizer_load_state_dict_pre_hooks")
        post = _hooks_held(self, "_optimizer_load_state_dict_post_hooks")
        with pre as pre_hooks, post as post_hooks:
            for hook in pre_hooks.values():
                result = hook(self, state_dict)
                state_dict = state_dict if result is None else result
            self._load_state_dict(state_dict)
        for hook in post_hooks.values():
            hook(self)

    def _load_state_dict(self, state_dict):
        groups = []
        for group in state_dict["param_groups"]:
            group = dict(group)
            if "alpha_sign" in self._table and "alpha_sign" not in group:
                # A plain optimizer's state (Signum's into SoftSignum): taking it would keep
                # this optimizer in the sign phase forever, without a word.
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: the state has no schedule "
                    "options; it comes from an optimizer without a transition (Signum, Lion, "
                    "Muon, ...). To continue its training with a transition, load it into "
                    f"that optimizer and call {type(self).__name__}.warm_start_from(it)"
                )
            for key, default in self.defaults.items():
                group.setdefault(key, default)
            fit = group["fit"]
            # Unfitted: None (NaN in checkpoints of earlier versions); a fit is never stored
            # non-finite.
            if isinstance(fit, dict) and (
                fit["median"] is None or not math.isfinite(fit["median"])
            ):
                group["fit"] = None
            groups.append(group)
        super().load_state_dict(dict(state_dict, param_groups=groups))
        self._init_runtime()

    def _refuse_unfilled(self) -> None:
        """total_steps="auto" must be filled (by a trainer callback) before the first step:
        the schedule is never guessed."""
        for i, group in enumerate(self.param_groups):
            if self._scheduled(group) and unfilled(group):
                raise RuntimeError(
                    f"{type(self).__name__}: param group {i} has total_steps='auto', and no "
                    "callback filled it before the first step; add "
                    "softsign.integrations.hf.SoftsignCallback() to the Trainer's callbacks "
                    "(or softsign.integrations.lightning.SoftsignCallback() to Lightning's), "
                    "or call softsign.integrations.fill_total_steps(optimizer, n) first"
                )

    def temperature(self, group: int = 0) -> float | None:
        """The temperature tau used by the group's last step; None in the sign phase or
        before the fit. Reads a device value: call it for logging, not in a hot loop."""
        if not self._scheduled(self.param_groups[group]) or unfilled(self.param_groups[group]):
            return None
        return self._group_schedule(group).last_temperature()

    def saturation(self, group: int = 0, threshold: float | None = None) -> float | None:
        """The fraction of the group's coordinates (SoftMuon: singular values) still in
        sign-like saturation after its last step, |tau * d| > threshold, d read from the
        momentum buffers in state; by default the threshold is where the map is within 1%
        of +-1 (atanh(0.99) for tanh, 7.02 for SoftMuon's map). 1.0 in the sign phase, None
        for a group without a schedule (SoftMuon's AdamW groups). Computed when asked (it
        waits for the device), never in step(). The details:
        softsign.integrations.saturation."""
        from ..integrations._observe import saturation

        return saturation(self, group, threshold)

    # -- the step -----------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        if not self.state and _called_to_create_state():
            return self._create_state()
        self._refuse_unfilled()
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # GradScaler passes these to optimizers that say they take them
        # (_step_supports_amp_scaling) instead of unscaling and syncing.
        grad_scale = getattr(self, "grad_scale", None)
        found_inf = getattr(self, "found_inf", None)
        plans = [self._plan(group) for group in self.param_groups]
        # Checks and fits of every group come first: an error leaves all parameters as
        # they were.
        taus = [
            self._temperature_of_step(gi, group, plan, grad_scale, found_inf)
            for gi, (group, plan) in enumerate(zip(self.param_groups, plans))
        ]
        for group, plan, tau in zip(self.param_groups, plans, taus):
            group["step"] += 1
            self._update(group, plan, tau, grad_scale, found_inf)
        return loss

    def _create_state(self) -> None:
        """torch.distributed.checkpoint calls step() on an optimizer that has no state yet,
        with zero grads and lr 0, only to create its state (`_init_optim_state`, run by
        get_optimizer_state_dict and set_optimizer_state_dict). Here that creates what a
        first step would (zero buffers, AdamW's zero moments) and nothing else: no step is
        counted (neither the group's nor AdamW's) and no temperature is fitted, so the run
        then steps bit for bit as one never checkpointed. Stepped as an ordinary step, it
        would move the schedule and AdamW's bias correction by one step and, where the fit
        comes first (alpha_sign=0), fit those zero grads and pin the temperature at tmax."""
        for group in self.param_groups:
            lr, group["lr"] = group["lr"], 0.0  # a float: DCP's tensor 0 is on the CPU
            try:
                self._update(group, self._plan(group), None, None, None)
            finally:
                group["lr"] = lr
        for state in self.state.values():
            if torch.is_tensor(state.get("step")):
                state["step"].zero_()

    def _plan(self, group) -> Plan:
        """The group's params with gradients (checked), bucketed by `_bucket_of`."""
        plan = Plan()
        for p, param, grad, sharded in _sharding.with_grads(group["params"], type(self).__name__):
            where = self._bucket_of(group, p)
            bucket = plan.buckets.get(where)
            if bucket is None:
                bucket = plan.buckets[where] = Bucket(*where)
            bucket.keys.append(p)
            bucket.params.append(param)
            bucket.grads.append(grad)
            bucket.sharded |= sharded
        return plan

    def _bucket_of(self, group, p) -> tuple:
        """(device, fresh) of the bucket that steps p."""
        return (p.device, False)

    def _temperature_of_step(self, gi, group, plan, grad_scale, found_inf):
        if not group["params"] or not self._scheduled(group):
            return None  # an empty group has nothing to fit or update
        return self._group_schedule(gi).temperature(
            group["step"] + 1,
            plan.device or group["params"][0].device,
            plan.has_grads,
            lambda: self._statistics(group, plan, grad_scale),
            found_inf,
        )

    def _statistics(self, group, plan, grad_scale) -> tuple[torch.Tensor, torch.Tensor]:
        """Median and MAD (float64 0-dim tensors on one of the group's devices) of what the
        group's fit reads."""
        raise NotImplementedError

    def _update(self, group, plan, tau, grad_scale, found_inf) -> None:
        """Steps the group's params at temperature `tau` (None: the sign phase)."""
        raise NotImplementedError
