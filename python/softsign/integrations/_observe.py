"""What a training stack needs to see of a softsign optimizer: the optimizer itself behind
its wrappers (`unwrap`), and per param group the phase, the temperature and the saturation
fraction, read when asked (at a logging step), never inside step().

The saturation fraction of a group is the share of its coordinates (SoftMuon: of its
singular values) that the soft map still treats like the sign: |tau * d| above a threshold
where the map is within 1% of its limit (Note [saturation threshold]). It is read from the
momentum buffers the optimizer keeps in its state, on their device; asking for it waits for
the device (one reduction and one read per device), step() is never touched.
"""

from __future__ import annotations

import math

import torch

from .._fit import resolve_phases
from ._schedule import unfilled

# Note [saturation threshold]: a coordinate counts as saturated (sign-like) when its soft
# map is within 1% of +-1, |map(tau * d)| >= 0.99. For tanh (SoftSignum, SoftLion) that is
# |tau * d| >= atanh(0.99) = 2.6467; for SoftMuon's algebraic map phi(x) = x / sqrt(1 + x^2)
# it is tau * sigma >= 0.99 / sqrt(1 - 0.99^2) = 7.0179. (The fit's own saturation
# constant c_eps, at eps = 1e-4, is far stricter: 4.95 and 70.7; docs/algorithms.md
# section 1.)
SATURATION_LEVEL = 0.99
THRESHOLDS = {
    "tanh": math.atanh(SATURATION_LEVEL),
    "algebraic": SATURATION_LEVEL / math.sqrt(1.0 - SATURATION_LEVEL**2),
}

# Note [null singular values]: the Gram route finds a singular value only to about
# sqrt(n * 2^-52) of its matrix's largest (5e-7 at n = 3072), so a null direction of a
# rank-deficient momentum (a layer whose gradients have low rank, such as the one before a
# narrow head) comes out as noise of that size, which tau near 1e9 would count as
# saturated. Singular values below this share of their matrix's largest count as 0: the
# soft map sends them to about 0, an SGD-like (unsaturated) step.
NULL_SINGULAR_VALUE = 1e-6

# A group's phase by its step number k (docs/algorithms.md section 2), and the number a
# logger gets for it (loggers take numbers only).
PHASES = {"sign": 0, "transition": 1, "final": 2}

_WRAPPER_ATTRIBUTES = ("_optimizer", "optimizer")  # Lightning's, accelerate's (and others')


def unwrap(optimizer):
    """The softsign optimizer inside `optimizer`: the optimizer itself, or the one a training
    stack wrapped, seen through accelerate's AcceleratedOptimizer (`.optimizer`, what a
    Hugging Face Trainer's `trainer.optimizer` is), Lightning's LightningOptimizer
    (`._optimizer`, what `pl_module.optimizers()` returns) and wrappers of wrappers.

    Raises:
        TypeError: no softsign optimizer is inside (the chain of types is named).
    """
    from ..optim._base import ScheduledOptimizer

    chain, current = [], optimizer
    for _ in range(32):  # a wrapper chain longer than this is a cycle
        chain.append(type(current).__name__)
        inner = _wrapped(current)
        if inner is None:
            break
        current = inner
    # After the wrappers: LightningOptimizer imitates the class it wraps, so isinstance
    # alone would take the wrapper for the optimizer.
    if isinstance(current, ScheduledOptimizer) and _wrapped(current) is None:
        return current
    raise TypeError(
        "softsign: no softsign optimizer inside "
        + " -> ".join(chain)
        + "; expected one of softsign's optimizers (SoftSignum, SoftMuon, SoftLion, Signum, "
        "Muon, Lion), alone or wrapped by accelerate (.optimizer) or Lightning (._optimizer)"
    )


