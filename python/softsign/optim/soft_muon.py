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
from torch.optim.adamw import adamw

from .. import _select
from .._fit import user_stacklevel
from .._library import ops
from ..reference.options import OPTIONS, SCHEDULE
from ..reference.soft_muon import ADAMW_GROUP
from . import _sharding, _warm_start
from ._base import ScheduledOptimizer, given

_ADAMW_KEYS = {"lr": "adamw_lr", "betas": "adamw_betas", "eps": "adamw_eps"}
# Group keys that only one kind of group reads (the repr shows a group the keys it uses).
_ADAMW_DEFAULTS = ("adamw_lr", "adamw_betas", "adamw_eps", "adamw_weight_decay")
_MATRIX_ONLY = (
    "momentum",
    "nesterov",
    "ns_steps",
    "adjust_lr",
    "transposed",
    "soft_map",
    "soft_steps",
    *(o.name for o in SCHEDULE if o.name != "eps"),  # an AdamW group's eps is AdamW's
    "step",
    "fit",
)


_HEAD_NAMES = ("lm_head", "head", "output", "classifier", "fc_out")
_EMBEDDING_WORDS = ("emb", "pos", "token")


def muon_param_groups(model: nn.Module, **muon_options) -> list[dict]:
    """Param groups for SoftMuon/Muon: the matrices of hidden layers with use_muon=True;
    embeddings, output heads, norms, biases and the rest with use_muon=False (AdamW).

    Hidden matrices: the weights of nn.Linear and conv layers, and other 2-D parameters
    with both sides > 1 (say a fused attention projection) whose name does not hold "emb",
    "pos" or "token". Not hidden: nn.Embedding weights; output heads, which are the Linear
    that is the model's last module with parameters (ResNet's fc, VGG's classifier.6), a
    Linear named lm_head, head, output, classifier or fc_out, or one tied to an embedding;
    parameters of 3 or more dims outside conv layers (class tokens, positional tables,
    stacked experts), which the matrix path would flatten into one matrix. Parameters with
    requires_grad=False are left out; a shared parameter is listed once.

    Args:
        model: the model, an nn.Module (its layer types and names decide the routing).
        **muon_options: options of the matrix group (say lr=0.02, soft_map="accurate");
            they override the optimizer's defaults for that group only.

    Returns:
        A list of at most two group dicts, the use_muon=True group first; a group with
        no parameters is left out.

    Raises:
        TypeError: `model` is not an nn.Module (pass a plain parameter list to
            SoftMuon/Muon directly instead).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(
            "muon_param_groups expects an nn.Module (the model, from which it reads layer "
            f"types and names), got {type(model).__name__}; for a list of parameters, pass "
            "it to SoftMuon/Muon directly (matrices go to the matrix path, the rest to AdamW) "
            "or build the use_muon=True/False group dicts yourself"
        )
    embeddings = {
        id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))
    }
    heads, last = set(), None
    for name, m in model.named_modules():
        if isinstance(m, nn.Linear) and (
            name.split(".")[-1] in _HEAD_NAMES or id(m.weight) in embeddings
        ):
            heads.add(id(m.weight))
        if next(m.parameters(recurse=False), None) is not None:
            last = m
    if isinstance(last, nn.Linear):
        heads.add(id(last.weight))
    muon, other, seen = [], [], set()
    for module_name, m in model.named_modules():
        layer = isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))
        for name, p in m.named_parameters(prefix=module_name, recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            if id(p) in embeddings or id(p) in heads or p.ndim < 2:
                hidden = False
            elif layer:
                hidden = True
            else:  # a parameter of its own: a matrix unless it looks like a table or vector
                leaf = name.rsplit(".", 1)[-1].lower()
                hidden = (
                    p.ndim == 2
                    and min(p.shape) > 1
                    and not any(w in leaf for w in _EMBEDDING_WORDS)
                )
            (muon if hidden else other).append(p)
    groups = []
    if muon:
        groups.append(dict(params=muon, use_muon=True, **muon_options))
    if other:
        groups.append(dict(params=other, use_muon=False))
    return groups


class _MuonBase(ScheduledOptimizer):
    """Matrix groups (use_muon=True) step by muon_step_ and keep a schedule; the other
    groups are AdamW's."""

    _kind = "algebraic"
    _statistic = "the singular values of the raw gradients"
    _group_keys = {"use_muon": True}

    def __init__(self, params, options):
        # A bare tensor is left to torch.optim.Optimizer, which refuses it with its TypeError
        # (list() would make it a list of its rows).
        if not isinstance(params, torch.Tensor):
            params = list(params)
            if params and not isinstance(params[0], dict):
                params = self._route(params)
        super().__init__(params, options)

    def _load_state_dict(self, state_dict):
        """After the load pre hooks (which may adapt a foreign state): a state without
        "use_muon" in its groups comes from another optimizer (torch.optim.Muon, AdamW), whose
        groups would silently take this optimizer's routing and options, so it is refused
        before anything changes. AdamW's per-parameter "step" is made what torch's fused
        AdamW reads: a float32 tensor on the parameter's device (older checkpoints hold a
        number, and torch leaves a CPU step on the CPU for groups without "fused")."""
        for i, group in enumerate(state_dict["param_groups"]):
            if "use_muon" not in group:
                raise ValueError(
                    f"{type(self).__name__}.load_state_dict: param group {i} of the state has "
                    "no use_muon; it comes from another optimizer (torch.optim.Muon, "
                    "AdamW, ...). Load it into that optimizer and call "
                    f"{type(self).__name__}.warm_start_from(it) (torch.optim.Muon with its "
                    "AdamW: warm_start_from(muon, adamw, step=k))"
                )
        super()._load_state_dict(state_dict)
        for group in self.param_groups:
            if group["use_muon"]:
                continue
            for p in group["params"]:
                state = self.state.get(p, {})
                step = state.get("step")
                if step is not None and not (
                    torch.is_tensor(step)
                    and step.dtype == torch.float32
                    and step.device == _sharding.local(p).device
                ):
                    value = step if torch.is_tensor(step) else torch.tensor(float(step))
                    state["step"] = value.to(_sharding.local(p).device, torch.float32).reshape(())

    def warm_start_from(self, *optimizers, step: int | None = None) -> None:
        """Continues the training of `optimizers` (live, or after loading their checkpoints):
        the usual recipe is Muon for most of the run, then SoftMuon from that checkpoint.
        Sources: softsign's Muon and SoftMuon, or torch.optim.Muon with torch.optim.AdamW
        for the other params (torch's recipe). Params are matched by identity, each to a
        group of the same kind: a matrix group's momentum buffer comes from a Muon group,
        whose momentum and nesterov must equal this group's; an AdamW group's exp_avg,
        exp_avg_sq and per-parameter step from an AdamW group with the same betas (no
        amsgrad, no maximize). Anything else raises ValueError naming the difference,
        before anything changes. The group step count continues from the sources' (pass
        `step=` where they record none, as torch's optimizers), so the transition falls
        where total_steps says; this optimizer keeps its own options. Where the source's
        update differs in what the state does not depend on (adjust_lr, transposed, or
        torch.optim.Muon's ns_coefficients and eps), the state carries over, this
        optimizer's own update is used, and a UserWarning names the difference. A param
        with no state in its source starts it at its next gradient (a warning says how
        many). After a warm start from Muon at step k, SoftMuon with the same options steps
        bit for bit as Muon until its transition."""
        _warm_start.warm_start(self, optimizers, step)

    @staticmethod
    def _route(params):
        # (name, tensor) pairs, as model.named_parameters() gives, keep their names.
        matrices = [p for p in params if _tensor(p).ndim >= 2]
        others = [p for p in params if _tensor(p).ndim < 2]
        if others and matrices:
            warnings.warn(
                "softsign: matrices get the Muon update and the other parameters AdamW; "
                "embeddings and output heads are matrices too: pass "
                "softsign.muon_param_groups(model) to send them to AdamW",
                stacklevel=user_stacklevel(),
            )
        groups = [dict(params=matrices, use_muon=True)] if matrices else []
        return groups + ([dict(params=others, use_muon=False)] if others else [])

    def _prepare_group(self, group):
        params = group["params"]
        if isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs; use a list instead"
            )
        # A generator is read once, here: what is checked is what the group keeps.
        group["params"] = params = [params] if isinstance(params, torch.Tensor) else list(params)
        name = type(self).__name__
        if "use_muon" not in group:
            matrices = sum(_tensor(p).ndim >= 2 for p in params)
            if 0 < matrices < len(params):
                raise ValueError(
                    f"Invalid param group for {name}: it holds matrices and other parameters "
                    "and no use_muon; split it into a use_muon=True group of matrices and a "
                    "use_muon=False group (AdamW) of the rest, or pass "
                    "softsign.muon_param_groups(model)"
                )
            group["use_muon"] = matrices == len(params)
        if not group["use_muon"]:
            for key, default in _ADAMW_KEYS.items():
                group.setdefault(key, self.defaults[default])
            group.setdefault("weight_decay", self.defaults["adamw_weight_decay"])
        return group

    def _check_group(self, group):
        if group["use_muon"]:
            for p in group["params"]:
                if p.ndim < 2:
                    raise ValueError(
                        f"Invalid param group for {type(self).__name__}: use_muon=True needs "
                        f"matrices, got a parameter of shape {tuple(p.shape)}; put it in a "
                        "use_muon=False group (softsign.muon_param_groups(model) does this)"
                    )
                # (in, out) is a 2-D layout; a conv weight's (out, in*kh*kw) view has no
                # transpose that would be a stored weight.
                if group.get("transposed") is True and p.ndim != 2:
                    raise ValueError(
                        f"Invalid transposed=True for {type(self).__name__}: it needs 2-D "
                        f"matrices stored as (in, out), got a parameter of shape "
                        f"{tuple(p.shape)}; put it in a group with transposed=False"
                    )
        super()._check_group(group)

    def _check_options(self, group):
        if group["use_muon"]:
            super()._check_options(group)
        else:
            ADAMW_GROUP.check(group)

    def _init_runtime(self):
        super()._init_runtime()
        self._exchanges: dict = {}

    def __repr__(self) -> str:
        """torch.optim.Optimizer's repr, with each group's own options only: a matrix group
        (use_muon=True) shows Muon's and the schedule's, without the adamw_* defaults; an
        AdamW group (use_muon=False) shows lr, betas, eps and weight_decay (AdamW's), without
        Muon's options. Only the text is filtered: param_groups and state_dict() keep
        every key."""
        text = type(self).__name__ + " ("
        for i, group in enumerate(self.param_groups):
            if not group.get("use_muon", True):
                unused = {*_MATRIX_ONLY, *_ADAMW_DEFAULTS}
            elif "soft_map" in group:
                unused = set(_ADAMW_DEFAULTS)
            else:  # Muon: no schedule, never fitted
                unused = {*_ADAMW_DEFAULTS, "fit"}
            text += f"\nParameter Group {i}\n"
            for key in sorted(group.keys()):
                if key != "params" and key not in unused:
                    text += f"    {key}: {group[key]}\n"
        return text + ")"

    def _scheduled(self, group) -> bool:
        return group["use_muon"]

    def _statistics(self, group, plan, grad_scale):
        """Median and MAD of the singular values of the group's raw gradients."""
        device = plan.device
        # One layout for the whole group: it decides both which rank counts a matrix and
        # over which ranks the histograms are summed.
        layout = _sharding.StatisticLayout.of(plan.keys(), type(self).__name__)
        sigmas = []
        for b in plan.buckets.values():
            if b.sharded:
                sigmas += self._sharded_singular_values(b.keys, b.grads, layout)
            else:
                sigmas += ops.singular_values(b.grads)
        sigmas = [s.to(device, non_blocking=True) for s in sigmas]
        if layout is None:
            return ops.median_mad(sigmas)
        if not sigmas:  # this rank owns no matrix: it adds zero counts
            sigmas = [torch.empty(0, dtype=torch.float32, device=device)]
        return _select.median_mad([_select.Source(sigmas)], device=device, hook=layout.hook())

    def _update(self, group, plan, tau, grad_scale, found_inf):
        # A fit whose status is unread (on an accelerator, for a step or so) may have
        # failed: the step then must leave the momentum too (found_inf, on the device).
        unread = tau is not None and group["fit"] is None
        for b in plan.buckets.values():
            if not group["use_muon"]:
                self._adamw(group, b.keys, b.params, b.grads)
                continue
            tau_here = None if tau is None else tau.to(b.device, non_blocking=True)
            failed = (~torch.isfinite(tau_here)).to(torch.float32) if unread else None
            if b.sharded:
                self._muon_sharded(group, b.keys, b.params, b.grads, tau_here, failed)
            else:
                self._muon(group, b.keys, b.params, b.grads, tau_here, failed)

    def _exchange(self, keys) -> _sharding.MatrixExchange:
        """The group's matrix exchange plan, rebuilt only when its matrices change."""
        # Shapes and placements in the key: an id may be reused by a later tensor.
        key = tuple((id(k), tuple(k.shape), str(getattr(k, "placements", ""))) for k in keys)
        cached = self._exchanges.get(key)
        if cached is None:
            if len(self._exchanges) >= 16:
                self._exchanges.clear()
            cached = self._exchanges[key] = _sharding.MatrixExchange(keys, type(self).__name__)
        return cached

    def _sharded_singular_values(self, keys, grads, layout):
        """Singular values of whole gradient matrices, each computed by one rank (its owner,
        or rank 0 of the mesh for a replicated matrix): never of shards."""
        exchange = self._exchange(keys)
        whole = exchange.gather(grads)
        mats = [
            whole[i]
            for i in exchange.owned()
            if layout.counts_here(keys[i], exchange.owner_ranks(i))
        ]
        mats += [grads[i] for i in exchange.plain if layout.counts_here(keys[i])]
        return ops.singular_values(mats) if mats else []

    def _buffers(self, keys):
        """Momentum buffers (created as zeros_like(param): DTensors for DTensor params)."""
        bufs = []
        for p in keys:
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            bufs.append(_sharding.local(state["momentum_buffer"]))
        return bufs

    def _muon(self, group, keys, params, grads, tau, failed):
        # muon_step_ takes its scale from the stored shape and its lr as a host number.
        if group["transposed"] or _device_lr(group["lr"]):
            return self._muon_staged(group, keys, params, grads, tau, failed)
        ops.muon_step_(
            params,
            grads,
            self._buffers(keys),
            lr=float(group["lr"]),
            momentum=float(group["momentum"]),
            nesterov=bool(group["nesterov"]),
            weight_decay=float(group["weight_decay"]),
            ns_steps=int(group["ns_steps"]),
            adjust_lr=group["adjust_lr"],
            temperature=tau,
            soft_map=group.get("soft_map", "newton_schulz"),
            soft_steps=int(group.get("soft_steps", 5)),
            found_inf=failed,
        )

    def _muon_sharded(self, group, keys, params, grads, tau, failed):
        """muon_step_'s stages with the matrix map at each matrix's owner rank
        (Note [sharded parameters]): the momentum and the apply on local shards, the same
        ops muon_step_ composes, so a shard steps as the whole matrix would; only the gather
        and the scatter are this path's own."""
        exchange = self._exchange(keys)
        if not exchange.sharded:  # every matrix is whole here: the one-process step
            return self._muon(group, keys, params, grads, tau, failed)
        return self._muon_staged(group, keys, params, grads, tau, failed, exchange)

    def _muon_staged(self, group, keys, params, grads, tau, failed, exchange=None):
        """muon_step_ as its three stage ops, which compose to it bit for bit: for what the
        one call cannot do, the matrix map at each matrix's owner rank (`exchange`), and
        the update scale of another shape than the stored one (transposed)."""
        # `failed` is nonzero where the fit failed (tau not finite), so it guards the stages
        # as muon_step_'s found_inf does: the old momentum and weights are kept.
        dirs = [torch.empty_like(g) for g in grads]
        ops.muon_momentum_(
            grads,
            self._buffers(keys),
            dirs,
            momentum=float(group["momentum"]),
            nesterov=bool(group["nesterov"]),
            found_inf=failed,
        )
        if exchange is None:
            whole = dict(enumerate(dirs))
        else:
            whole = exchange.gather(dirs)
            whole.update({i: dirs[i] for i in exchange.plain})
        order = sorted(whole)
        mapped = ops.muon_orthogonalize(
            [whole[i] for i in order],
            ns_steps=int(group["ns_steps"]),
            temperature=tau,
            soft_map=group.get("soft_map", "newton_schulz"),
            soft_steps=int(group.get("soft_steps", 5)),
        )
        results = dict(zip(order, mapped))
        if exchange is None:
            updates = results
        else:
            updates = exchange.scatter(results, params)
            updates.update({i: results[i] for i in exchange.plain})
        self._apply(group, keys, params, [updates[i] for i in range(len(params))], failed)

    def _apply(self, group, keys, params, updates, failed):
        """muon_apply_ with the update scale of each key's whole (out, in) matrix."""
        dims = []
        for key in keys:
            rows, cols = _sharding.matrix_dims(key)  # the whole matrix's, not a shard's
            dims += [cols, rows] if group["transposed"] else [rows, cols]
        lr, weight_decay = group["lr"], float(group["weight_decay"])
        if not _device_lr(lr):
            ops.muon_apply_(
                params,
                updates,
                lr=float(lr),
                weight_decay=weight_decay,
                adjust_lr=group["adjust_lr"],
                matrix_dims=dims,
                found_inf=failed,
            )
            return
        # An lr on the device is not read on the host (that would wait for the device): the
        # decay p + (-lr wd) p and lr * u are formed on the device, and muon_apply_ at lr 1
        # adds the scaled update. Within rounding of the float path (lr * u rounds once
        # more). A failed fit (`failed` nonzero) makes lr 0: nothing moves.
        lr = lr.to(params[0].device, non_blocking=True).reshape(())
        if failed is not None:
            lr = lr * (1 - failed)
        if weight_decay != 0:
            torch._foreach_add_(params, torch._foreach_mul(params, -weight_decay * lr))
        ops.muon_apply_(
            params,
            torch._foreach_mul(updates, lr),
            lr=1.0,
            weight_decay=0.0,
            adjust_lr=group["adjust_lr"],
            matrix_dims=dims,
        )

    def _adamw(self, group, keys, params, grads):
        exp_avgs, exp_avg_sqs, steps = [], [], []
        for p in keys:
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.zeros((), dtype=torch.float32, device=p.device)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            exp_avgs.append(_sharding.local(state["exp_avg"]))
            exp_avg_sqs.append(_sharding.local(state["exp_avg_sq"]))
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        lr = group["lr"]
        # A device lr tensor is passed on (reading it would wait), as a 0-dim one.
        lr = lr.reshape(()) if _device_lr(lr) else float(lr)
        # torch.optim.AdamW(fused=True)'s own functional form: it counts the steps, then
        # runs torch._fused_adamw_. Under torch.compile, dynamo leaves torch's fused
        # optimizers to run eagerly (a graph break), which works, where a bare call of the
        # fused op inside a graph hits a functionalization assert.
        adamw(
            params,
            grads,
            exp_avgs,
            exp_avg_sqs,
            [],
            steps,
            fused=True,
            lr=lr,
            beta1=float(beta1),
            beta2=float(beta2),
            weight_decay=float(group["weight_decay"]),
            eps=float(group["eps"]),
            amsgrad=False,
            maximize=False,
        )


