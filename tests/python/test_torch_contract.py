"""torch.optim's own contract: what PyTorch's generic optimizer tests (driven by its
OptimizerInfo entries) check of every optimizer, for every optimizer of the registry
(optim_registry.OPTIMIZERS). test_contract.py holds what they share with ours (parity,
param groups with a LambdaLR, a resume through torch.save, option ranges, sparse and complex
refusals, dtypes, fused, GradScaler, lr tensors of 0 and 1 dims, a bare tensor as params);
this file holds the rest:

* state dicts:   the dict after load_state_dict is the loaded one; neither dict shares a
                 param group (or a group's fit) with the optimizer; repeated groups pack
                 alike; a mismatched dict is refused with torch's ValueError; an older dict
                 without our newer group keys, or saved with (or without) parameter names,
                 loads and steps; the state is cast to each param's dtype (the group's step
                 count kept); torch.load(weights_only=True) gives the dict back;
* hooks:         step pre/post hooks (local and global, in torch's order), state_dict and
                 load_state_dict pre/post hooks, each removed by its handle; a hook sees the
                 dict the caller gets (or gave) and may replace it;
* copies:        copy.deepcopy(opt) and pickle keep every public attribute, and the copy
                 steps bit for bit as the original (also with a fit whose status the host
                 has not read yet);
* lr tensors:    2 dims of one element step as the float; more elements are refused with
                 torch's text (constructor and add_param_group);
* schedulers:    a LambdaLR with one lambda per group and a OneCycleLR that also cycles the
                 momentum (or Lion's beta1), against the float64 reference;
* group options: each option set in one param group only takes effect there: the group
                 steps as an optimizer constructed with that option, the others as with the
                 defaults;
* meta params:   built on the meta device (fused=True too), materialized by
                 Module.to_empty, then stepping bit for bit as if built on the CPU;
                 fused=True is refused only by a step on meta;
* bad input:     torch's exception types and texts, checked against torch.optim's own
                 (an empty list, duplicate params, a param in two groups, names given for
                 some params only, a non-leaf, a set, a group that is not a dict, invalid
                 lr, momentum, weight_decay, betas, nesterov);
* the step:      a step without gradients moves nothing; gradients missing for some params
                 or some steps, zero gradients, zero_grad, step(closure) (its loss returned,
                 gradients enabled in it); opt.defaults holds the options and every key of
                 the param groups.

Breaks of Muon and SoftMuon that their owners are fixing are marked xfail (strict) with the
break named: KNOWN_BREAKS.
"""

from __future__ import annotations

import copy
import io
import json
import pickle
import re
import warnings

import pytest
import torch
from optim_registry import cases, clone_groups, doubled, flat, grads_for, train
from test_contract import assert_same_state, refused, stop_in
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

from softsign import _fit
from softsign.reference.soft_muon import ADAMW_GROUP

# (optimizer, contract) -> why the contract does not hold for it.
KNOWN_BREAKS = {
    **dict.fromkeys(
        [("Muon", "defaults_keys"), ("SoftMuon", "defaults_keys")],
        "kept on purpose: the AdamW groups hold betas (and Muon's eps) that opt.defaults "
        "lacks (they default from adamw_betas, adamw_eps); with betas in defaults, "
        "OneCycleLR would cycle beta1 and leave the matrix groups' momentum alone",
    ),
}


def torch_cases(contract, predicate=lambda info: True, expand=lambda info: [()]):
    """optim_registry.cases, with the entries of KNOWN_BREAKS[(name, contract)] marked
    xfail(strict): a fix makes them pass, and then the mark must go."""
    out = []
    for p in cases(predicate, expand=expand):
        info = p.values[0]
        reason = KNOWN_BREAKS.get((info.name, contract))
        if reason is None:
            out.append(p)
        else:
            mark = pytest.mark.xfail(reason=reason, strict=True)
            out.append(pytest.param(*p.values, marks=[*p.marks, mark], id=p.id))
    return out


def elementwise(info) -> bool:
    return "fused" in info.cls._table


def same_params(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b))


def step_with(opt, params, k):
    """Sets the gradients of step k and steps."""
    for p, g in zip(params, grads_for(params, k)):
        p.grad = g
    opt.step()


def run_to(info, phase=None, groups=None, device="cpu"):
    """An optimizer of the entry stepped to the end of `phase` (test_contract.stop_in; by
    default mid-transition, or mid-run without a schedule)."""
    phase = phase or ("transition" if info.schedule else "mid")
    groups = info.params(torch.float32, device) if groups is None else groups
    opt = info.cls(groups, **info.options)
    train([(opt, flat(groups))], stop_in(info, phase))
    return opt, groups


def _phases(info):
    return [("sign",), ("transition",), ("after",)] if info.schedule else [("mid",)]


def _groups_json(sd) -> str:
    return json.dumps(sd["param_groups"], sort_keys=True)


# ---- state dicts --------------------------------------------------------------------------


@pytest.mark.parametrize("info,phase", torch_cases("state_dict", expand=_phases))
def test_the_state_dict_after_loading_is_the_loaded_one(info, phase, device):
    """What load_state_dict is given comes back from state_dict(), bit for bit; loading
    changes nothing in the given dict."""
    opt, _ = run_to(info, phase, device=device)
    saved = copy.deepcopy(opt.state_dict())
    given = copy.deepcopy(saved)
    fresh, _ = run_to(info, "sign" if info.schedule else "mid", device=device)
    fresh.load_state_dict(given)
    assert_same_state(fresh.state_dict(), saved)
    assert_same_state(given, saved)
    assert _groups_json(given) == _groups_json(saved)