def _wrapped(obj):
    """The optimizer `obj` wraps, or None when it wraps none."""
    for name in _WRAPPER_ATTRIBUTES:
        try:
            inner = object.__getattribute__(obj, name)  # no __getattr__ forwarding
        except AttributeError:
            continue
        if inner is not obj and hasattr(inner, "param_groups") and hasattr(inner, "step"):
            return inner
    return None


def temperature(optimizer, group: int = 0) -> float | None:
    """The temperature tau of param group `group`'s last step, through any wrapper
    (`unwrap`); None in the sign phase, before the fit, and for groups without a schedule
    (SoftMuon's AdamW groups, Signum, Muon, Lion). Reads a device value: call it at logging
    steps."""
    return unwrap(optimizer).temperature(group)


def phase(optimizer, group: int = 0) -> str | None:
    """The phase of param group `group` after its last step: "sign" (k <= S), "transition"
    (S < k <= S + T) or "final" (k > S + T: the last temperature, held), from the group's
    step count k alone (host values, no device read); None for a group without a schedule
    (SoftMuon's AdamW groups). Signum, Muon and Lion are always in "sign". A group whose
    total_steps is still "auto" has taken no step: "sign"."""
    opt = unwrap(optimizer)
    g = opt.param_groups[group]
    if not opt._scheduled(g):
        return None
    if unfilled(g):
        return "sign"
    sign_steps, steps = resolve_phases(g)
    k = g["step"]
    if k <= sign_steps:
        return "sign"
    return "transition" if k <= sign_steps + steps else "final"


def saturation(optimizer, group: int = 0, threshold: float | None = None) -> float | None:
    """The fraction of param group `group`'s coordinates still in sign-like saturation after
    its last step: |tau * d| > threshold, tau the group's temperature (`temperature`).

    * d is read from the momentum buffers kept in the optimizer's state (on their device):
      SoftSignum's `momentum_buffer` is exactly the direction of its last step without
      Nesterov; with nesterov=True the step used g + momentum * buf, and the buffer
      leaves out that step's gradient term. SoftLion's `exp_avg` is m after its update;
      the step took the sign of c = beta1 * m_old + (1 - beta1) * g, so the buffer is the
      EMA that c interpolates, one gradient later. With momentum = 0 (no buffer) d is
      the gradient, read from `p.grad` when it is still there (None otherwise).
    * SoftMuon (its use_muon=True groups): the exact singular values sigma of each
      matrix's `momentum_buffer` (viewed as SoftMuon views it, (out, in*kh*kw)), from the
      same float64 Gram-eigenvalue routine as the fit (`softsign.functional.
      singular_values`): a Gram matrix and an eigendecomposition per matrix, paid only when
      asked. With nesterov=True (the default) the step mapped lerp(g, buf, momentum), not
      the buffer. The fraction is over all singular values of the group, tau * sigma >
      threshold, with the algebraic map phi(x) = x / sqrt(1 + x^2).
      Singular values below 1e-6 of their matrix's largest (`NULL_SINGULAR_VALUE`: the
      routine cannot tell them from 0) count as 0, not saturated.
    * The default threshold is where the map is within 1% of +-1: atanh(0.99) = 2.6467 for
      tanh, 0.99 / sqrt(1 - 0.99^2) = 7.0179 for phi (`THRESHOLDS`).
    * 1.0 in the sign phase and before the fit, by definition (every step is the sign, or
      Muon's orthogonalization); None for a group without a schedule (SoftMuon's AdamW
      groups) and for a group with nothing to read (no buffers yet).

    Never called inside step(), so it adds no synchronization there; it waits for the device
    itself (one reduction and one read per device). For DTensor (FSDP2) parameters the
    counts are global, which is a collective: call it on every rank.
    """
    opt = unwrap(optimizer)
    if not opt._scheduled(opt.param_groups[group]):
        return None
    return _saturation(opt, group, threshold, opt.temperature(group))


