"""The soft-sign step in plain PyTorch ops: the fallback for devices without a fused
kernel (fused=False) and the pure-PyTorch baseline of the benchmarks. Same math and
same no-op rule as the kernels (Note [soft-sign element math] in csrc/ops): each product
and sum rounded on its own in the opmath type, float32 (float64 for float64 params)."""

from __future__ import annotations

import struct

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


def _directions(
    grads,
    buffers,
    opmaths,
    grad_scale,
    *,
    momentum,
    dampening,
    nesterov,
    maximize,
    first_step,
    lion_beta1=None,
):
    """(d, the buffer's new value or None) of each gradient, in its opmath type. Heavy ball:
    buf = g on the first step, else momentum * buf + (1 - dampening) * g; d = buf (g +
    momentum * buf with Nesterov). Lion (lion_beta1 given, momentum = dampening = beta2):
    d = b1 * buf + (1 - b1) * g from the buffer before its update, the buffer read as 0 on
    the first step (Note [lion rule])."""
    buffered = lion_beta1 is not None or momentum != 0
    for i, (g, op) in enumerate(zip(grads, opmaths)):
        g = g.to(op)
        if grad_scale is not None:
            g = g / grad_scale.to(op)
        if maximize:
            g = -g
        old = buffers[i].to(op) if buffered and not first_step else None
        if lion_beta1 is not None:
            mixed = _one_minus(lion_beta1, op) * g
            moved = _one_minus(dampening, op) * g
            if old is None:  # `+ 0.0` as the kernels add b * 0: a -0 becomes +0
                yield mixed + 0.0, moved + 0.0
            else:
                yield lion_beta1 * old + mixed, momentum * old + moved
        elif momentum == 0:
            yield g, None
        else:
            buf = g if first_step else momentum * old + _one_minus(dampening, op) * g
            yield (g + momentum * buf if nesterov else buf), buf


def soft_sign_direction(grads, momentum_buffers, *, grad_scale, **rule):
    """The directions d (in the opmath type) of torch.ops.softsign.soft_sign_direction,
    which takes the same keywords; the buffers are read, not written."""
    opmaths = [_opmath(g) for g in grads]
    return [d for d, _ in _directions(grads, momentum_buffers, opmaths, grad_scale, **rule)]


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
    direction (momentum, dampening, nesterov, maximize, first_step, lion_beta1)."""
    # One outcome per call (Note [temperature range] in csrc/ops/soft_sign_step.h): the
    # temperature must be finite in the narrowest math type among the call's tensors.
    bad_temperature = None
    if temperature is not None:
        narrow = any(p.dtype != torch.float64 and p.numel() > 0 for p in params)
        tau = temperature.reshape(()).to(torch.float32 if narrow else torch.float64)
        bad_temperature = ~torch.isfinite(tau)
    opmaths = [_opmath(p) for p in params]
    directions = _directions(grads, momentum_buffers, opmaths, grad_scale, **rule)
    for i, (p, op, (d, new_buf)) in enumerate(zip(params, opmaths, directions)):
        if temperature is None:
            u = torch.sign(d)
        else:
            u = torch.tanh(temperature.to(op) * d)
        rate = lr_tensor.to(op) if lr_tensor is not None else lr
        new_p = p.to(op) * (1 - rate * weight_decay) - rate * u
        # The no-op rule, decided on the device: nothing is written when AMP found an
        # inf or the temperature is not finite.
        skip = None
        if found_inf is not None:
            skip = found_inf.reshape(()) != 0
        if bad_temperature is not None:
            skip = bad_temperature if skip is None else skip | bad_temperature
        if skip is not None:
            new_p = torch.where(skip, p.to(op), new_p)
            if new_buf is not None:
                new_buf = torch.where(skip, momentum_buffers[i].to(op), new_buf)
        p.copy_(new_p)
        if new_buf is not None:
            momentum_buffers[i].copy_(new_buf)