@pytest.mark.parametrize("info", torch_cases("state_dict"))
def test_dcp_creating_the_state_counts_no_step_and_fits_nothing(info):
    """torch.distributed.checkpoint's get_optimizer_state_dict on an optimizer that has not
    stepped yet calls step() with zero grads and lr 0, to create the state it saves. That
    moves no weight, counts no step and fits nothing (with alpha_sign=0 the fit is the first
    step: on those zero grads it would pin the temperature at tmax), and the run then steps
    bit for bit as one never checkpointed."""
    from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

    options = dict(info.options, **({"alpha_sign": 0.0} if info.schedule else {}))
    runs = []
    for checkpointed in (False, True):
        groups = [  # nn.Parameters, so that a module can name them for DCP
            dict(g, params=[torch.nn.Parameter(p.detach()) for p in g["params"]])
            for g in info.params(torch.float32, "cpu")
        ]
        params = flat(groups)
        opt = info.cls(groups, **options)
        if checkpointed:
            before = [p.detach().clone() for p in params]
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # no fit, so no degenerate-fit warning
                saved = get_optimizer_state_dict(torch.nn.ParameterList(params), opt)
            assert same_params(before, params)
            assert saved["state"], "DCP needs the state created"
            assert all(g["step"] == 0 and g["fit"] is None for g in opt.param_groups)
            assert all(p.grad is None for p in params)
        train([(opt, params)], info.steps)
        runs.append((opt, params))
    (plain, a), (checkpointed, b) = runs
    assert same_params(a, b)
    assert [g["fit"] for g in plain.param_groups] == [g["fit"] for g in checkpointed.param_groups]


@pytest.mark.parametrize("info", torch_cases("state_dict"))
def test_state_dicts_share_no_group_with_the_optimizer(info):
    """Optimizer.state_dict() copies each param group and load_state_dict deep-copies the
    loaded groups: changing either dict's groups afterwards (a group's fit included)
    leaves the optimizer as it was."""
    opt, groups = run_to(info, "after" if info.schedule else "mid")
    before = copy.deepcopy(opt.param_groups)

    def scribble(sd):
        for group in sd["param_groups"]:
            group["lr"] = 123.0
            group["step"] = -5
            if isinstance(group.get("fit"), dict):
                group["fit"]["median"] = 123.0

    scribble(opt.state_dict())
    loaded = copy.deepcopy(opt.state_dict())
    opt.load_state_dict(loaded)
    scribble(loaded)
    after = opt.param_groups
    assert [{k: v for k, v in g.items() if k != "params"} for g in after] == [
        {k: v for k, v in g.items() if k != "params"} for g in before
    ]


@pytest.mark.parametrize("info", torch_cases("state_dict"))
def test_repeated_groups_pack_alike(info):
    """torch's determinism check: a state dict packs a repeated group as the original (the
    second copy names the same param indices)."""
    opt, _ = run_to(info, "after" if info.schedule else "mid")
    twin, _ = run_to(info, "after" if info.schedule else "mid")
    twin.param_groups.extend(twin.param_groups)
    last, repeated = opt.state_dict()["param_groups"][-1], twin.state_dict()["param_groups"][-1]
    assert json.dumps(last, sort_keys=True) == json.dumps(repeated, sort_keys=True)


@pytest.mark.parametrize("info", torch_cases("state_dict"))
def test_a_mismatched_state_dict_is_refused_with_torchs_error(info):
    opt, groups = run_to(info, "sign" if info.schedule else "mid")
    sd = opt.state_dict()
    more = dict(sd, param_groups=sd["param_groups"] * 2)
    refused(ValueError, "different number of parameter groups", lambda: opt.load_state_dict(more))
    shorter = copy.deepcopy(sd)
    shorter["param_groups"][0]["params"] = shorter["param_groups"][0]["params"][:-1]
    before = copy.deepcopy(opt.state_dict())
    refused(
        ValueError,
        "doesn't match the size of optimizer's group",
        lambda: opt.load_state_dict(shorter),
    )
    assert_same_state(opt.state_dict(), before)


@pytest.mark.parametrize("info", torch_cases("older_state_dict"))
def test_an_older_state_dict_without_newer_keys_loads_and_steps(info):
    """A state dict saved before a group key existed (torch drops maximize, fused, ... in
    its test; ours adds step and fit) loads, the missing keys taking their defaults."""
    opt, groups = run_to(info, "sign" if info.schedule else "mid")
    old = copy.deepcopy(opt.state_dict())
    for group in old["param_groups"]:
        for key in ("maximize", "fused", "differentiable", "foreach"):
            group.pop(key, None)
    opt.load_state_dict(old)
    for group in opt.param_groups:
        assert group.get("maximize", False) is False and group.get("fused") is None
    train([(opt, flat(groups))], 1, start=stop_in(info, "sign" if info.schedule else "mid") + 1)


@pytest.mark.parametrize("info", torch_cases("nontensor_step"))
def test_a_state_step_saved_as_a_number_loads(info):
    """torch's test_load_nontensor_step: a per-param "step" saved as a Python number (older
    checkpoints) loads and the optimizer steps on."""
    opt, groups = run_to(info, "mid" if not info.schedule else "sign")
    sd = copy.deepcopy(opt.state_dict())
    for state in sd["state"].values():
        if torch.is_tensor(state.get("step")):
            state["step"] = state["step"].item()
    opt.load_state_dict(sd)
    train([(opt, flat(groups))], 2, start=50)
    assert all(torch.isfinite(p).all() for p in flat(groups))