def _device_lr(lr) -> bool:
    """Whether lr is a tensor on an accelerator, which step() must not read on the host (a
    CPU tensor is read there without waiting for any device)."""
    return isinstance(lr, torch.Tensor) and lr.device.type != "cpu"


def _tensor(p) -> torch.Tensor:
    """The tensor of a parameter given alone or as a (name, tensor) pair."""
    return p[1] if isinstance(p, tuple) else p


class SoftMuon(_MuonBase):
    r"""Muon whose orthogonalization becomes the soft spectral map Phi_tau over the last
    part of training, with an auxiliary AdamW for the other parameters.

    Steps 1..S orthogonalize the Nesterov momentum with Newton-Schulz (Muon). At step S + 1
    the singular values of the group's raw gradients are fitted once (on the device) and
    steps S+1..S+T use Phi_tau_j(d) = U diag(phi(tau_j sigma)) V^T, phi(x) = x / sqrt(1 +
    x^2), with tau_j falling from polar-like to SGD-like; later steps keep tau_{T-1}.
    Pass `softsign.muon_param_groups(model)` to send embeddings, heads, norms and biases to
    AdamW; a plain parameter list sends matrices to the matrix path and the rest to AdamW,
    with a warning. In use_muon=False groups the keys "lr", "betas", "eps" and
    "weight_decay" are AdamW's. The math, and where it differs from the authors' code:
    docs/algorithms.md.

    Args:
        params: parameters, (name, parameter) pairs, or param group dicts with
            "use_muon" (True: matrices, the Muon path; False: AdamW).
        lr: step size of the matrix groups, >= 0 (a float or a one-element tensor; one on
            the device is not read on the host). Default 0.02.
        momentum: EMA momentum in [0, 1): buf = lerp(buf, g, 1 - momentum), the buffer
            starting at zero. Default 0.95.
        nesterov: orthogonalize lerp(g, buf, momentum) instead of buf. Default True.
        weight_decay: decoupled weight decay of the matrices, >= 0:
            p *= 1 - lr * weight_decay. Default 0.
        ns_steps: quintic Newton-Schulz steps of the sign phase, an integer >= 0.
            Default 5.
        total_steps: planned number of step() calls, an integer >= 1; with alpha_sign it
            sets S and T. Required unless both sign_steps and transition_steps are given.
            "auto": the run's length, filled in before the first step by a trainer
            callback (softsign.integrations); a step() before that raises RuntimeError.
        alpha_sign: fraction of total_steps in the sign (Muon) phase, in [0, 1] (0: the fit
            at the first step):
            S = round(alpha_sign * total_steps). Default 0.9.
        sign_steps: explicit S, an integer >= 0. Alias: sign_iters. Default None.
        transition_steps: explicit T, an integer >= 1. Alias: transition_iters.
            Default None.
        eps: saturation level in (0, 1): c_eps = y / sqrt(1 - y^2), y = 1 - eps (70.7
            for the default). Default 1e-4.
        newton_iters: Newton steps of each quantile solve, an integer >= 0. Default 10.
        tmax: upper clamp of tau, in [1, 1e38]. Default 1e9.
        soft_map: how Phi_tau is computed: "newton_schulz" (the authors' coupled
            iteration in bfloat16; far from Phi_tau when tau * sigma spans decades, as at
            the start of the transition) or "accurate" (within 1e-2 relative Frobenius of
            Phi_tau for tau in [1, 1e9] and spectra spanning up to 4 decades; estimated
            from its FLOPs at 3-4x NS5's time). Default "newton_schulz".
        soft_steps: steps of the "newton_schulz" soft map, an integer >= 0 (the
            "accurate" map runs a fixed 9-step iteration and ignores it). Default 5.
        adjust_lr: update scale: "original" multiplies by sqrt(max(1, rows / cols));
            "match_rms_adamw" by 0.2 * sqrt(max(rows, cols)) (torch.optim.Muon's names).
            Default "original".
        transposed: the group's matrices are stored as (in, out), like transformers'
            Conv1D (GPT-2), and the update scale is computed for the (out, in) matrix;
            the update itself is the transpose of that of the (out, in) weight. Needs 2-D
            matrices. Default False.
        adamw_lr: learning rate of the AdamW groups, >= 0 (a float or a one-element
            tensor). Default 3e-4.
        adamw_betas: AdamW's (beta1, beta2), each in [0, 1). Default (0.9, 0.95).
        adamw_eps: AdamW's denominator epsilon, >= 0. Default 1e-10.
        adamw_weight_decay: AdamW's decoupled weight decay, >= 0. Default 0.
        sign_iters: alias of sign_steps. Default None.
        transition_iters: alias of transition_steps. Default None.

    A transition shorter than 2 steps warns (UserWarning), as for SoftSignum: with
    alpha_sign = 0.9, total_steps must be at least 16. Asking for no transition
    (alpha_sign = 1, or sign_steps >= total_steps) does not warn.

    Raises:
        ValueError: an option out of its range, neither total_steps nor both explicit
            counts, or a group without use_muon that mixes matrices and other parameters.
    """

    _table = OPTIONS["SoftMuon"]

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
        transposed=False,
        adamw_lr=3e-4,
        adamw_betas=(0.9, 0.95),
        adamw_eps=1e-10,
        adamw_weight_decay=0.0,
        sign_iters=None,
        transition_iters=None,
    ):
        super().__init__(params, given(locals()))


