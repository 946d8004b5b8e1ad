"""SoftMuon and Muon with an auxiliary AdamW, as torch.optim.Optimizer subclasses.

Groups carry "use_muon". Matrix groups (use_muon=True) run torch.ops.softsign.muon_step_
(same-shape matrices batched through Newton-Schulz or the soft map) and keep the schedule
state of ScheduledOptimizer ("step", "fit"); the other groups are AdamW through torch's own
fused AdamW op, with their own "lr", "betas", "eps" and "weight_decay". Per-parameter state:
"momentum_buffer" for matrices; "step", "exp_avg", "exp_avg_sq" (torch.optim.AdamW's names)
for the rest.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .._fit import resolve_phases
from .._library import ops
from ._scheduled import ScheduledOptimizer
from ._validate import alias, check_grad, check_number, check_schedule_options

_SOFT_MAPS = ("newton_schulz", "accurate")
_ADJUST_LR = ("original", "match_rms_adamw")
_ADAMW_KEYS = {"lr": "adamw_lr", "betas": "adamw_betas", "eps": "adamw_eps"}


def muon_param_groups(model: nn.Module, **muon_options) -> list[dict]:
    """Param groups for SoftMuon/Muon: the matrices of hidden layers (2-D weights and conv
    weights) with use_muon=True; embeddings, output heads (a Linear whose weight is tied to
    an embedding, or whose name ends in "lm_head", "head", "output", "classifier" or
    "fc_out"), norms and biases with use_muon=False. `muon_options` go into the matrix
    group."""
    embeddings = {
        id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
    }
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear)]
    head_names = ("lm_head", "head", "output", "classifier", "fc_out")
    heads = {
        id(m.weight)
        for name, m in linears
        if name.split(".")[-1] in head_names or id(m.weight) in embeddings
    }
    muon, other, seen = [], [], set()
    for p in model.parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        if p.ndim >= 2 and id(p) not in embeddings and id(p) not in heads:
            muon.append(p)
        else:
            other.append(p)
    groups = []
    if muon:
        groups.append(dict(params=muon, use_muon=True, **muon_options))
    if other:
        groups.append(dict(params=other, use_muon=False))
    return groups


class _MuonBase(ScheduledOptimizer):
    _kind = "algebraic"
    _schedule_keys: tuple = ()

    def __init__(self, params, defaults):
        params = list(params)
        if params and not isinstance(params[0], dict):
            params = self._route(params)
        super().__init__(params, dict(defaults, use_muon=True))

    @staticmethod
    def _route(params):
        matrices = [p for p in params if p.ndim >= 2]
        others = [p for p in params if p.ndim < 2]
        if others and matrices:
            warnings.warn(
                "softsign: matrices get the Muon update and the other parameters AdamW; "
                "embeddings and output heads are matrices too: pass "
                "softsign.muon_param_groups(model) to send them to AdamW",
                stacklevel=4,
            )
        groups = [dict(params=matrices, use_muon=True)] if matrices else []
        return groups + ([dict(params=others, use_muon=False)] if others else [])

    def add_param_group(self, param_group):
        group = dict(param_group)
        params = group["params"]
        params = [params] if isinstance(params, torch.Tensor) else list(params)
        if "use_muon" not in group:
            group["use_muon"] = all(p.ndim >= 2 for p in params)
        if not group["use_muon"]:
            for key, default in _ADAMW_KEYS.items():
                group.setdefault(key, self.defaults[default])
            group.setdefault("weight_decay", self.defaults["adamw_weight_decay"])
        super().add_param_group(group)
        group = self.param_groups[-1]
        name = type(self).__name__
        for p in group["params"]:
            if torch.is_complex(p):
                raise ValueError(f"{name} does not support complex parameters")
            if group["use_muon"] and p.ndim < 2:
                raise ValueError(
                    f"Invalid param group for {name}: use_muon=True needs matrices, got a "
                    f"parameter of shape {tuple(p.shape)}; put it in a use_muon=False group "
                    "(softsign.muon_param_groups(model) does this)"
                )
        if group["use_muon"]:
            _check_muon_group(group)
        else:
            _check_adamw_group(group)

    def _has_schedule(self, group) -> bool:
        return group["use_muon"]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        plans = [self._plan(group) for group in self.param_groups]
        # Every fit comes first: an error leaves all parameters as they were.
        taus = [
            self._step_temperature(
                gi,
                group,
                group["step"] + 1,
                next(iter(plan)) if plan else group["params"][0].device,
                bool(plan),
                lambda previous, group=group, plan=plan: self._fit(group, plan, previous),
            )
            if group["use_muon"]
            else None
            for gi, (group, plan) in enumerate(zip(self.param_groups, plans))
        ]
        for group, plan, tau in zip(self.param_groups, plans, taus):
            group["step"] += 1
            for device, (params, grads) in plan.items():
                if group["use_muon"]:
                    self._muon(group, params, grads, tau, device)
                else:
                    self._adamw(group, params, grads)
        return loss

    def _plan(self, group) -> dict:
        """The group's params with gradients, by device: {device: (params, grads)}."""
        plan: dict = {}
        for p in group["params"]:
            if p.grad is None:
                continue
            check_grad(type(self).__name__, p.grad)
            params, grads = plan.setdefault(p.device, ([], []))
            params.append(p)
            grads.append(p.grad)
        return plan

    def _fit(self, group, plan, previous):
        """Fits the schedule to the singular values of the group's raw gradients."""
        device = next(iter(plan))
        sigmas = []
        for _, grads in plan.values():
            sigmas += [s.to(device, non_blocking=True) for s in ops.singular_values(grads)]
        median, mad = ops.median_mad(sigmas)
        _, steps = resolve_phases(group)
        return self._launch_fit(group, median, mad, steps, None, previous)

    def _muon(self, group, params, grads, tau, device):
        bufs = []
        for p in params:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            bufs.append(state["momentum_buffer"])
        ops.muon_step_(
            params,
            grads,
            bufs,
            lr=float(group["lr"]),
            momentum=float(group["momentum"]),
            nesterov=bool(group["nesterov"]),
            weight_decay=float(group["weight_decay"]),
            ns_steps=int(group["ns_steps"]),
            adjust_lr=group["adjust_lr"],
            temperature=None if tau is None else tau.to(device, non_blocking=True),
            soft_map=group.get("soft_map", "newton_schulz"),
            soft_steps=int(group.get("soft_steps", 5)),
        )

    def _adamw(self, group, params, grads):
        exp_avgs, exp_avg_sqs, steps = [], [], []
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        # torch.optim.AdamW(fused=True) does exactly this: count, then the fused op.
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        torch._fused_adamw_(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            lr=float(group["lr"]),
            beta1=float(beta1),
            beta2=float(beta2),
            weight_decay=float(group["weight_decay"]),
            eps=float(group["eps"]),
            amsgrad=False,
            maximize=False,
        )