@pytest.mark.parametrize("info", torch_cases("state_dict"))
def test_param_names_survive_loading_either_way(info):
    """torch's test_can_load_from_to_named_state_dict: an optimizer given (name, param)
    pairs saves "param_names"; a state dict with or without them loads into one with or
    without them, and the names loaded are kept."""
    groups = info.params()
    named = [dict(g, params=[(f"p{i}", p) for i, p in enumerate(g["params"])]) for g in groups]
    opt = info.cls(named, **info.options)
    train([(opt, flat(groups))], 2)
    sd = copy.deepcopy(opt.state_dict())
    assert [g["param_names"] for g in sd["param_groups"]] == [
        [f"p{i}" for i in range(len(g["params"]))] for g in groups
    ]
    plain = info.cls(clone_groups(groups), **info.options)
    plain.load_state_dict(sd)
    assert [g["param_names"] for g in plain.state_dict()["param_groups"]] == [
        g["param_names"] for g in sd["param_groups"]
    ]
    unnamed = info.cls(clone_groups(groups), **info.options)
    train([(unnamed, flat(unnamed.param_groups))], 2)
    opt.load_state_dict(unnamed.state_dict())
    train([(opt, flat(groups))], 1, start=3)


@pytest.mark.parametrize(
    "info,dtype", torch_cases("state_dict", expand=lambda i: [(torch.float64,), (torch.bfloat16,)])
)
def test_loading_casts_the_state_to_each_params_dtype(info, dtype, device):
    """torch's rule: floating state takes the dtype and device of its param (a CPU
    checkpoint into a model on `device`), a per-param "step" is kept as saved; the group
    step counts and fits are numbers, kept as well."""
    opt, groups = run_to(info)
    sd = opt.state_dict()
    cast = [
        dict(g, params=[p.detach().to(device, dtype).requires_grad_() for p in g["params"]])
        for g in groups
    ]
    other = info.cls(cast, **info.options)
    other.load_state_dict(sd)
    for i, p in enumerate(flat(cast)):
        for key, value in other.state[p].items():
            saved = sd["state"][i][key]
            if key == "step":
                assert value.dtype == saved.dtype and torch.equal(value, saved)
            else:
                assert value.dtype == dtype and value.device == p.device, key
                assert torch.equal(value.cpu(), saved.to(dtype)), key
    for mine, theirs in zip(other.state_dict()["param_groups"], sd["param_groups"]):
        assert mine["step"] == theirs["step"] and mine.get("fit") == theirs.get("fit")
    train([(other, flat(cast))], 2, start=stop_in(info, "after" if info.schedule else "mid"))
    assert all(p.dtype == dtype and torch.isfinite(p).all() for p in flat(cast))


@pytest.mark.parametrize("info,phase", torch_cases("state_dict", expand=_phases))
def test_weights_only_load_gives_the_state_dict_back(info, phase):
    opt, _ = run_to(info, phase)
    sd = opt.state_dict()
    blob = io.BytesIO()
    torch.save(sd, blob)
    blob.seek(0)
    back = torch.load(blob, weights_only=True)
    assert_same_state(back, sd)


# ---- hooks --------------------------------------------------------------------------------


@pytest.mark.parametrize("info", torch_cases("hooks"))
def test_step_hooks_run_in_torchs_order_and_their_handles_remove_them(info):
    groups = info.params()
    params = flat(groups)
    opt = info.cls(groups, **info.options)
    sgd = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    calls = []
    seen = []

    def post(o, args, kwargs):
        calls.append("post")
        # A post hook sees the step done: the params moved and the groups counted it.
        seen.append(([p.detach().clone() for p in params], [g["step"] for g in o.param_groups]))

    handles = [
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append("global pre")),
        register_optimizer_step_post_hook(lambda o, a, k: calls.append("global post")),
        opt.register_step_pre_hook(lambda o, a, k: calls.append("pre")),
        opt.register_step_post_hook(post),
    ]
    try:
        before = [p.detach().clone() for p in params]
        step_with(opt, params, 1)
        sgd.step()
        assert calls == ["global pre", "pre", "post", "global post", "global pre", "global post"]
        moved, counts = seen[0]
        assert same_params(moved, params) and not same_params(moved, before)
        assert counts == [1] * len(groups)
    finally:
        for h in handles:
            h.remove()
    calls.clear()
    step_with(opt, params, 2)
    sgd.step()
    assert calls == []


@pytest.mark.parametrize("info", torch_cases("hooks"))
def test_a_step_pre_hook_changes_the_step_it_precedes(info):
    """A pre hook setting every lr to 0 (a warmup hook, say) makes its step move nothing
    (not even the weight decay), which still counts."""
    groups = info.params()
    params = flat(groups)
    opt = info.cls(groups, **info.options)

    def zero_lr(o, args, kwargs):
        for group in o.param_groups:
            group["lr"] = 0.0

    handle = opt.register_step_pre_hook(zero_lr)
    before = [p.detach().clone() for p in params]
    step_with(opt, params, 1)
    assert same_params(params, before)
    assert [g["step"] for g in opt.param_groups] == [1] * len(groups)
    handle.remove()


def _mark_pre(o):
    o.state["test"] = 1


def _mark_post(o, sd):
    # torch's test hook: moves what the pre hook left in the state into the dict's top level.
    sd["ran_pre_hook"] = sd["state"].pop("test", None) == 1
    return sd


