r"""Reference SoftLion / Lion in float64, and their option tables: SoftSignum's reference
(docs/algorithms.md section 4) with Lion's momentum rule. This docstring is their
specification.

Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms") keeps one moment m
per parameter, zero before the first step. For gradient g (negated when maximize=True):

    c <- beta1 * m + (1 - beta1) * g        # the direction, from m before its update
    p <- p * (1 - lr * weight_decay)        # decoupled weight decay, first
    u <- sign(c)                            # in the sign phase
    u <- tanh(tau_j * c)                    # in SoftLion's transition and after it
    p <- p - lr * u
    m <- beta2 * m + (1 - beta2) * g

SoftLion is softsign's extension, not the paper's (which softens Signum and Muon) nor
Lion's: the paper's phases (section 2) and the schedule of section 3 with the tanh map, fitted
once at step S + 1 to the median and MAD of c over every element of the group. Lion is
SoftLion's sign phase forever. Options: lr, betas, weight_decay, maximize and fused with
lion-pytorch's defaults, and for SoftLion the schedule's; per-parameter state is lion-pytorch's
"exp_avg".

The kernels are SoftSignum's with one more momentum rule ("lion": the direction from the
moment before its update; the moment then moves as a heavy-ball buffer with momentum =
dampening = beta2), so the fused step, the exact selection and section 4's no-op rules hold.
1 - beta is formed in the math type (float32 for float32, bfloat16 and float16 parameters),
where lion-pytorch forms it in Python's float64: the moments differ in the last bits, the
parameters (a sign) almost never.
"""

from __future__ import annotations

import torch

from .options import (
    FUSED,
    MAXIMIZE,
    OPTIONS,
    UNIT,
    Option,
    Pair,
    add_pair,
    lr_option,
    weight_decay_option,
)
from .soft_signum import SoftSignumReference

__all__ = ["LionReference", "SoftLionReference"]

LION = (
    lr_option(1e-4),
    Option(
        "betas",
        (0.9, 0.99),
        "(beta1, beta2): c = beta1 * m + (1 - beta1) * g, m = beta2 * m + (1 - beta2) * g",
        Pair(UNIT, "beta"),
    ),
    weight_decay_option(),
    MAXIMIZE,
    FUSED,
)

add_pair("Lion", LION)


class SoftLionReference(SoftSignumReference):
    """SoftLion, with the options of softsign.SoftLion: Lion's direction
    c = beta1 * m + (1 - beta1) * g from the buffer m before its update, which then moves to
    beta2 * m + (1 - beta2) * g (m starts at zero); the sign of c, and tanh(tau * c) once the
    schedule (fitted to the distribution of c) starts."""

    _table = OPTIONS["SoftLion"]
    _statistic = "Lion's interpolated directions c"

    def _direction(self, i, g):
        beta1, beta2 = self.options["betas"]
        m = self.bufs[i] if self.bufs[i] is not None else torch.zeros_like(g)
        return beta1 * m + (1 - beta1) * g, beta2 * m + (1 - beta2) * g


class LionReference(SoftLionReference):
    """Lion (Chen et al. 2023): SoftLionReference in the sign phase forever."""

    _table = OPTIONS["Lion"]