def _check_muon_group(group):
    check_number("learning rate", group["lr"], low=0.0)
    check_number("momentum", group["momentum"], low=0.0, high=1.0)
    if group["momentum"] >= 1:
        raise ValueError(f"Invalid momentum: {group['momentum']} (expected < 1)")
    check_number("weight_decay", group["weight_decay"], low=0.0)
    check_number("ns_steps", group["ns_steps"], low=0, integer=True)
    if group["adjust_lr"] not in _ADJUST_LR:
        raise ValueError(f"Invalid adjust_lr: {group['adjust_lr']!r} (expected {_ADJUST_LR})")
    if isinstance(group["lr"], torch.Tensor):
        raise ValueError("Invalid learning rate: the matrix groups take a float lr")
    if "soft_map" in group:
        if group["soft_map"] not in _SOFT_MAPS:
            raise ValueError(f"Invalid soft_map: {group['soft_map']!r} (expected {_SOFT_MAPS})")
        check_number("soft_steps", group["soft_steps"], low=0, integer=True)
        check_schedule_options(
            group["total_steps"],
            group["alpha_sign"],
            group["sign_steps"],
            group["transition_steps"],
            group["eps"],
            group["newton_iters"],
            group["tmax"],
        )


def _check_adamw_group(group):
    check_number("AdamW learning rate", group["lr"], low=0.0)
    betas = group["betas"]
    if len(betas) != 2:
        raise ValueError(f"Invalid betas: {betas!r} (expected two numbers)")
    for beta in betas:
        check_number("AdamW beta", beta, low=0.0, high=1.0)
        if beta >= 1:
            raise ValueError(f"Invalid AdamW beta: {beta} (expected < 1)")
    check_number("AdamW eps", group["eps"], low=0.0)
    check_number("AdamW weight_decay", group["weight_decay"], low=0.0)


