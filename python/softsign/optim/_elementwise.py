"""The element-wise soft-sign optimizers (SoftSignum, Signum, SoftLion, Lion) over
torch.ops.softsign.soft_sign_step_: u = sign(d), or tanh(tau * d) once the schedule starts,
where d comes from the gradient and a per-parameter buffer by the class's momentum rule.

The rule reaches every op as the same keywords (momentum, dampening, nesterov,
momentum_rule and rule_coeffs: Note [momentum rules] in csrc/ops/momentum_rules.h), so the
step, the directions and the selection passes of the fit all form d alike.
"""

from __future__ import annotations

import torch

from .. import _python_step, _select
from .._library import ops
from . import _sharding, _warm_start
from ._base import Bucket, ScheduledOptimizer

_FUSED_DEVICES = ("cpu", "cuda")
# softsign's own element-wise classes by name, as their modules define them (a user's
# subclass does not join): elementwise_pairs() reads it, so an optimizer's module is all a
# new pair needs for the examples, the benchmarks and the tests to find it.
_CLASSES: dict[str, type] = {}


class ElementwiseOptimizer(ScheduledOptimizer):
    """A soft-sign optimizer given by its momentum rule: `_rule(group)` (the ops' keywords),
    `_buffered(group)` (whether params keep a buffer) and `_buffer` (its state key)."""

    _kind = "tanh"
    _buffer = "momentum_buffer"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("softsign.") and not cls.__name__.startswith("_"):
            _CLASSES[cls.__name__] = cls

    def __init__(self, params, options):
        super().__init__(params, options)
        # torch's convention: only an explicit fused=True claims AMP's unscaling, and then
        # GradScaler passes grad_scale/found_inf to the kernels instead of unscaling and
        # syncing. Otherwise it unscales as usual, so gradient clipping (which unscales first:
        # Lightning refuses it for an optimizer that claims the unscaling) works.
        self._step_supports_amp_scaling = options.get("fused") is True

    @staticmethod
    def _rule(group) -> dict:
        """The ops' momentum keywords (momentum, dampening, nesterov, and momentum_rule and
        rule_coeffs where the rule is not the heavy ball) of a group's options."""
        raise NotImplementedError

    def warm_start_from(self, *optimizers, step: int | None = None) -> None:
        """Continues the training of `optimizers` (live, or after loading their checkpoints):
        the usual recipe is Signum (or Lion) for most of the run, then SoftSignum (SoftLion)
        from that checkpoint. Params are matched by identity; each one's buffer is copied
        from its source, whose momentum rule (momentum, dampening, nesterov, betas,
        maximize) must equal this optimizer's, or ValueError names the difference. The
        group step count continues from the sources' (`step=` when they record none, as
        torch.optim.SGD and lion-pytorch), so the transition falls where total_steps says;
        this optimizer keeps its own options. A param with no buffer in its source starts
        its buffer at its next gradient (a warning says how many). Sources: softsign's
        Signum, SoftSignum, Lion and SoftLion, torch.optim.SGD, lion_pytorch.Lion. After a
        warm start from Signum at step k, SoftSignum steps bit for bit as Signum until its
        transition."""
        _warm_start.warm_start(self, optimizers, step)

    @staticmethod
    def _buffered(group) -> bool:
        raise NotImplementedError

    def _check_group(self, group):
        fused = group.get("fused")
        # Params on the meta device pass (torch's rule): a model built on meta and then
        # materialized with to_empty() keeps its optimizer.
        devices = {p.device.type for p in group["params"]} - {"meta"}
        if fused and any(d not in _FUSED_DEVICES for d in devices):
            raise ValueError(f"Invalid fused=True: fused kernels exist for {_FUSED_DEVICES} only")
        super()._check_group(group)

    def _plan(self, group):
        plan = super()._plan(group)
        for b in plan.buckets.values():
            # fused=True on a device without kernels (meta params, which the constructor
            # lets through) raises here, while every group is still planned: before any
            # change, as the step's other refusals.
            self._fused(group, b.device)
        return plan

    def _bucket_of(self, group, p):
        state = self.state.get(p)
        fresh = self._buffered(group) and (state is None or self._buffer not in state)
        return (p.device, fresh)

    @staticmethod
    def _fused(group, device) -> bool:
        fused = group["fused"]
        if fused and device.type not in _FUSED_DEVICES:
            # Reached for meta params, which the constructor lets through (to_empty()),
            # by _plan before the step changes anything.
            raise ValueError(
                f"Invalid fused=True: fused kernels exist for {_FUSED_DEVICES} only, got "
                f"params on {device.type}"
            )
        return device.type in _FUSED_DEVICES if fused is None else bool(fused)

    def _buffers(self, group, bucket: Bucket) -> list:
        """The bucket's buffers, as the ops take them (local shards); none for a rule
        without buffers."""
        if not self._buffered(group):
            return []
        state = self.state
        if not bucket.sharded:
            return [state[p][self._buffer] for p in bucket.keys]
        return [_sharding.local(state[p][self._buffer]) for p in bucket.keys]

    def _old_buffers(self, group, bucket: Bucket) -> list:
        """`_buffers`, or none for a bucket whose buffers this step creates: the fit reads
        the directions before the update makes them."""
        return [] if bucket.fresh else self._buffers(group, bucket)

    # -- the fit ------------------------------------------------------------------------
    def _statistics(self, group, plan, grad_scale):
        """Median and MAD of the group's directions d. A group on one device is read in place
        by the fused selection; a group spread over devices, or stepped without the fused
        kernels, gathers its directions; DTensors are selected across ranks."""
        layout = _sharding.StatisticLayout.of(plan.keys(), type(self).__name__)
        if layout is not None:
            return self._sharded_statistics(group, plan, grad_scale, layout)
        devices = {b.device for b in plan.buckets.values()}
        device = plan.device
        if len(devices) > 1 or not self._fused(group, device):
            dirs = [
                d.to(device, non_blocking=True) for d in self._directions(group, plan, grad_scale)
            ]
            return ops.median_mad(dirs)
        buckets = {b.fresh: b for b in plan.buckets.values()}
        existing = buckets.get(False, Bucket(device))
        fresh = buckets.get(True, Bucket(device, fresh=True))
        return ops.direction_median_mad(
            existing.grads,
            self._old_buffers(group, existing),
            fresh.grads,
            maximize=bool(group["maximize"]),
            grad_scale=_on(grad_scale, device),
            **self._rule(group),
        )

    def _directions(self, group, plan, grad_scale) -> list:
        """The directions d of every param of the group, each on its own device."""
        dirs = []
        for b in plan.buckets.values():
            direction = (
                ops.soft_sign_direction
                if self._fused(group, b.device)
                else _python_step.soft_sign_direction
            )
            dirs += direction(
                b.grads,
                self._old_buffers(group, b),
                maximize=bool(group["maximize"]),
                first_step=b.fresh,
                grad_scale=_on(grad_scale, b.device),
                **self._rule(group),
            )
        return dirs

    def _sharded_statistics(self, group, plan, grad_scale, layout):
        """The statistic of a group of DTensors: each rank histograms the local elements it
        counts, and the histograms are summed over the shard dimensions (Note [sharded
        parameters]), so every rank selects the same global median and MAD."""
        devices = {b.device for b in plan.buckets.values()}
        if len(devices) > 1:
            raise ValueError(
                f"{type(self).__name__}: a param group of DTensors spans devices {devices}"
            )
        device = plan.device
        sources = []
        for b in plan.buckets.values():
            counted = [i for i, k in enumerate(b.keys) if layout.counts_here(k)]
            grads = [b.grads[i] for i in counted]
            bufs = self._old_buffers(group, b)
            bufs = [bufs[i] for i in counted] if bufs else []
            # The histograms read a grad and its buffer with one index (Note [step layouts]).
            grads = [g if g.is_contiguous() else g.contiguous() for g in grads]
            bufs = [
                buf if buf.stride() == g.stride() else torch.empty_like(g).copy_(buf)
                for g, buf in zip(grads, bufs)
            ]
            sources.append(_select.Source(grads, bufs, b.fresh))
        return _select.median_mad(
            sources,
            device=device,
            hook=layout.hook(),
            maximize=bool(group["maximize"]),
            grad_scale=_on(grad_scale, device),
            **self._rule(group),
        )

    # -- the update ---------------------------------------------------------------------
    def _update(self, group, plan, tau, grad_scale, found_inf):
        lr = group["lr"]
        # A device lr tensor goes to the op as it is (no host read); a CPU one is read here,
        # which never waits for a device, rather than copied to the device, which would.
        lr_tensor = lr if isinstance(lr, torch.Tensor) and lr.device.type != "cpu" else None
        rule = self._rule(group)
        for b in plan.buckets.values():
            if b.fresh:
                # Zeros, not empty: a first step skipped by AMP must not leave garbage.
                for p in b.keys:
                    self.state[p][self._buffer] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
            step = (
                ops.soft_sign_step_
                if self._fused(group, b.device)
                else _python_step.soft_sign_step_
            )
            step(
                b.params,
                b.grads,
                self._buffers(group, b),
                lr=0.0 if lr_tensor is not None else float(lr),
                lr_tensor=_on(lr_tensor, b.device),
                weight_decay=float(group["weight_decay"]),
                maximize=bool(group["maximize"]),
                first_step=b.fresh,
                temperature=_on(tau, b.device),
                grad_scale=_on(grad_scale, b.device),
                found_inf=_on(found_inf, b.device),
                **rule,
            )


def _on(t: torch.Tensor | None, device) -> torch.Tensor | None:
    """t on `device` without a wait (None stays None)."""
    return None if t is None else t.to(device, non_blocking=True)


def elementwise_pairs() -> dict[str, tuple[type, type]]:
    """{name: (plain class, soft class)} of softsign's element-wise optimizers, such as
    "Signum": (Signum, SoftSignum), in the order softsign.optim imports them."""
    return {n: (c, _CLASSES["Soft" + n]) for n, c in _CLASSES.items() if "Soft" + n in _CLASSES}


def rule_keywords(cls, **options) -> dict:
    """The momentum keywords that `cls` (an element-wise optimizer class) passes to the ops
    with its default options overridden by `options`: what a benchmark or a test of the ops
    needs to run its rule without an optimizer."""
    return cls._rule(cls._table.fill(options))