@pytest.mark.parametrize("info", torch_cases("hooks"))
def test_state_dict_hooks(info):
    opt, _ = run_to(info)
    plain = opt.state_dict()
    pre = opt.register_state_dict_pre_hook(_mark_pre)
    post = opt.register_state_dict_post_hook(_mark_post)
    sd = opt.state_dict()
    assert sd["ran_pre_hook"] is True and "test" not in sd["state"]
    del opt.state["test"]
    pre.remove()
    assert opt.state_dict()["ran_pre_hook"] is False
    post.remove()
    assert "ran_pre_hook" not in opt.state_dict()

    # A post hook sees the dict the caller gets, and what it returns is what the caller gets.
    seen = []
    opt.register_state_dict_post_hook(lambda o, d: seen.append(copy.deepcopy(d)))
    opt.register_state_dict_post_hook(lambda o, d: {"wrapped": d})
    wrapped = opt.state_dict()
    assert set(wrapped) == {"wrapped"}
    assert _groups_json(seen[0]) == _groups_json(plain) == _groups_json(wrapped["wrapped"])


@pytest.mark.parametrize("info", torch_cases("hooks"))
def test_load_state_dict_hooks(info):
    def _lr_002(o, sd):  # changes the dict in place
        sd["param_groups"][0]["lr"] = 0.002

    def _lr_003(o, sd):  # returns another dict
        sd = copy.deepcopy(sd)
        sd["param_groups"][0]["lr"] = 0.003
        return sd

    opt, _ = run_to(info)
    sd = opt.state_dict()
    # torch's test_load_state_dict_pre_hook_and_prepend: hooks run in order, a prepended one
    # first, and a returned dict replaces the one loaded.
    first = opt.register_load_state_dict_pre_hook(_lr_002)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.002
    second = opt.register_load_state_dict_pre_hook(_lr_003, prepend=True)
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.002
    first.remove()
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.003
    second.remove()

    ran = []
    post = opt.register_load_state_dict_post_hook(lambda o: ran.append(o.param_groups[0]["lr"]))
    sd["param_groups"][0]["lr"] = 0.004
    opt.load_state_dict(sd)
    assert ran == [0.004]
    post.remove()
    opt.load_state_dict(sd)
    assert ran == [0.004]


@pytest.mark.parametrize("info", torch_cases("hooks", lambda i: i.schedule))
def test_a_load_state_dict_pre_hook_sees_the_dict_given_and_may_adapt_it(info):
    """The pre hooks run before anything reads the dict (torch's order): they see it as
    given (a fit as state_dict() wrote it) and may make a foreign dict loadable; here the
    state of the plain optimizer (no schedule options, which load_state_dict refuses) gets
    this optimizer's schedule."""
    soft, groups = run_to(info, "sign")
    S, _ = info.phases()
    plain_groups = clone_groups(groups)
    plain = info.plain.cls(plain_groups, **info.plain.options)
    train([(plain, flat(plain_groups))], S // 2)
    foreign = plain.state_dict()
    refused(ValueError, "warm_start_from", lambda: soft.load_state_dict(foreign))

    seen = []

    def adapt(o, sd):
        seen.append(copy.deepcopy(sd["param_groups"]))
        sd = copy.deepcopy(sd)
        for mine, theirs in zip(o.param_groups, sd["param_groups"]):
            for key in set(mine) - {"params"}:
                if key not in theirs or key == "fit":
                    theirs[key] = copy.deepcopy(mine[key])
        return sd

    soft.register_load_state_dict_pre_hook(adapt)
    soft.load_state_dict(soft.state_dict())
    assert _groups_json({"param_groups": seen[0]}) == _groups_json(soft.state_dict())
    soft.load_state_dict(foreign)  # adapted by the hook
    assert_same_state(dict(soft.state_dict(), param_groups=[]), dict(foreign, param_groups=[]))


# ---- copies -------------------------------------------------------------------------------


def _public(obj) -> set:
    return {k for k in obj.__dict__ if not k.startswith("_")}


@pytest.mark.parametrize("info,phase", torch_cases("copies", expand=_phases))
def test_a_deep_copy_steps_bit_for_bit_as_the_original(info, phase, device):
    opt, groups = run_to(info, phase, device=device)
    twin = copy.deepcopy(opt)
    assert _public(twin) == _public(opt)
    twin_params = flat(twin.param_groups)
    assert not any(p is q for p, q in zip(twin_params, flat(groups)))
    stop = stop_in(info, phase)
    train([(opt, flat(groups)), (twin, twin_params)], info.steps - stop, start=stop + 1)
    assert same_params(flat(groups), twin_params)
    assert_same_state(opt.state_dict(), twin.state_dict())
    for gi in range(len(groups)):
        assert opt.temperature(gi) == twin.temperature(gi)


@pytest.mark.parametrize("info", torch_cases("copies"))
def test_a_pickled_optimizer_steps_bit_for_bit_as_the_original(info):
    opt, groups = run_to(info)
    # One pickle of both: the copy's params are its state's keys.
    twin = pickle.loads(pickle.dumps(opt))
    assert type(twin) is type(opt) and _public(twin) == _public(opt)
    stop = stop_in(info, "transition" if info.schedule else "mid")
    twin_params = flat(twin.param_groups)
    train([(opt, flat(groups)), (twin, twin_params)], info.steps - stop, start=stop + 1)
    assert same_params(flat(groups), twin_params)


@pytest.mark.parametrize("info", torch_cases("copies", lambda i: i.schedule))
def test_a_copy_keeps_a_fit_whose_status_is_on_its_way(info, monkeypatch):
    """On an accelerator the host reads a fit's status a step or so later (_fit.PendingFit);
    until then the fit lives only beside the group dicts. A deep copy made then must keep
    it: a copy that fitted again would fit other gradients. The pending status is forced
    here on the CPU."""
    S, _ = info.phases()
    groups = info.params()
    params = flat(groups)
    opt = info.cls(groups, **info.options)
    train([(opt, params)], S)
    with monkeypatch.context() as m:
        m.setattr(_fit.PendingFit, "ready", lambda self: False)
        train([(opt, params)], 1, start=S + 1)  # the fit step, its status unread
        assert opt.param_groups[0]["fit"] is None
        twin = copy.deepcopy(opt)
    twin_params = flat(twin.param_groups)
    train([(opt, params), (twin, twin_params)], info.steps - S - 1, start=S + 2)
    assert same_params(params, twin_params)
    for gi in range(len(groups)):
        assert opt.temperature(gi) == twin.temperature(gi)


# ---- lr tensors ---------------------------------------------------------------------------


@pytest.mark.parametrize("info", torch_cases("lr_tensor"))
def test_a_two_dim_lr_tensor_steps_as_the_float(info, device):
    """torch's test_tensor_lr: lr as a tensor of shape [1] * dims (0 and 1 dims:
    test_contract.test_an_lr_tensor_steps_as_the_float)."""
    groups, twin = info.params(torch.float32, device), info.params(torch.float32, device)
    lr = torch.tensor(info.options["lr"], device=device).reshape(1, 1)
    # The float is the tensor's value (float32, as torch.tensor(0.02) holds it).
    runs = [(info.cls(groups, **dict(info.options, lr=float(lr))), flat(groups))]
    runs.append((info.cls(twin, **dict(info.options, lr=lr)), flat(twin)))
    train(runs, info.steps)
    assert same_params(flat(groups), flat(twin))


@pytest.mark.parametrize("info", torch_cases("lr_tensor"))
def test_an_lr_tensor_of_several_elements_is_refused_with_torchs_text(info):
    lr = torch.tensor([1e-3, 1e-3])
    text = "Tensor lr must be 1-element"
    refused(ValueError, text, lambda: torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=lr))
    refused(ValueError, text, lambda: info.cls(info.params(), **dict(info.options, lr=lr)))
    opt = info.cls(info.params(), **info.options)
    refused(ValueError, text, lambda: opt.add_param_group(dict(info.params(seed=1)[0], lr=lr)))


