"""Reference SoftMuon / Muon with the auxiliary AdamW (docs/algorithms.md sections 2, 3 and
5), float64."""

from __future__ import annotations

import math

import torch

from .spectral import (
    matrix_view,
    muon_scale,
    newton_schulz5,
    phi_tau,
    soft_newton_schulz,
    statistic_view,
)
from .temperature import median_mad, resolve_phases, temperature_schedule

SOFT_MAPS = ("newton_schulz", "accurate")


class SoftMuonReference:
    """Runs SoftMuon on float64 copies of the parameters; Muon when sign_steps is math.inf.

    `params` is a list of param-group dicts, each with "params" (tensors) and "use_muon"
    (bool, True when absent), plus optional per-group overrides of the keyword options. A
    plain list of tensors is one group with use_muon=True.

    In a use_muon group every parameter with >= 2 dimensions gets the Muon update (a conv
    weight through its (size0, -1) view); parameters with fewer dimensions get AdamW with
    the group's adamw_* values. In a use_muon=False group every parameter gets AdamW; there
    the keys "lr", "betas", "eps", "weight_decay" are AdamW's, and they default to adamw_lr,
    adamw_betas, adamw_eps, adamw_weight_decay.

    step(grads) takes one gradient per parameter, in group order, as a flat list or a list
    of per-group lists (None: no gradient this step, the parameter and its state stay as
    they are) and returns the flat list of float64 parameters.

    ns_dtype is the dtype NS5 and the "newton_schulz" soft map run in (torch.bfloat16
    emulates the fused path); soft_map="accurate" is the exact phi_tau from an fp64 SVD.
    storage_dtype rounds parameters and optimizer state to that dtype after every step.

    Per group i: `temperature(i)` / `last_temperatures[i]` is the tau of the last step
    (None in the sign phase and for AdamW groups), `fits[i]` is (median, mad) once fitted,
    `schedules[i]` the float64 schedule, `steps[i]` the group's step count k.
    `last_directions[j]` / `last_updates[j]` are the post-momentum direction d and the
    scaled update O (before lr) of flat parameter j at its last Muon step.
    """

    def __init__(
        self,
        params,
        *,
        lr=0.02,
        momentum=0.95,
        nesterov=True,
        weight_decay=0.0,
        ns_steps=5,
        total_steps=None,
        alpha_sign=0.9,
        sign_steps=None,
        transition_steps=None,
        eps=1e-4,
        newton_iters=10,
        tmax=1e9,
        soft_map="newton_schulz",
        soft_steps=5,
        adjust_lr="original",
        adamw_lr=3e-4,
        adamw_betas=(0.9, 0.95),
        adamw_eps=1e-10,
        adamw_weight_decay=0.0,
        ns_dtype=torch.float64,
        storage_dtype=None,
    ):
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            ns_steps=ns_steps,
            total_steps=total_steps,
            alpha_sign=alpha_sign,
            sign_steps=sign_steps,
            transition_steps=transition_steps,
            eps=eps,
            newton_iters=newton_iters,
            tmax=tmax,
            soft_map=soft_map,
            soft_steps=soft_steps,
            adjust_lr=adjust_lr,
            adamw_lr=adamw_lr,
            adamw_betas=adamw_betas,
            adamw_eps=adamw_eps,
            adamw_weight_decay=adamw_weight_decay,
            ns_dtype=ns_dtype,
        )
        params = list(params)
        if params and isinstance(params[0], torch.Tensor):
            params = [dict(params=params, use_muon=True)]
        self.storage_dtype = storage_dtype
        self.params = []
        self.groups = []
        for spec in params:
            self.groups.append(self._make_group(dict(spec), defaults))
        n = len(self.params)
        self.state = [dict() for _ in range(n)]
        self.last_directions = [None] * n
        self.last_updates = [None] * n
        self.steps = [0] * len(self.groups)
        self.fits = [None] * len(self.groups)
        self.schedules = [None] * len(self.groups)
        self.last_temperatures = [None] * len(self.groups)

    def _make_group(self, spec, defaults):
        tensors = list(spec.pop("params"))
        use_muon = bool(spec.pop("use_muon", True))
        adamw_keys = ("lr", "betas", "eps", "weight_decay")
        if not use_muon:
            overrides = {k: spec.pop(k) for k in adamw_keys if k in spec}
        unknown = set(spec) - set(defaults)
        if unknown:
            raise ValueError(f"unknown param-group options: {sorted(unknown)}")
        g = {**defaults, **spec}
        adamw = dict(
            lr=g["adamw_lr"],
            betas=tuple(g["adamw_betas"]),
            eps=g["adamw_eps"],
            weight_decay=g["adamw_weight_decay"],
        )
        if not use_muon:
            adamw.update(overrides)
        group = dict(use_muon=use_muon, adamw=adamw, index=[])
        if use_muon:
            if g["soft_map"] not in SOFT_MAPS:
                raise ValueError(f"Invalid soft_map: {g['soft_map']!r} (expected {SOFT_MAPS})")
            muon_scale(1, 1, g["adjust_lr"])  # validates the name
            if g["sign_steps"] == math.inf:
                S, T = math.inf, 1
            else:
                S, T = resolve_phases(
                    g["total_steps"], g["alpha_sign"], g["sign_steps"], g["transition_steps"]
                )
            group.update(g, S=S, T=T)
        for p in tensors:
            group["index"].append(len(self.params))
            self.params.append(p.detach().double().clone())
        return group

    # -- schedule --------------------------------------------------------------------

    def temperature(self, group_index=0):
        """tau used at the last step by the group (None in the sign phase / for AdamW)."""
        return self.last_temperatures[group_index]

    def _fit(self, gi, group, live):
        """Temperature of group gi at its step k; fits the schedule at the first step
        k > S with gradients (k = S + 1 when the group has gradients there)."""
        k = self.steps[gi]
        if not group["use_muon"] or k <= group["S"]:
            return None
        if self.schedules[gi] is None:
            if not live:
                return None
            finite = all(bool(torch.isfinite(g).all()) for _, g in live)
            sv = [torch.linalg.svdvals(statistic_view(g)) for _, g in live] if finite else []
            mu, s = median_mad(sv) if finite else (math.nan, math.nan)
            if not (math.isfinite(float(mu)) and math.isfinite(float(s))):
                raise ValueError(
                    f"non-finite singular-value statistics at the fit step of group {gi}"
                )
            self.fits[gi] = (float(mu), float(s))
            self.schedules[gi] = temperature_schedule(
                mu,
                s,
                group["T"],
                eps=group["eps"],
                newton_iters=group["newton_iters"],
                tmax=group["tmax"],
                kind="algebraic",
            )
        j = min(k - group["S"] - 1, group["T"] - 1)
        return float(self.schedules[gi][j])

    # -- step ------------------------------------------------------------------------

    def _split(self, grads):
        grads = list(grads)
        if grads and all(isinstance(g, (list, tuple)) for g in grads):
            grads = [g for per_group in grads for g in per_group]
        if len(grads) != len(self.params):
            raise ValueError(f"expected {len(self.params)} gradients, got {len(grads)}")
        return grads

    def step(self, grads):
        grads = self._split(grads)
        lives, taus = [], []
        # Every group's fit runs before any parameter changes: a bad statistic raises with
        # the optimizer exactly as it was (step counts included).
        steps = list(self.steps)
        try:
            for gi, group in enumerate(self.groups):
                self.steps[gi] += 1
                idx = group["index"]
                live = [(i, grads[i].detach().double()) for i in idx if grads[i] is not None]
                lives.append(live)
                taus.append(self._fit(gi, group, live))
        except ValueError:
            self.steps = steps
            raise
        for gi, group in enumerate(self.groups):
            self.last_temperatures[gi] = taus[gi]
            for i, g in lives[gi]:
                if group["use_muon"] and self.params[i].dim() >= 2:
                    self._muon(i, g, group, taus[gi])
                else:
                    self._adamw(i, g, group["adamw"])
        return self.params

    def _muon(self, i, g, group, tau):
        st = self.state[i]
        m = group["momentum"]
        buf = st.get("momentum_buffer")
        if buf is None:
            buf = torch.zeros_like(g)
        buf = torch.lerp(buf, g, 1 - m)
        d = torch.lerp(g, buf, m) if group["nesterov"] else buf
        D = matrix_view(d)
        if tau is None:
            orth = newton_schulz5(D, group["ns_steps"], group["ns_dtype"])
        elif group["soft_map"] == "newton_schulz":
            orth = soft_newton_schulz(D, tau, group["soft_steps"], group["ns_dtype"])
        else:
            orth = phi_tau(D, tau)
        rows, cols = D.shape
        scale = muon_scale(rows, cols, group["adjust_lr"])
        orth = orth.double().reshape(d.shape)
        lr = group["lr"]
        p = self.params[i] * (1 - lr * group["weight_decay"])
        self.params[i] = self._store(p - (lr * scale) * orth)
        st["momentum_buffer"] = self._store(buf)
        self.last_directions[i] = d
        self.last_updates[i] = orth * scale

    def _adamw(self, i, g, opt):
        st = self.state[i]
        if "step" not in st:
            st.update(step=0, exp_avg=torch.zeros_like(g), exp_avg_sq=torch.zeros_like(g))
        st["step"] += 1
        t = st["step"]
        lr, (beta1, beta2), eps = opt["lr"], opt["betas"], opt["eps"]
        m = beta1 * st["exp_avg"] + (1 - beta1) * g
        v = beta2 * st["exp_avg_sq"] + (1 - beta2) * g * g
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        p = self.params[i] * (1 - lr * opt["weight_decay"])
        self.params[i] = self._store(p - lr * m_hat / (torch.sqrt(v_hat) + eps))
        st["exp_avg"], st["exp_avg_sq"] = self._store(m), self._store(v)

    def _store(self, t):
        return t if self.storage_dtype is None else t.to(self.storage_dtype).double()


class MuonReference(SoftMuonReference):
    """Muon with the auxiliary AdamW: SoftMuonReference in the sign phase forever."""

    def __init__(self, params, **kwargs):
        for key in ("total_steps", "sign_steps", "transition_steps"):
            if kwargs.get(key) is not None:
                raise ValueError(f"Muon has no transition; {key} is not an option")
        super().__init__(params, sign_steps=math.inf, **kwargs)
