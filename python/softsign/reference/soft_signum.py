"""Reference SoftSignum / Signum (docs/algorithms.md section 4) in float64, one parameter list,
one group, and their option tables. The element-wise optimizers differ only in how the
direction d comes from the gradient and the buffer (the momentum rule, `_direction`); the
sign, the fit and the soft map are shared (SoftLion's reference subclasses this one)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .options import (
    FUSED,
    MAXIMIZE,
    OPTIONS,
    UNIT,
    Option,
    add_pair,
    lr_option,
    weight_decay_option,
)
from .temperature import GroupSchedule

__all__ = ["SignumReference", "SoftSignumReference"]


def nesterov_needs_momentum(values: Mapping) -> None:
    if values.get("nesterov") and (values["momentum"] <= 0 or values["dampening"] != 0):
        raise ValueError(
            "Invalid nesterov: Nesterov momentum requires a momentum and zero dampening "
            "(momentum > 0, dampening = 0)"
        )


HEAVY_BALL = (
    lr_option(1e-3),
    Option(
        "momentum",
        0.9,
        "heavy-ball momentum; 0 is signSGD with no buffer",
        UNIT,
        label="momentum value",
    ),
    Option("dampening", 0.0, "scales the gradient's share of the buffer by 1 - dampening", UNIT),
    weight_decay_option(),
    Option("nesterov", False, "d = g + momentum * buf (needs momentum > 0, dampening = 0)"),
    MAXIMIZE,
    FUSED,
)


add_pair("Signum", HEAVY_BALL, rules=(nesterov_needs_momentum,))


class SoftSignumReference:
    """Runs SoftSignum on float64 copies of `params`, with the options of
    softsign.SoftSignum (keywords; the defaults are the optimizer's).

    step(grads) takes one gradient per parameter (None: no gradient this step) and
    returns the float64 parameters. `tau` is the temperature of the last step (None in
    the sign phase); `fit` is (median, mad) once fitted; `last_directions[i]` the direction
    d of parameter i at its last step (the values the fit reads). storage_dtype rounds
    parameters and buffers to that dtype after every step.
    """

    _table = OPTIONS["SoftSignum"]
    _statistic = "the post-momentum directions"

    def __init__(self, params, *, storage_dtype=None, **options):
        self.options = self._table.fill(options)
        self.storage_dtype = storage_dtype
        self.params = [p.detach().double().clone() for p in params]
        self.bufs = [None] * len(self.params)
        self.group = GroupSchedule(self.options, "tanh", self._statistic)
        self.S, self.T = self.group.S, self.group.T
        self.k = 0
        self.tau = None
        self.last_directions = [None] * len(self.params)

    @property
    def fit(self):
        return self.group.fit

    @property
    def schedule(self):
        return self.group.schedule

    def _direction(self, i, g):
        """(d, the new buffer or None) of parameter i from its gradient g: the heavy ball."""
        momentum = self.options["momentum"]
        if momentum == 0:
            return g, None
        buf = self.bufs[i]
        if buf is None:
            buf = g.clone()
        else:
            buf = momentum * buf + (1 - self.options["dampening"]) * g
        d = g + momentum * buf if self.options["nesterov"] else buf
        return d, buf

    def step(self, grads):
        o = self.options
        live = [(i, g.detach().double()) for i, g in enumerate(grads) if g is not None]
        live = [(i, -g if o["maximize"] else g) for i, g in live]
        dirs = {i: self._direction(i, g) for i, g in live}
        # The fit comes before any change: a bad statistic raises with the state as it was.
        self.tau = self.group.temperature(self.k + 1, lambda: [d for d, _ in dirs.values()])
        self.k += 1
        lr, decay = o["lr"], 1 - o["lr"] * o["weight_decay"]
        for i, (d, buf) in dirs.items():
            self.last_directions[i] = d
            u = torch.sign(d) if self.tau is None else torch.tanh(self.tau * d)
            self.params[i] = self._store(self.params[i] * decay - lr * u)
            if buf is not None:
                self.bufs[i] = self._store(buf)
        return self.params

    def _store(self, t):
        return t if self.storage_dtype is None else t.to(self.storage_dtype).double()


class SignumReference(SoftSignumReference):
    """Signum: SoftSignumReference in the sign phase forever."""

    _table = OPTIONS["Signum"]
