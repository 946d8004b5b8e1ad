"""The soft-sign step in plain PyTorch ops: the fallback for devices without a fused
kernel (fused=False) and the pure-PyTorch baseline of the benchmarks. Same math and
same no-op rule as the kernels (Note [soft-sign element math] in csrc/ops): each product
and sum rounded on its own in the opmath type, float32 (float64 for float64 params), but
for the soft phase's last pass p + (-lr) * tanh(tau * d), which may contract into a fused
multiply-add (one pass less; the last bit may differ from the kernel's), and where a rule
says otherwise (Lion's two averages, formed by lerp: the same up to rounding).

Each (device, dtype) bucket is stepped by torch's _foreach ops, a handful of multi-tensor
kernels per step rather than a few small ops per tensor (bench_step.py times it against
the fused step)."""

from __future__ import annotations

import struct
from collections import defaultdict

import torch


def _opmath(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _one_minus(x: float, op: torch.dtype) -> float:
    """1 - x as the kernels form it, in the opmath type (float32: 1.0f - float(x)); a number
    a float32 tensor op then takes exactly. Rounding the float64 difference again to
    float32 gives float32's own difference (53 >= 2 * 24 + 2 bits)."""
    if op == torch.float64:
        return 1.0 - x
    return _float32(1.0 - _float32(x))


def _float32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def _buckets(tensors) -> dict:
    """Indices of `tensors` by (device, dtype): what one _foreach call takes."""
    out = defaultdict(list)
    for i, t in enumerate(tensors):
        out[(t.device, t.dtype)].append(i)
    return out


def _in_opmath(tensors, op):
    """The tensors in the opmath type: themselves when they are in it already (read only)."""
    return list(tensors) if not tensors or tensors[0].dtype == op else [t.to(op) for t in tensors]


def soft_sign_direction(grads, momentum_buffers, *, grad_scale, **rule):
    """The directions d (in the opmath type) of torch.ops.softsign.soft_sign_direction,
    which takes the same keywords; the buffers are read, not written (the rule runs on
    copies of them)."""
    out = [None] * len(grads)
    for (_, dtype), idx in _buckets(grads).items():
        op = torch.float64 if dtype == torch.float64 else torch.float32
        bufs = [momentum_buffers[i].to(op, copy=True) for i in idx] if momentum_buffers else []
        keeps = _rule_of(rule.get("momentum_rule", "heavy_ball")).always_buffered
        if not bufs and (keeps or rule["momentum"] != 0):
            bufs = [torch.zeros_like(grads[i], dtype=op) for i in idx]  # read as 0 (first step)
        gs = _in_opmath([grads[i] for i in idx], op)
        d, _ = _direction(gs, bufs, op, grad_scale, **rule)
        for i, g, di in zip(idx, gs, d):
            # A fresh tensor even where d is the grad itself (the op's contract).
            out[i] = di.clone() if di is g else di
    return out


def _skip(params, temperature, found_inf):
    """The call's no-op flag (a 0-dim bool tensor), or None when nothing can skip it: AMP
    found an inf, or the temperature is not finite in the narrowest math type among the
    call's tensors (Note [temperature range] in csrc/ops/soft_sign_step.h)."""
    skip = None
    if found_inf is not None:
        skip = found_inf.reshape(()) != 0
    if temperature is not None:
        narrow = any(p.dtype != torch.float64 and p.numel() > 0 for p in params)
        tau = temperature.reshape(()).to(torch.float32 if narrow else torch.float64)
        bad = ~torch.isfinite(tau)
        skip = bad if skip is None else skip | bad.to(skip.device)
    return skip


# The unfused momentum rules by the ops' `momentum_rule` name (Note [momentum rules] in
# csrc/ops/momentum_rules.h): rule(g, bufs, op, *, momentum, dampening, nesterov,
# first_step, coeffs) -> (d, whether d is a scratch list), the buffers updated in place. A
# rule registers itself with @foreach_rule, usually beside the optimizer that uses it
# (Lion's is in optim/lion.py).
FOREACH_RULES: dict = {}


def foreach_rule(name: str, *, always_buffered: bool, exact: bool = True):
    """Registers an unfused rule; always_buffered: it keeps a buffer even at momentum 0;
    exact: it rounds as the kernels do, so fused=False steps bit for bit as the fused step
    on the CPU (False for a rule that forms its averages otherwise, as Lion's lerp)."""

    def register(fn):
        fn.always_buffered = always_buffered
        fn.exact = exact
        FOREACH_RULES[name] = fn
        return fn

    return register


def _rule_of(momentum_rule: str):
    try:
        return FOREACH_RULES[momentum_rule]
    except KeyError:
        raise ValueError(
            f"softsign: unknown momentum_rule '{momentum_rule}', expected one of "
            + ", ".join(FOREACH_RULES)
        ) from None


@foreach_rule("heavy_ball", always_buffered=False)
def _heavy_ball(g, bufs, op, *, momentum, dampening, nesterov, first_step, coeffs):
    """buf = g on the first step, else momentum * buf + (1 - dampening) * g; d = buf
    (g + momentum * buf with Nesterov); d = g with momentum 0."""
    if momentum == 0:
        return g, False
    if first_step:
        torch._foreach_copy_(bufs, g)
    else:
        undamped = _one_minus(dampening, op)
        moved = g if undamped == 1.0 else torch._foreach_mul(g, undamped)
        torch._foreach_mul_(bufs, momentum)
        torch._foreach_add_(bufs, moved)
    if not nesterov:
        return bufs, False
    d = torch._foreach_mul(bufs, momentum)
    torch._foreach_add_(d, g)
    return d, True


def _direction(
    g,
    bufs,
    op,
    grad_scale,
    *,
    momentum,
    dampening,
    nesterov,
    maximize,
    first_step,
    momentum_rule="heavy_ball",
    rule_coeffs=(),
):
    """(d, whether d is a scratch list) of one (device, dtype) bucket in opmath `op`, the
    buffers updated in place by the rule. A scratch list is this step's own (free to
    overwrite); otherwise d is the gradients or the buffers.

    Each pass over the bucket costs about the same, so passes are what the rules count: a
    product by 1 - dampening = 1 is skipped (exact), and a fresh list from an out-of-place
    op costs less than a copy into an old one and an in-place op (measured on the CPU, in
    steady state). Every product and sum is still rounded on its own, as in the kernels,
    but where a rule says otherwise (Lion's lerp)."""
    rule = _rule_of(momentum_rule)
    if grad_scale is not None:
        g = torch._foreach_div(g, grad_scale.to(op))
        if maximize:
            torch._foreach_neg_(g)
    elif maximize:
        g = torch._foreach_neg(g)
    return rule(
        g,
        bufs,
        op,
        momentum=momentum,
        dampening=dampening,
        nesterov=nesterov,
        first_step=first_step,
        coeffs=tuple(rule_coeffs),
    )


def _step_bucket(ps, gs, bufs, op, *, lr, weight_decay, temperature, grad_scale, **rule):
    """One (device, dtype) bucket, in place on `ps` and `bufs` (in opmath `op`)."""
    d, scratch = _direction(gs, bufs, op, grad_scale, **rule)
    # u = sign(d) or tanh(tau * d), in place when d is a scratch list.
    if temperature is None:
        u = d if scratch else torch._foreach_sign(d)
        if scratch:
            torch._foreach_sign_(u)
    else:
        tau = temperature.reshape(()).to(op)
        u = d if scratch else torch._foreach_mul(d, tau)
        if scratch:
            torch._foreach_mul_(u, tau)
        torch._foreach_tanh_(u)
    # p * (1 - lr * wd) - lr * u
    if isinstance(lr, torch.Tensor) or weight_decay != 0:
        torch._foreach_mul_(ps, 1 - lr * weight_decay)
    if isinstance(lr, torch.Tensor):
        torch._foreach_mul_(u, lr)
        torch._foreach_sub_(ps, u)
        return
    # One pass p + (-lr) * u, which the CPU contracts into a fused multiply-add. In the sign
    # phase lr * u is exact (0 or +-lr), so it rounds as the kernels' p - (lr * u); in the
    # soft phase it may differ from them in the last bit (the contract's tolerance there).
    torch._foreach_add_(ps, u, alpha=-lr)


def soft_sign_step_(
    params,
    grads,
    momentum_buffers,
    *,
    lr,
    lr_tensor,
    weight_decay,
    temperature,
    grad_scale,
    found_inf,
    **rule,
):
    """torch.ops.softsign.soft_sign_step_ with the same keywords; `rule` holds those of the
    direction (momentum, dampening, nesterov, maximize, first_step, momentum_rule,
    rule_coeffs)."""
    if not params:
        return
    skip = _skip(params, temperature, found_inf)
    if skip is not None and skip.device.type == "cpu":
        # Reading a CPU flag waits for nothing: the whole call is a no-op, or nothing skips.
        if bool(skip):
            return
        skip = None
    for (_, dtype), idx in _buckets(params).items():
        op = torch.float64 if dtype == torch.float64 else torch.float32
        ps = [params[i] for i in idx]
        bufs = [momentum_buffers[i] for i in idx] if momentum_buffers else []
        # Stepped in place, or on opmath copies: for reduced precision, and on an
        # accelerator whose no-op flag is read on the device (torch.where at the end).
        copies = dtype != op or skip is not None
        work_ps = [p.to(op, copy=True) for p in ps] if copies else ps
        work_bufs = [b.to(op, copy=True) for b in bufs] if copies else bufs
        rate = lr_tensor.reshape(()).to(op) if lr_tensor is not None else lr
        _step_bucket(
            work_ps,
            _in_opmath([grads[i] for i in idx], op),
            work_bufs,
            op,
            lr=rate,
            weight_decay=weight_decay,
            temperature=temperature,
            grad_scale=grad_scale,
            **rule,
        )
        if skip is not None:
            work_ps = [torch.where(skip, p.to(op), n) for p, n in zip(ps, work_ps)]
            work_bufs = [torch.where(skip, b.to(op), n) for b, n in zip(bufs, work_bufs)]
        if copies:
            torch._foreach_copy_(ps, work_ps)
            if work_bufs:
                torch._foreach_copy_(bufs, work_bufs)