class Muon(_MuonBase):
    r"""Muon (Newton-Schulz orthogonalized Nesterov momentum) with an auxiliary AdamW for
    the parameters that are not hidden matrices: SoftMuon's sign phase, forever. Same-shape
    matrices are orthogonalized in one batch (docs/algorithms.md).

    Args:
        params: parameters, (name, parameter) pairs, or param group dicts with
            "use_muon" (True: matrices, the Muon path; False: AdamW).
        lr: step size of the matrix groups, >= 0 (a float or a one-element tensor; one on
            the device is not read on the host). Default 0.02.
        momentum: EMA momentum in [0, 1): buf = lerp(buf, g, 1 - momentum). Default 0.95.
        nesterov: orthogonalize lerp(g, buf, momentum) instead of buf. Default True.
        weight_decay: decoupled weight decay of the matrices, >= 0. Default 0.
        ns_steps: quintic Newton-Schulz steps, an integer >= 0. Default 5.
        adjust_lr: update scale: "original" multiplies by sqrt(max(1, rows / cols));
            "match_rms_adamw" by 0.2 * sqrt(max(rows, cols)). Default "original".
        transposed: the group's matrices are stored as (in, out), like transformers'
            Conv1D (GPT-2): the update scale is computed for the (out, in) matrix. Needs
            2-D matrices. Default False.
        adamw_lr: learning rate of the AdamW groups, >= 0 (a float or a one-element
            tensor). Default 3e-4.
        adamw_betas: AdamW's (beta1, beta2), each in [0, 1). Default (0.9, 0.95).
        adamw_eps: AdamW's denominator epsilon, >= 0. Default 1e-10.
        adamw_weight_decay: AdamW's decoupled weight decay, >= 0. Default 0.

    Raises:
        ValueError: an option out of its range, or a group without use_muon that mixes
            matrices and other parameters.
    """

    _table = OPTIONS["Muon"]

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
        transposed=False,
        adamw_lr=3e-4,
        adamw_betas=(0.9, 0.95),
        adamw_eps=1e-10,
        adamw_weight_decay=0.0,
    ):
        super().__init__(params, given(locals()))
