"""Warm starts (issue: train with Signum/Lion/Muon, finish with SoftSignum/SoftLion/SoftMuon):
reading a live optimizer's per-parameter state as the state of one of ours.

A source (and the target, group by group) is described by `SourceRule`: its update rule as
far as the carried state depends on it (for an element-wise optimizer the ops' momentum
keywords and maximize; for Muon the EMA momentum and Nesterov; for AdamW the betas), the
per-parameter state keys it carries, the step count of its group when it keeps one, and
the details of the update that leave the state's meaning alone (Muon's update scale and
Newton-Schulz coefficients). Rules must be equal for the state to mean the same thing;
anything else is refused with the difference named. A difference in the details is a
warned fallback: the state carries over and the target's own update is used.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

# Muon's quintic Newton-Schulz as softsign runs it (csrc/ops/spectral_maps.cpp): the
# coefficients (a, b, c) and the epsilon of X / (||X||_F + eps); torch.optim.Muon's defaults.
_NEWTON_SCHULZ = dict(ns_coefficients=(3.4445, -4.7750, 2.0315), ns_eps=1e-7)


@dataclass
class SourceRule:
    rule: dict  # what the carried state's meaning depends on; must be equal
    keys: tuple  # the per-parameter state keys carried (equal rules carry as many)
    step: int | None  # the group's step count, where the source records one
    details: dict = field(default_factory=dict)  # the rest of the update: a difference warns


def _adamw(betas, step, *, amsgrad=False, maximize=False) -> SourceRule:
    # AdamW's moments are EMAs of g and g^2 with these betas, and their bias correction
    # reads the per-parameter step; eps, lr and the weight decay are the target's own.
    rule = dict(
        update="AdamW",
        betas=tuple(float(b) for b in betas),
        amsgrad=bool(amsgrad),
        maximize=bool(maximize),
    )
    return SourceRule(rule, ("exp_avg", "exp_avg_sq", "step"), step)


def _muon(momentum, nesterov, step, **details) -> SourceRule:
    # The buffer is an EMA of the gradients (lerp with 1 - momentum) in torch.optim.Muon and
    # in ours; Nesterov decides the direction it gives.
    rule = dict(update="Muon", momentum=float(momentum), nesterov=bool(nesterov))
    return SourceRule(rule, ("momentum_buffer",), step, details)


@dataclass(frozen=True)
class ForeignSource:
    """Another package's optimizer that a warm start reads (classes from `module`).

    `label` names it in messages; `rule(group)` is the SourceRule of one of its param groups.
    Where its steps equal those of one of softsign's plain element-wise classes (up to the
    rounding of its coefficients), `same_as` names that class and `options` lists the options
    of that class the outside one takes, as constructor keywords and param-group keys, under
    the same names and meaning: the tests then hold the two to each other (steps, param
    groups, loading its checkpoint, warm starts) with no test written for that package. Its
    class is then imported from `label` ("package.module.Class")."""

    module: str
    label: str
    rule: Callable[[dict], SourceRule]
    same_as: str | None = None
    options: tuple[str, ...] = ()

    def make(self, params, **options):
        """The outside optimizer over `params` (params, or group dicts) with `options`, both
        given as for `same_as`: an option it does not take must be at that class's default
        (as the outside optimizer steps), or ValueError names it."""
        if self.same_as is None:
            raise TypeError(f"{self.label} declares no softsign class it steps as")
        from ._elementwise import elementwise_pairs

        defaults = elementwise_pairs()[self.same_as][0]._table.defaults
        params = list(params)
        given = [options] + [g for g in params if isinstance(g, dict)]
        for name, value in ((k, v) for g in given for k, v in g.items() if k != "params"):
            if name not in self.options and value != defaults.get(name):
                raise ValueError(
                    f"{self.label} takes no {name}: it steps as {self.same_as} with "
                    f"{name}={defaults.get(name)!r}, not {value!r}"
                )
        module, _, attr = self.label.rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
        return cls(params, **{k: v for k, v in options.items() if k in self.options})


# Other packages' optimizers a warm start reads, by the module prefix their classes come
# from. An optimizer's own module adds the packages it reads (optim/lion.py: lion-pytorch).
FOREIGN_SOURCES: dict[str, ForeignSource] = {}


def foreign_source(
    module: str, label: str, *, same_as: str | None = None, options: tuple[str, ...] = ()
):
    """Registers the rule of another package's optimizer (classes from `module`), as a
    decorator of its_rule(group) -> SourceRule; `same_as` and `options` as in ForeignSource."""

    def register(fn):
        FOREIGN_SOURCES[module] = ForeignSource(module, label, fn, same_as, tuple(options))
        return fn

    return register


def source_rule(source, group) -> SourceRule:
    """The rule of `group` of optimizer `source` (softsign's, or one of torch's and
    lion-pytorch's); TypeError for a kind this module does not know."""
    from ._elementwise import ElementwiseOptimizer
    from .soft_muon import _MuonBase

    if isinstance(source, ElementwiseOptimizer):
        keys = (source._buffer,) if source._buffered(group) else ()
        rule = dict(source._rule(group), maximize=bool(group["maximize"]))
        return SourceRule(rule, keys, group["step"])
    if isinstance(source, _MuonBase):
        if not group["use_muon"]:
            return _adamw(group["betas"], group["step"])
        return _muon(
            group["momentum"],
            group["nesterov"],
            group["step"],
            adjust_lr=group["adjust_lr"],
            transposed=bool(group["transposed"]),
            **_NEWTON_SCHULZ,
        )
    if type(source) is torch.optim.SGD:
        momentum = float(group["momentum"])
        rule = dict(
            momentum=momentum,
            dampening=float(group["dampening"]),
            nesterov=bool(group["nesterov"]),
            maximize=bool(group.get("maximize", False)),
        )
        return SourceRule(rule, ("momentum_buffer",) if momentum else (), None)
    if type(source) is torch.optim.Muon:
        # torch.optim.Muon keeps no step count. Its scale "spectral_unclamped" is not one of
        # ours: like any other difference of scale it warns, and ours is used.
        return _muon(
            group["momentum"],
            group["nesterov"],
            None,
            adjust_lr=group["adjust_lr_fn"] or "original",
            transposed=False,  # its scale is always the stored shape's
            ns_coefficients=tuple(float(c) for c in group["ns_coefficients"]),
            ns_eps=float(group["eps"]),
        )
    if type(source) is torch.optim.AdamW:
        # Its per-parameter steps are carried; a group step count it does not keep.
        return _adamw(group["betas"], None, amsgrad=group["amsgrad"], maximize=group["maximize"])
    for module, foreign in FOREIGN_SOURCES.items():
        if type(source).__module__.startswith(module):
            return foreign.rule(group)
    known = ["softsign's optimizers", "torch.optim.SGD", "torch.optim.Muon", "torch.optim.AdamW"]
    known += [foreign.label for foreign in FOREIGN_SOURCES.values()]
    raise TypeError(
        f"warm_start_from: cannot read the state of {type(source).__name__}; it takes "
        + ", ".join(known[:-1])
        + " and "
        + known[-1]
    )


def _same(a: dict, b: dict) -> bool:
    keys = set(a) | set(b)
    return all(a.get(k) == b.get(k) for k in keys)


def _carried(value, p: torch.Tensor, key: str) -> torch.Tensor:
    """A copy of a source's state value for param p: AdamW's step as the float32 tensor on
    p's device that the fused AdamW op counts in (torch's may be a CPU tensor, or a number
    in old checkpoints); a buffer as it is."""
    if key == "step":
        return torch.as_tensor(value).to(device=p.device, dtype=torch.float32, copy=True)
    return value.detach().clone(memory_format=torch.preserve_format)


def warm_start(target, sources, step: int | None) -> None:
    """ElementwiseOptimizer.warm_start_from and _MuonBase.warm_start_from: see their
    docstrings."""
    name = type(target).__name__
    owner = {}  # param -> (source, its group)
    for source in sources:
        for group in source.param_groups:
            for p in group["params"]:
                owner[p] = (source, group)
    # Everything is checked before anything is written.
    plans, steps, differences = [], set(), {}
    for gi, group in enumerate(target.param_groups):
        mine = source_rule(target, group)
        for p in group["params"]:
            if p not in owner:
                raise ValueError(
                    f"{name}.warm_start_from: a parameter of param group {gi} (shape "
                    f"{tuple(p.shape)}) is in none of the given optimizers"
                )
            source, src_group = owner[p]
            theirs = source_rule(source, src_group)
            if not _same(mine.rule, theirs.rule):
                hint = ""
                kinds = {mine.rule.get("update"), theirs.rule.get("update")}
                if kinds == {"Muon", "AdamW"}:
                    hint = (
                        f" (a {theirs.rule.get('update')} parameter there: give it a "
                        f"use_muon={theirs.rule.get('update') == 'Muon'} group here)"
                    )
                raise ValueError(
                    f"{name}.warm_start_from: param group {gi} steps with {mine.rule}, but "
                    f"a parameter of shape {tuple(p.shape)} in its source "
                    f"{type(source).__name__} with {theirs.rule}{hint}: their states do not "
                    "mean the same thing"
                )
            for key in set(mine.details) | set(theirs.details):
                if mine.details.get(key) != theirs.details.get(key):
                    differences[(type(source).__name__, key)] = (
                        theirs.details.get(key),
                        mine.details.get(key),
                    )
            if theirs.step is not None:
                steps.add(theirs.step)
            state = source.state.get(p, {})
            plans.append((p, {key: state.get(src) for key, src in zip(mine.keys, theirs.keys)}))
    if step is None:
        if len(steps) != 1:
            raise ValueError(
                f"{name}.warm_start_from: "
                + (
                    "the sources record different step counts " + str(sorted(steps))
                    if steps
                    else "the sources record no step count"
                )
                + "; pass step=<the number of steps taken>"
            )
        (step,) = steps
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(
            f"{name}.warm_start_from: invalid step {step!r} (expected an integer >= 0)"
        )
    missing = 0
    for p, values in plans:
        if values and any(v is None for v in values.values()):
            missing += 1
            for key in values:  # starts its state at its next gradient
                target.state[p].pop(key, None)
            continue
        for key, value in values.items():
            target.state[p][key] = _carried(value, p, key)
    for group in target.param_groups:
        group["step"] = step
        group["fit"] = None
    target._init_runtime()

    from .._fit import user_stacklevel

    if missing:
        warnings.warn(
            f"{name}.warm_start_from: {missing} parameter(s) have no state in their source "
            "(never stepped there); theirs starts at their next gradient, as on a first step",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
    if differences:
        listed = "; ".join(
            f"{key}: {theirs!r} in {source}, {mine!r} here"
            for (source, key), (theirs, mine) in sorted(differences.items())
        )
        warnings.warn(
            f"{name}.warm_start_from: the state carries over, but the update differs from "
            f"the source's ({listed}); this optimizer steps with its own",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