def _saturation(opt, group: int, threshold: float | None, tau: float | None) -> float | None:
    """`saturation` of a scheduled group at the temperature `tau` of its last step."""
    from ..optim.soft_muon import _MuonBase

    if tau is None:
        return 1.0
    g = opt.param_groups[group]
    if threshold is None:
        threshold = THRESHOLDS[opt._kind]
    limit = float(threshold) / tau
    if isinstance(opt, _MuonBase):
        counts = _singular_value_counts(opt, g, limit)
    else:
        counts = _coordinate_counts(opt, g, limit)
    if not counts:
        return None
    above = total = 0
    for device_counts in _by_device(counts).values():
        hit, n = torch.stack(device_counts).sum(0).tolist()
        above, total = above + hit, total + n
    return above / total if total else None


def _coordinate_counts(opt, group, limit) -> list[torch.Tensor]:
    """[above, total] per tensor of the element-wise optimizers' directions."""
    buffered = opt._buffered(group)
    counts = []
    for p in group["params"]:
        d = opt.state.get(p, {}).get(opt._buffer) if buffered else p.grad
        if d is None or d.numel() == 0:
            continue
        d = d.detach()
        above = _global(_magnitude(d).gt(limit).sum())
        counts.append(torch.stack([above, torch.full_like(above, d.numel())]))
    return counts


def _singular_value_counts(opt, group, limit) -> list[torch.Tensor]:
    """[above, total] per matrix of a SoftMuon matrix group, from its buffers' spectra."""
    from .. import functional

    bufs = []
    for p in group["params"]:
        buf = opt.state.get(p, {}).get("momentum_buffer")
        if buf is not None and buf.numel():
            # The spectrum needs the whole matrix: a sharded one is gathered (a collective).
            bufs.append(buf.full_tensor() if _is_dtensor(buf) else buf.detach())
    counts = []
    for sigma in functional.singular_values(bufs) if bufs else []:
        # Within the routine's error of 0 (Note [null singular values]): 0, not saturated.
        floor = sigma.amax() * NULL_SINGULAR_VALUE if sigma.numel() else 0.0
        above = (sigma.gt(limit) & sigma.gt(floor)).sum()
        counts.append(torch.stack([above, torch.full_like(above, sigma.numel())]))
    return counts


def _magnitude(d: torch.Tensor) -> torch.Tensor:
    """|d| compared in at least float32: a half-precision limit would round."""
    if d.dtype in (torch.float16, torch.bfloat16):
        d = d.float()
    return d.abs()


def _global(count):
    """A count over a DTensor, summed over the ranks that shard it."""
    return count.full_tensor() if _is_dtensor(count) else count


def _is_dtensor(t) -> bool:
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed
        return False
    return isinstance(t, DTensor)


def _by_device(counts):
    out: dict = {}
    for c in counts:
        out.setdefault(c.device, []).append(c)
    return out


def metrics(
    optimizer,
    *,
    prefix: str = "softsign/",
    saturation_fraction: bool = True,
    threshold: float | None = None,
) -> dict[str, float]:
    """Per scheduled param group i: f"{prefix}phase_{i}" (0 sign, 1 transition, 2 final:
    `PHASES`), f"{prefix}temperature_{i}" (once there is one) and
    f"{prefix}saturation_{i}" (when `saturation_fraction`), as numbers for a logger. Groups
    without a schedule (SoftMuon's AdamW groups) are left out. Reads device values."""
    opt = unwrap(optimizer)
    out: dict[str, float] = {}
    for i in range(len(opt.param_groups)):
        name = phase(opt, i)
        if name is None:
            continue
        out[f"{prefix}phase_{i}"] = PHASES[name]
        tau = opt.temperature(i)
        if tau is not None:
            out[f"{prefix}temperature_{i}"] = tau
        if saturation_fraction:
            fraction = _saturation(opt, i, threshold, tau)
            if fraction is not None:
                out[f"{prefix}saturation_{i}"] = fraction
    return out
