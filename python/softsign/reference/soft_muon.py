"""Reference SoftMuon / Muon with the auxiliary AdamW (docs/algorithms.md sections 2, 3 and
5), float64."""

from __future__ import annotations

import torch

from .options import (
    NONNEGATIVE,
    OPTIONS,
    SCHEDULE,
    SCHEDULE_ALIASES,
    OneOf,
    Option,
    OptionTable,
    Pair,
    Range,
    lr_option,
    needs_a_schedule,
    weight_decay_option,
)
from .spectral import (
    matrix_view,
    muon_scale,
    newton_schulz5,
    phi_tau,
    soft_newton_schulz,
    statistic_view,
)
from .temperature import GroupSchedule

__all__ = ["MuonReference", "SoftMuonReference"]

_MUON_BELOW_ONE = Range(low=0.0, high=1.0, high_open=True)
MUON = (
    lr_option(0.02),
    Option(
        "momentum",
        0.95,
        "EMA momentum: buf = lerp(buf, g, 1 - momentum)",
        _MUON_BELOW_ONE,
        label="momentum value",
    ),
    Option("nesterov", True, "orthogonalize lerp(g, buf, momentum) instead of buf"),
    weight_decay_option("decoupled weight decay of the matrices"),
    Option("ns_steps", 5, "Newton-Schulz steps of the sign phase", Range(low=0, integer=True)),
)
SOFT_MUON_MAPS = (
    Option(
        "soft_map",
        "newton_schulz",
        "how Phi_tau is computed",
        OneOf(("newton_schulz", "accurate")),
    ),
    Option(
        "soft_steps",
        5,
        "steps of the newton_schulz soft map",
        Range(low=0, integer=True),
    ),
)
ADJUST_LR = Option(
    "adjust_lr",
    "original",
    "update scale: sqrt(max(1, rows / cols)), or 0.2 sqrt(max(rows, cols))",
    OneOf(("original", "match_rms_adamw")),
)
# GPT-2's Conv1D (transformers) stores its weight as (in, out), the transpose of nn.Linear's:
# the shape-dependent scale must be that of the (out, in) matrix. Orthogonalization and the
# soft map commute with transposition, so the scale is all that changes.
TRANSPOSED = Option(
    "transposed",
    False,
    "the group's matrices are stored as (in, out), like transformers' Conv1D; the "
    "shape-dependent update scale (adjust_lr) is computed for the (out, in) matrix",
    OneOf((False, True)),
)
_ADAMW_BETAS = Pair(_MUON_BELOW_ONE, "AdamW beta")
ADAMW_DEFAULTS = (
    Option(
        "adamw_lr",
        3e-4,
        "learning rate of the AdamW groups",
        NONNEGATIVE,
        label="AdamW learning rate",
    ),
    Option("adamw_betas", (0.9, 0.95), "AdamW's moment decay rates", _ADAMW_BETAS),
    Option("adamw_eps", 1e-10, "AdamW's denominator epsilon", NONNEGATIVE, label="AdamW eps"),
    Option(
        "adamw_weight_decay",
        0.0,
        "AdamW's decoupled weight decay",
        NONNEGATIVE,
        label="AdamW weight_decay",
    ),
)
# What a use_muon=False group of SoftMuon/Muon holds under torch.optim.AdamW's names; each
# defaults to its adamw_* option.
ADAMW_GROUP = OptionTable(
    "AdamW group",
    (
        Option("lr", None, "AdamW's lr", NONNEGATIVE, label="AdamW learning rate"),
        Option("betas", None, "AdamW's betas", _ADAMW_BETAS),
        Option("eps", None, "AdamW's eps", NONNEGATIVE, label="AdamW eps"),
        Option(
            "weight_decay", None, "AdamW's weight decay", NONNEGATIVE, label="AdamW weight_decay"
        ),
    ),
)

OPTIONS["Muon"] = OptionTable("Muon", MUON + (ADJUST_LR, TRANSPOSED) + ADAMW_DEFAULTS)
OPTIONS["SoftMuon"] = OptionTable(
    "SoftMuon",
    MUON + SCHEDULE + SOFT_MUON_MAPS + (ADJUST_LR, TRANSPOSED) + ADAMW_DEFAULTS,
    rules=(needs_a_schedule,),
    aliases=SCHEDULE_ALIASES,
)

SOFT_MAPS = ("newton_schulz", "accurate")


class SoftMuonReference:
    """Runs SoftMuon on float64 copies of the parameters, with the options of
    softsign.SoftMuon (keywords; the defaults are the optimizer's). MuonReference is Muon.

    `params` is a list of param-group dicts, each with "params" (tensors) and "use_muon"
    (bool, True when absent), plus optional per-group overrides of the keyword options. A
    plain list of tensors is one group with use_muon=True.

    In a use_muon group every parameter with >= 2 dimensions gets the Muon update (a conv
    weight through its (size0, -1) view); parameters with fewer dimensions get AdamW with
    the group's adamw_* values. In a use_muon=False group every parameter gets AdamW; there
    the keys "lr", "betas", "eps", "weight_decay" are AdamW's, and they default to adamw_lr,
    adamw_betas, adamw_eps, adamw_weight_decay.
    With transposed=True a use_muon group's matrices (2-D) are stored as (in, out): the
    update scale is that of the (out, in) matrix.

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

    _table = OPTIONS["SoftMuon"]

    def __init__(self, params, *, ns_dtype=torch.float64, storage_dtype=None, **options):
        defaults = dict(self._table.fill(options), ns_dtype=ns_dtype)
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
            if g.get("soft_map", "newton_schulz") not in SOFT_MAPS:
                raise ValueError(f"Invalid soft_map: {g['soft_map']!r} (expected {SOFT_MAPS})")
            muon_scale(1, 1, g["adjust_lr"])  # validates the name
            schedule = GroupSchedule(g, "algebraic", "the singular values of the raw gradients")
            group.update(g, schedule=schedule)
        for p in tensors:
            if use_muon and g["transposed"] and p.dim() != 2:
                raise ValueError(
                    f"Invalid transposed=True: needs 2-D matrices, got shape {tuple(p.shape)}"
                )
            group["index"].append(len(self.params))
            self.params.append(p.detach().double().clone())
        return group

    # -- schedule --------------------------------------------------------------------

    @property
    def fits(self):
        """(median, mad) of each group once fitted (None for AdamW groups and before)."""
        return [g["schedule"].fit if g["use_muon"] else None for g in self.groups]

    @property
    def schedules(self):
        """The float64 schedule of each group once fitted."""
        return [g["schedule"].schedule if g["use_muon"] else None for g in self.groups]

    def temperature(self, group_index=0):
        """tau used at the last step by the group (None in the sign phase / for AdamW)."""
        return self.last_temperatures[group_index]

    @staticmethod
    def _singular_values(live):
        """The fit's statistic: every singular value of the group's raw gradients (NaN when
        a gradient is not finite, where the SVD has no answer)."""
        if not all(bool(torch.isfinite(g).all()) for _, g in live):
            return [torch.full((1,), float("nan"), dtype=torch.float64)]
        return [torch.linalg.svdvals(statistic_view(g)) for _, g in live]

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
                tau = None
                if group["use_muon"]:
                    tau = group["schedule"].temperature(
                        self.steps[gi], lambda live=live: self._singular_values(live)
                    )
                taus.append(tau)
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
        if group["transposed"]:  # stored (in, out): the scale of the (out, in) matrix
            rows, cols = cols, rows
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

    _table = OPTIONS["Muon"]
