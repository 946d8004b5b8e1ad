"""The soft-sign step in plain PyTorch ops: the fallback for devices without a fused
kernel (fused=False) and the pure-PyTorch baseline of the benchmarks. Same math and
same no-op rule as the kernels (Note [soft-sign element math] in csrc/ops)."""

from __future__ import annotations

import torch


def soft_sign_step_(
    params,
    grads,
    momentum_buffers,
    *,
    lr,
    lr_tensor,
    momentum,
    dampening,
    weight_decay,
    nesterov,
    maximize,
    first_step,
    temperature,
    grad_scale,
    found_inf,
):
    # One outcome per call (Note [temperature range] in csrc/ops/soft_sign_step.h): the
    # temperature must be finite in the narrowest math type among the call's tensors.
    bad_temperature = None
    if temperature is not None:
        narrow = any(p.dtype != torch.float64 and p.numel() > 0 for p in params)
        tau = temperature.reshape(()).to(torch.float32 if narrow else torch.float64)
        bad_temperature = ~torch.isfinite(tau)
    for i, (p, g) in enumerate(zip(params, grads)):
        op = torch.float64 if p.dtype == torch.float64 else torch.float32
        g = g.to(op)
        if grad_scale is not None:
            g = g / grad_scale.to(op)
        if maximize:
            g = -g
        if momentum != 0:
            buf = momentum_buffers[i]
            new_buf = g if first_step else momentum * buf.to(op) + (1 - dampening) * g
            d = g + momentum * new_buf if nesterov else new_buf
        else:
            d = g
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
            if momentum != 0:
                new_buf = torch.where(skip, buf.to(op), new_buf)
        p.copy_(new_p)
        if momentum != 0:
            buf.copy_(new_buf)