# ---- LR schedulers ------------------------------------------------------------------------


def _reference_options(ref, gi) -> dict:
    """The dict group gi of the reference reads its options from at each step."""
    if hasattr(ref, "refs"):
        return ref.refs[gi].options
    group = ref.ref.groups[gi]
    return group if group["use_muon"] else group["adamw"]


def _scheduled_parity(info, make_scheduler):
    """info.steps against the reference while `make_scheduler(opt)` moves the groups' lr and
    momentum (or betas), which the reference takes before every step."""
    groups = doubled(info)
    opt = info.cls(groups, **info.options)
    ref = info.make_reference(groups, torch.float32, info.options)
    sched = make_scheduler(opt)

    def sync():
        for gi, group in enumerate(opt.param_groups):
            options = _reference_options(ref, gi)
            for key in ("lr", "momentum", "betas"):
                if key in options:
                    options[key] = tuple(group[key]) if key == "betas" else group[key]

    def check(k):
        info.compare(opt, ref, k, torch.float32)
        sched.step()
        sync()

    sync()
    train([(opt, flat(groups))], info.steps, ref=ref, each=check)
    return opt


@pytest.mark.parametrize("info", torch_cases("schedulers"))
def test_a_lambda_lr_with_one_lambda_per_group(info):
    factors = [lambda e: 0.8**e, lambda e: 1.0 + 0.1 * e, lambda e: (0.5, 1.0, 0.0)[e % 3]]
    n = len(doubled(info))
    lambdas = [factors[gi % len(factors)] for gi in range(n)]
    opt = _scheduled_parity(info, lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambdas))
    for group, f in zip(opt.param_groups, lambdas):
        assert group["lr"] == pytest.approx(group["initial_lr"] * f(info.steps))


