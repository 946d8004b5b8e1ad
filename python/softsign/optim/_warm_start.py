"""Warm starts (issue: train with Signum/Lion, finish with SoftSignum/SoftLion): reading a
live optimizer's per-parameter state as the momentum rule of an element-wise optimizer.

A source is described by `SourceRule`: the ops' keywords of its momentum rule (as
ElementwiseOptimizer._rule gives them), its maximize flag, the state key of its buffer and
the step count of its group, when it keeps one. Rules must be equal for the buffer to mean
the same thing; anything else is refused with the difference named.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SourceRule:
    rule: dict  # the ops' momentum keywords: momentum, dampening, nesterov, lion_beta1
    maximize: bool
    buffer: str | None  # the state key of the buffer; None: the rule keeps none
    step: int | None  # the group's step count, where the source records one


def _lion_rule(beta1, beta2) -> dict:
    return dict(
        momentum=float(beta2), dampening=float(beta2), nesterov=False, lion_beta1=float(beta1)
    )


def source_rule(source, group) -> SourceRule:
    """The momentum rule of `group` of optimizer `source`; TypeError for a kind this
    module does not know."""
    from ._elementwise import ElementwiseOptimizer

    if isinstance(source, ElementwiseOptimizer):
        buffer = source._buffer if source._buffered(group) else None
        return SourceRule(source._rule(group), bool(group["maximize"]), buffer, group["step"])
    if type(source) is torch.optim.SGD:
        momentum = float(group["momentum"])
        rule = dict(
            momentum=momentum, dampening=float(group["dampening"]), nesterov=bool(group["nesterov"])
        )
        return SourceRule(
            rule,
            bool(group.get("maximize", False)),
            "momentum_buffer" if momentum != 0 else None,
            None,
        )
    if type(source).__module__.startswith("lion_pytorch"):
        beta1, beta2 = group["betas"]
        return SourceRule(_lion_rule(beta1, beta2), False, "exp_avg", None)
    raise TypeError(
        f"warm_start_from: cannot read the state of {type(source).__name__}; it takes "
        "softsign's element-wise optimizers, torch.optim.SGD and lion_pytorch.Lion"
    )


def _same_rule(a: dict, b: dict) -> bool:
    keys = set(a) | set(b)
    return all(a.get(k) == b.get(k) for k in keys)


def warm_start(target, sources, step: int | None) -> None:
    """ElementwiseOptimizer.warm_start_from: see its docstring."""
    name = type(target).__name__
    owner = {}  # param -> (source, its group)
    for source in sources:
        for group in source.param_groups:
            for p in group["params"]:
                owner[p] = (source, group)
    # Everything is checked before anything is written.
    plans, steps = [], set()
    for gi, group in enumerate(target.param_groups):
        mine = SourceRule(
            target._rule(group),
            bool(group["maximize"]),
            target._buffer if target._buffered(group) else None,
            None,
        )
        for p in group["params"]:
            if p not in owner:
                raise ValueError(
                    f"{name}.warm_start_from: a parameter of param group {gi} (shape "
                    f"{tuple(p.shape)}) is in none of the given optimizers"
                )
            source, src_group = owner[p]
            theirs = source_rule(source, src_group)
            if not _same_rule(mine.rule, theirs.rule) or mine.maximize != theirs.maximize:
                raise ValueError(
                    f"{name}.warm_start_from: param group {gi} steps with "
                    f"{dict(mine.rule, maximize=mine.maximize)}, but its source "
                    f"{type(source).__name__} with {dict(theirs.rule, maximize=theirs.maximize)}: "
                    "their momentum buffers do not mean the same thing"
                )
            if theirs.step is not None:
                steps.add(theirs.step)
            state = source.state.get(p, {})
            plans.append((p, state.get(theirs.buffer) if theirs.buffer else None, mine.buffer))
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
    for p, buffer, key in plans:
        if key is None:
            continue
        if buffer is None:
            missing += 1
            target.state[p].pop(key, None)  # starts its buffer at its next gradient
        else:
            target.state[p][key] = buffer.detach().clone(memory_format=torch.preserve_format)
    for group in target.param_groups:
        group["step"] = step
        group["fit"] = None
    target._init_runtime()
    if missing:
        import warnings

        from .._fit import user_stacklevel

        warnings.warn(
            f"{name}.warm_start_from: {missing} parameter(s) have no buffer in their source "
            "(never stepped there); theirs starts at their next gradient, as on a first step",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