def _check_adamw_defaults(adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay):
    _check_adamw_group(
        dict(lr=adamw_lr, betas=adamw_betas, eps=adamw_eps, weight_decay=adamw_weight_decay)
    )


class SoftMuon(_MuonBase):
    r"""Muon whose orthogonalization becomes the soft spectral map Phi_tau over the last
    part of training (spec section 5), with an auxiliary AdamW for the other parameters.

    Steps 1..S orthogonalize the Nesterov momentum with Newton-Schulz (Muon). At step S + 1
    the singular values of the group's raw gradients are fitted once (on the device) and
    steps S+1..S+T use Phi_tau_j with tau_j falling from polar-like to SGD-like; later steps
    keep tau_{T-1}. soft_map="newton_schulz" is the public SoftMuon's iteration (5 bf16
    steps, far from Phi_tau at large tau); "accurate" meets the spec's 1e-2 bound.
    Pass `softsign.muon_param_groups(model)` to send embeddings, heads, norms and biases to
    AdamW (adamw_* options; in those groups "lr", "betas", "eps", "weight_decay" are
    AdamW's). A plain parameter list sends matrices to the matrix path.
    """

    def __init__(
        self,
        params,
        lr=0.02,
        momentum=0.95,
        nesterov=True,
        weight_decay=0.0,
        ns_steps=5,
        *,
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
        sign_iters=None,
        transition_iters=None,
    ):
        sign_steps = alias("sign_steps", sign_steps, "sign_iters", sign_iters)
        transition_steps = alias(
            "transition_steps", transition_steps, "transition_iters", transition_iters
        )
        check_schedule_options(
            total_steps, alpha_sign, sign_steps, transition_steps, eps, newton_iters, tmax
        )
        _check_adamw_defaults(adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay)
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
            adamw_betas=tuple(adamw_betas),
            adamw_eps=adamw_eps,
            adamw_weight_decay=adamw_weight_decay,
        )
        super().__init__(params, defaults)


class Muon(_MuonBase):
    r"""Muon (Newton-Schulz orthogonalized Nesterov momentum, spec section 5) with an
    auxiliary AdamW for the parameters that are not hidden matrices: SoftMuon's sign phase,
    forever. Same-shape matrices are orthogonalized in one batch."""

    def __init__(
        self,
        params,
        lr=0.02,
        momentum=0.95,
        nesterov=True,
        weight_decay=0.0,
        ns_steps=5,
        *,
        adjust_lr="original",
        adamw_lr=3e-4,
        adamw_betas=(0.9, 0.95),
        adamw_eps=1e-10,
        adamw_weight_decay=0.0,
    ):
        _check_adamw_defaults(adamw_lr, adamw_betas, adamw_eps, adamw_weight_decay)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            ns_steps=ns_steps,
            adjust_lr=adjust_lr,
            adamw_lr=adamw_lr,
            adamw_betas=tuple(adamw_betas),
            adamw_eps=adamw_eps,
            adamw_weight_decay=adamw_weight_decay,
        )
        super().__init__(params, defaults)