@pytest.mark.parametrize("info", torch_cases("schedulers"))
def test_one_cycle_lr_cycles_the_lr_and_the_momentum(info):
    """OneCycleLR's cycle_momentum takes "momentum" from the groups, or beta1 of "betas"
    when the optimizer's defaults have betas (Lion's): either way the optimizer steps with
    the values it writes."""
    assert "momentum" in info.cls._table or "betas" in info.cls._table

    def one_cycle(o):
        max_lr = [g["lr"] * 2 for g in o.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(o, max_lr, total_steps=info.steps + 1)

    opt = _scheduled_parity(info, one_cycle)
    key = "betas" if "betas" in opt.defaults else "momentum"
    values = {g[key][0] if key == "betas" else g[key] for g in opt.param_groups}
    assert len(values) == 1 and 0.85 <= values.pop() <= 0.95


# ---- options given per group --------------------------------------------------------------

# A value other than the entry's for each option, with what it needs (nesterov needs
# dampening 0). Keys are the options' names in a group; a Muon AdamW group's lr, betas,
# eps and weight_decay are its own (ADAMW_ALTERNATIVES).
ALTERNATIVES = {
    "lr": dict(lr=3e-3),
    "momentum": dict(momentum=0.5),
    "dampening": dict(dampening=0.5, nesterov=False),
    "weight_decay": dict(weight_decay=0.3),
    "nesterov": dict(nesterov=False),
    "maximize": dict(maximize=True),
    "fused": dict(fused=False),
    "betas": dict(betas=(0.8, 0.9)),
    "total_steps": dict(total_steps=8),
    "alpha_sign": dict(alpha_sign=0.25),
    "sign_steps": dict(sign_steps=2, transition_steps=4),
    "transition_steps": dict(transition_steps=3),
    "eps": dict(eps=0.1),
    "newton_iters": dict(newton_iters=1),
    "tmax": dict(tmax=2.0),
    "ns_steps": dict(ns_steps=3),
    "adjust_lr": dict(adjust_lr="match_rms_adamw"),
    "transposed": dict(transposed=True),
    "soft_map": dict(soft_map="accurate"),
    "soft_steps": dict(soft_steps=2),
}
ADAMW_ALTERNATIVES = {
    "lr": dict(lr=1e-2),
    "betas": dict(betas=(0.8, 0.9)),
    "eps": dict(eps=1e-3),
    "weight_decay": dict(weight_decay=0.3),
}
# Options whose other value need not change this run: the implementation, not the math.
NO_VISIBLE_EFFECT = {"fused"}


def _group_options(info, group) -> list:
    """(option, its alternative as a group sets it, as the constructor sets it) of one of
    info.params()'s groups: every option of the table a group may set."""
    if group.get("use_muon", True) is False:
        return [
            (name, over, {"adamw_" + k: v for k, v in over.items()})
            for name, over in ADAMW_ALTERNATIVES.items()
            if name in ADAMW_GROUP
        ]
    names = [n for n in info.cls._table.names if not n.startswith("adamw_")]
    missing = set(names) - set(ALTERNATIVES)
    assert not missing, f"give ALTERNATIVES a value of {missing}"
    return [(n, ALTERNATIVES[n], ALTERNATIVES[n]) for n in names]


def _group_option_cases(info):
    return [
        (gi, name)
        for gi, group in enumerate(info.params())
        for name, _, _ in _group_options(info, group)
    ]


def _for_option(name, groups):
    """The groups, with a group's params limited to those the option accepts: transposed
    takes 2-D matrices only."""
    if name != "transposed":
        return groups
    return [dict(g, params=[p for p in g["params"] if p.ndim == 2]) for g in groups]


_DEFAULT_RUNS: dict = {}


def _default_run(info, two_dims: bool) -> list:
    """The params after info.steps under the entry's options (made once per entry)."""
    key = (info.name, two_dims)
    if key not in _DEFAULT_RUNS:
        groups = _for_option("transposed" if two_dims else "", info.params())
        train([(info.cls(groups, **info.options), flat(groups))], info.steps)
        _DEFAULT_RUNS[key] = [p.detach() for p in flat(groups)]
    return _DEFAULT_RUNS[key]


@pytest.mark.parametrize("info,gi,option", torch_cases("group_options", expand=_group_option_cases))
def test_an_option_set_in_one_group_takes_effect_there_only(info, gi, option):
    """The group steps bit for bit as the same params under an optimizer constructed with
    that option, the other groups as under the defaults; and the option changes the run."""
    _, over, ctor = next(o for o in _group_options(info, info.params()[gi]) if o[0] == option)
    base = _for_option(option, info.params())
    defaults = info.cls._table.fill(info.options)
    assert any(defaults[k] != v for k, v in ctor.items()), f"{option}: not another value"
    mixed = [dict(g, **over) if i == gi else dict(g) for i, g in enumerate(clone_groups(base))]
    alone = [clone_groups(base)[gi]]
    runs = {
        "mixed": info.cls(mixed, **info.options),
        "alone": info.cls(alone, **dict(info.options, **ctor)),
    }
    assert all(runs["mixed"].param_groups[gi][k] == v for k, v in over.items())
    sizes = [len(g["params"]) for g in base]
    lo = sum(sizes[:gi])
    hi = lo + sizes[gi]
    for k in range(1, info.steps + 1):
        gs = grads_for(flat(base), k)
        for name, opt in runs.items():
            params = flat(opt.param_groups)
            mine = gs[lo:hi] if name == "alone" else gs
            for p, g in zip(params, mine):
                p.grad = g.clone()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a short transition of an alternative
                opt.step()
    mixed_params = flat(runs["mixed"].param_groups)
    default_params = _default_run(info, option == "transposed")
    alone_params = flat(runs["alone"].param_groups)
    assert same_params(mixed_params[lo:hi], alone_params)
    others = [i for i in range(len(mixed_params)) if not lo <= i < hi]
    assert same_params([mixed_params[i] for i in others], [default_params[i] for i in others])
    if info.schedule and runs["mixed"]._scheduled(runs["mixed"].param_groups[gi]):
        assert runs["mixed"].temperature(gi) == runs["alone"].temperature(0)
    if option not in NO_VISIBLE_EFFECT:
        assert not same_params(mixed_params[lo:hi], default_params[lo:hi]), option


# ---- params on the meta device ------------------------------------------------------------


def _meta_module(groups):
    """A module over meta copies of the groups' params, and its param groups."""
    module = torch.nn.ParameterList(
        torch.nn.Parameter(torch.empty_like(p, device="meta")) for p in flat(groups)
    )
    out, i = [], 0
    for g in groups:
        n = len(g["params"])
        out.append(dict(g, params=list(module)[i : i + n]))
        i += n
    return module, out


def _fused_options(info):
    return [(None,), (True,)] if elementwise(info) else [(None,)]


@pytest.fixture
def swapping_params():
    """Module.to_empty keeps each Parameter object (swapping its contents) only with this
    flag of torch; without it the module gets new Parameters, and an optimizer built
    before (torch's too) keeps the meta ones."""
    old = torch.__future__.get_swap_module_params_on_conversion()
    torch.__future__.set_swap_module_params_on_conversion(True)
    yield
    torch.__future__.set_swap_module_params_on_conversion(old)


@pytest.mark.parametrize("info,fused", torch_cases("meta", expand=_fused_options))
def test_built_on_meta_then_materialized_steps_as_built_on_the_cpu(info, fused, swapping_params):
    options = dict(info.options, **({} if fused is None else dict(fused=fused)))
    groups = info.params()
    module, meta_groups = _meta_module(groups)
    opt = info.cls(meta_groups, **options)
    if fused:
        # No kernel on meta: refused by the step, before any change.
        for p in module:
            p.grad = torch.empty_like(p)
        refused(ValueError, "fused", opt.step)
        assert [g["step"] for g in opt.param_groups] == [0] * len(groups)
        module.zero_grad()
    kept = list(module)
    module.to_empty(device="cpu")
    assert all(p is q and p.device.type == "cpu" for p, q in zip(module, kept))
    with torch.no_grad():
        for p, q in zip(module, flat(groups)):
            p.copy_(q)
    twin = info.cls(groups, **options)
    train([(opt, list(module)), (twin, flat(groups))], info.steps)
    assert same_params(list(module), flat(groups))
    assert_same_state(opt.state_dict(), twin.state_dict())


# ---- bad input ----------------------------------------------------------------------------


def _torch_refuses_too(exc, match, fn):
    """The same text from torch's own optimizer: ours follows torch's, not a copy of it."""
    refused(exc, match, fn, "torch.optim")


@pytest.mark.parametrize("info", torch_cases("bad_params"))
def test_bad_params_get_torchs_errors(info):
    groups = info.params()
    p, q = groups[0]["params"][:2]
    options = info.options
    sgd = lambda params: torch.optim.SGD(params, lr=0.1)  # noqa: E731
    cases_ = [
        (ValueError, "optimizer got an empty parameter list", []),
        (ValueError, "some parameters appear in more than one parameter group",
         [{"params": [p]}, {"params": [p]}]),
        (ValueError, "all optimizer params should be with/without names",
         [("w", p), q]),
        (ValueError, "all optimizer param groups should be with/without names",
         [{"params": [p]}, {"params": [("w", q)]}]),
        (ValueError, "can't optimize a non-leaf Tensor", [p * 2]),
        (TypeError, "optimizer parameters need to be organized in ordered collections",
         [{"params": {p}}]),
    ]  # fmt: skip
    for exc, text, params in cases_:
        _torch_refuses_too(exc, re.escape(text), lambda params=params: sgd(params))
        refused(exc, re.escape(text), lambda params=params: info.cls(params, **options), text)

    with pytest.warns(UserWarning, match="a parameter group with duplicate parameters"):
        info.cls([p, p], **options)

    opt = info.cls(groups, **options)
    refused(
        ValueError,
        "some parameters appear in more than one parameter group",
        lambda: opt.add_param_group({"params": [p]}),
    )
    text = "param_group must be a dict"
    _torch_refuses_too(TypeError, text, lambda: sgd([q]).add_param_group([p]))
    refused(TypeError, text, lambda: opt.add_param_group([info.params(seed=1)[0]["params"][0]]))
    assert len(opt.param_groups) == len(groups)


# torch's texts for options ours share with torch.optim.SGD and Adam: (option values, the
# text, torch's optimizer that says it).
BAD_VALUES = [
    (dict(lr=-1.0), "Invalid learning rate: -1.0", torch.optim.SGD),
    (dict(momentum=-0.5), "Invalid momentum value: -0.5", torch.optim.SGD),
    (dict(weight_decay=-1.0), "Invalid weight_decay value: -1.0", torch.optim.SGD),
    (dict(betas=(1.5, 0.99)), "Invalid beta parameter at index 0: 1.5", torch.optim.Adam),
    (dict(betas=(0.9, -0.1)), "Invalid beta parameter at index 1: -0.1", torch.optim.Adam),
    (
        dict(nesterov=True, momentum=0.0, dampening=0.0),
        "Nesterov momentum requires a momentum and zero dampening",
        torch.optim.SGD,
    ),
]


def _bad_value_cases(info):
    table = info.cls._table
    # Muon's nesterov is Keller Jordan's (lerp with the buffer), with no such rule.
    return [
        (i,)
        for i, (values, _, _) in enumerate(BAD_VALUES)
        if all(k in table for k in values) and ("dampening" in table or "nesterov" not in values)
    ]


@pytest.mark.parametrize("info,case", torch_cases("bad_values", expand=_bad_value_cases))
def test_invalid_values_get_torchs_texts(info, case):
    values, text, torch_cls = BAD_VALUES[case]
    lr = dict(lr=0.1) if "lr" not in values else {}
    _torch_refuses_too(
        ValueError, re.escape(text), lambda: torch_cls([torch.zeros(2)], **lr, **values)
    )
    refused(
        ValueError, re.escape(text), lambda: info.cls(info.params(), **dict(info.options, **values))
    )
    opt = info.cls(info.params(), **info.options)
    refused(
        ValueError,
        re.escape(text),
        lambda: opt.add_param_group(dict(info.params(seed=1)[0], **values)),
    )


# ---- the step -----------------------------------------------------------------------------


@pytest.mark.parametrize("info,phase", torch_cases("step", expand=_phases))
def test_a_step_without_gradients_moves_nothing(info, phase, device):
    """torch's test_step_is_noop_when_params_have_no_grad, in every phase: no param and no
    per-param state moves (the groups count the step: their schedule counts step() calls,
    as an LR scheduler does)."""
    opt, groups = run_to(info, phase, device=device)
    params = flat(groups)
    opt.zero_grad()
    before = [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict())
    steps = [g["step"] for g in opt.param_groups]
    assert opt.step() is None
    assert same_params(params, before[0])
    assert_same_state(dict(opt.state_dict(), param_groups=[]), dict(before[1], param_groups=[]))
    assert [g["step"] for g in opt.param_groups] == [s + 1 for s in steps]


@pytest.mark.parametrize("info", torch_cases("step"))
def test_missing_gradients_step_as_the_reference(info):
    """torch's implementation tests drop every gradient for a step and freeze a layer for
    two: each param without a gradient stays as it is (its buffer too), the rest step as
    the float64 reference does with those gradients missing."""
    groups = info.params()
    params = flat(groups)
    opt = info.cls(groups, **info.options)
    ref = info.make_reference(groups, torch.float32, info.options)
    frozen = {0, len(params) - 1}
    for k in range(1, info.steps + 1):
        missing = set(range(len(params))) if k == 2 else frozen if k in (4, 5) else set()
        gs = grads_for(params, k)
        gs = [None if i in missing else g for i, g in enumerate(gs)]
        state = {i: copy.deepcopy(opt.state.get(p, {})) for i, p in enumerate(params)}
        before = [p.detach().clone() for p in params]
        for p, g in zip(params, gs):
            p.grad = g
        opt.step()
        ref.step(gs)
        for i in missing:
            assert torch.equal(params[i], before[i]), (k, i)
            assert opt.state.get(params[i], {}).keys() == state[i].keys()
            for key, value in state[i].items():
                assert torch.equal(opt.state[params[i]][key], value), (k, i, key)
        info.compare(opt, ref, k, torch.float32)


@pytest.mark.parametrize("info", torch_cases("step"))
def test_zero_gradients_without_weight_decay_move_nothing(info):
    """torch's test_step_is_noop_for_zero_grads: sign(0) = tanh(0) = 0, Newton-Schulz of a
    zero matrix and AdamW's zero moments are 0, in every phase (the fit of all-zero
    directions warns of its zero MAD)."""
    options = {k: (0.0 if k.endswith("weight_decay") else v) for k, v in info.options.items()}
    groups = info.params()
    params = flat(groups)
    opt = info.cls(groups, **options)
    before = [p.detach().clone() for p in params]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(info.steps):
            for p in params:
                p.grad = torch.zeros_like(p)
            opt.step()
    assert same_params(params, before)


@pytest.mark.parametrize("info", torch_cases("step"))
def test_zero_grad_and_a_closure(info):
    groups, twin_groups = info.params(), info.params()
    params, twin = flat(groups), flat(twin_groups)
    opt = info.cls(groups, **info.options)
    other = info.cls(twin_groups, **info.options)
    target = [
        torch.randn(p.shape, generator=torch.Generator().manual_seed(i))
        for i, p in enumerate(params)
    ]

    def loss_of(ps):
        return sum(((p - t) ** 2).sum() for p, t in zip(ps, target))

    enabled = []

    def closure():
        enabled.append(torch.is_grad_enabled())
        opt.zero_grad()
        loss = loss_of(params)
        loss.backward()
        return loss

    for _ in range(info.steps):
        with torch.no_grad():  # step() enables gradients for the closure itself
            loss = opt.step(closure)
        other.zero_grad()
        expected = loss_of(twin)
        expected.backward()
        other.step()
        assert torch.equal(loss, expected.detach())
    assert all(enabled)
    assert same_params(params, twin)

    opt.zero_grad()  # set_to_none, torch's default
    assert all(p.grad is None for p in params)
    for p in params:
        p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in params)


