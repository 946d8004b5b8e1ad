"""Reference SoftSignum / Signum (docs/algorithms.md section 4) in float64, one parameter
list, one group."""

from __future__ import annotations

import math

import torch

from .temperature import median_mad, resolve_phases, temperature_schedule


class SoftSignumReference:
    """Runs SoftSignum on float64 copies of `params`; Signum when sign_steps is math.inf.

    step(grads) takes one gradient per parameter (None: no gradient this step) and
    returns the float64 parameters. `tau` is the temperature of the last step (None in
    the sign phase); `fit` is (median, mad) once fitted.
    """

    def __init__(
        self,
        params,
        *,
        lr=1e-3,
        momentum=0.9,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        maximize=False,
        total_steps=None,
        alpha_sign=0.9,
        sign_steps=None,
        transition_steps=None,
        eps=1e-4,
        newton_iters=10,
        tmax=1e9,
        storage_dtype=None,
    ):
        self.storage_dtype = storage_dtype
        self.params = [p.detach().double().clone() for p in params]
        self.bufs = [None] * len(self.params)
        self.lr, self.momentum, self.dampening = lr, momentum, dampening
        self.weight_decay, self.nesterov, self.maximize = weight_decay, nesterov, maximize
        self.eps, self.newton_iters, self.tmax = eps, newton_iters, tmax
        if sign_steps == math.inf:
            self.S, self.T = math.inf, 1
        else:
            self.S, self.T = resolve_phases(total_steps, alpha_sign, sign_steps, transition_steps)
        self.k = 0
        self.schedule = None
        self.fit = None
        self.tau = None
        self.last_directions = [None] * len(self.params)

    def _direction(self, i, g):
        if self.momentum == 0:
            return g, None
        buf = self.bufs[i]
        if buf is None:
            buf = g.clone()
        else:
            buf = self.momentum * buf + (1 - self.dampening) * g
        d = g + self.momentum * buf if self.nesterov else buf
        return d, buf

    def step(self, grads):
        self.k += 1
        live = [(i, g.detach().double()) for i, g in enumerate(grads) if g is not None]
        live = [(i, -g if self.maximize else g) for i, g in live]
        dirs = {i: self._direction(i, g) for i, g in live}
        self.tau = None
        if self.k > self.S:
            if self.schedule is None and dirs:
                mu, s = median_mad([d for d, _ in dirs.values()])
                if not (math.isfinite(mu) and math.isfinite(s)):
                    raise ValueError("non-finite statistics at the fit step")
                self.fit = (float(mu), float(s))
                self.schedule = temperature_schedule(
                    mu,
                    s,
                    self.T,
                    eps=self.eps,
                    newton_iters=self.newton_iters,
                    tmax=self.tmax,
                    kind="tanh",
                )
            if self.schedule is not None:
                j = min(self.k - self.S - 1, self.T - 1)
                self.tau = float(self.schedule[j])
        for i, (d, buf) in dirs.items():
            self.last_directions[i] = d
            u = torch.sign(d) if self.tau is None else torch.tanh(self.tau * d)
            p = self.params[i]
            self.params[i] = self._store(p * (1 - self.lr * self.weight_decay) - self.lr * u)
            if buf is not None:
                self.bufs[i] = self._store(buf)
        return self.params

    def _store(self, t):
        return t if self.storage_dtype is None else t.to(self.storage_dtype).double()
