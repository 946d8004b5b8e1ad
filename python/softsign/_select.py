"""The radix-selection passes of Note [radix selection] (csrc/ops/radix_select.h) driven from
Python, so that a hook can sum each pass's histogram over ranks before its bin is picked.

The C++ driver (torch.ops.softsign.direction_median_mad) runs the same passes without a
hook; this one exists for sharded parameters, where the exact global median and MAD come
from all-reducing int64 histograms instead of gathering any values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ._library import ops


@dataclass
class Source:
    """Tensors whose post-momentum directions enter the statistic. `first_step` marks
    gradients whose momentum buffer does not exist yet (d = g, or (1 - beta1) g for Lion);
    a rule without buffers (momentum 0) passes none."""

    grads: Sequence[torch.Tensor]
    buffers: Sequence[torch.Tensor] = ()
    first_step: bool = False


def median_mad(
    sources: Sequence[Source],
    *,
    device: torch.device,
    hook: Callable[[torch.Tensor], None] | None,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
    grad_scale: torch.Tensor | None = None,
    momentum_rule: str = "heavy_ball",
    rule_coeffs: Sequence[float] = (),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower median and MAD (float64 0-dim tensors on `device`) of the directions of every
    source, after `hook` has seen (and may have changed) each histogram.

    Stage-0 keys are 64 bits wide under a hook (as in the C++ driver): every rank then runs
    the same passes whatever dtypes its shards hold (float32 values widen exactly); without
    one, 32 bits unless a tensor is float64. The momentum rule's options are the step
    op's (`momentum_rule` and its `rule_coeffs`: Note [momentum rules])."""
    wide = hook is not None or any(g.dtype == torch.float64 for src in sources for g in src.grads)
    # The library's plan, the one its C++ driver follows.
    state_size, digit_bits, bits, *passes, histogram_size = ops.radix_select_plan(
        device, wide_keys=wide
    )
    state = torch.zeros(state_size, dtype=torch.int64, device=device)
    for stage in (0, 1):
        for pass_ in range(passes[stage]):
            hist = None
            for src in sources:
                if not src.grads:
                    continue
                part = ops.radix_select_histogram(
                    list(src.grads),
                    [] if src.first_step else list(src.buffers),
                    state,
                    stage=stage,
                    pass_=pass_,
                    digit_bits=digit_bits,
                    key_bits=bits,
                    momentum=float(momentum),
                    dampening=float(dampening),
                    nesterov=bool(nesterov),
                    maximize=bool(maximize),
                    first_step=src.first_step,
                    grad_scale=grad_scale,
                    momentum_rule=momentum_rule,
                    rule_coeffs=[float(c) for c in rule_coeffs],
                )
                hist = part if hist is None else hist.add_(part)
            if hist is None:  # this rank holds no elements: its counts are zeros
                hist = torch.zeros(histogram_size, dtype=torch.int64, device=device)
            if hook is not None:
                hook(hist)
            ops.radix_select_advance_(
                state, hist, stage=stage, pass_=pass_, digit_bits=digit_bits, key_bits=bits
            )
    return ops.radix_select_result(state, key_bits=bits)