@pytest.mark.parametrize("info", torch_cases("defaults_keys"))
def test_defaults_hold_the_options_and_every_group_key(info):
    """opt.defaults is the table's defaults with the constructor's options, and the group
    keys the base adds; add_param_group fills a group from it (torch's rule), so every key
    of a param group is in it; stepping changes none of it."""
    groups = info.params()
    opt = info.cls(groups, **info.options)
    expected = {**info.cls._table.fill(info.options), "step": 0, "fit": None}
    expected.update({k: v for k, v in info.cls._group_keys.items()})
    assert opt.defaults == expected
    before = copy.deepcopy(opt.defaults)
    train([(opt, flat(groups))], info.steps)
    opt.load_state_dict(opt.state_dict())
    twin = copy.deepcopy(opt)
    assert opt.defaults == before and twin.defaults == before
    twin.add_param_group(twin.param_groups.pop())
    for group in opt.param_groups + twin.param_groups:
        extra = set(group) - set(opt.defaults) - {"params", "param_names"}
        assert not extra, extra


@pytest.mark.parametrize("info", torch_cases("step"))
def test_it_prints_and_keeps_no_empty_state(info):
    """torch's test_optimizer_can_be_printed and test_non_empty_state."""
    opt, groups = run_to(info, "after" if info.schedule else "mid")
    assert all(f"Parameter Group {gi}" in repr(opt) for gi in range(len(groups)))
    assert opt.state and all(len(state) > 0 for state in opt.state.values())
