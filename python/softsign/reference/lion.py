"""Reference SoftLion / Lion in float64 (docs/algorithms.md section 7), and their option
tables: SoftSignum's reference with Lion's momentum rule."""

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
