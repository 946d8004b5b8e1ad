"""The optimizer contract, checked for every optimizer of the registry
(optim_registry.OPTIMIZERS; what an entry holds is documented there):

* parity:        a run over every phase (sign phase, fit, transition, after it) against the
                 float64 reference, in every dtype claimed and every variant of the options,
                 to the tolerance of the entry's `compare`;
* param_groups:  the same with a second set of groups that sets its own options;
* lr_scheduler:  the same with a LambdaLR moving every group's lr (0 included) each step;
* resume:        state_dict -> torch.save -> torch.load -> load_state_dict into a fresh
                 optimizer (with its LR scheduler) in each phase, then on: bit for bit the
                 uninterrupted run, params and state;
* invalid:       options out of range refused with ValueError("Invalid ...") by the
                 constructor and add_param_group (the group not kept), RuntimeError by the C++
                 binding;
* sparse, complex, non_finite: a sparse gradient (in any group), a complex parameter, a
                 non-finite fit statistic (inf gradients at step S + 1) refused with params
                 and state bitwise as they were; after the statistic's refusal the run goes
                 on as if the bad batch had never come. (When a later group's statistic
                 fails, the earlier groups keep the fit they made: there params, buffers
                 and step counts are checked.)
* dtypes:        every dtype steps, stays finite, keeps params and state in its dtype, and
                 bf16/fp16 track a float32 run (|p - p32| <= steps (ulp |p32| + lr));
* fused:         each `fused=` value against fused=False, every dtype: bit for bit through
                 the fit step on the CPU, conftest.TOLERANCES after;
* cpp:           the softsign._C binding against the Python class bit for bit, in every phase,
                 across a save/load in the transition;
* plain:         a soft optimizer whose transition lies beyond the run is its plain one, bit
                 for bit (Signum is SoftSignum's sign phase forever, Lion SoftLion's...);
* grad_scaler:   under torch.amp.GradScaler a batch with an inf gradient (the first, one in
                 the sign phase, the fit step's) changes no param and no buffer, and the run
                 steps bit for bit as an unscaled one that skips those batches;
* lr_tensor:     every learning rate of the options (lr; SoftMuon's adamw_lr too) given as
                 a one-element tensor, 0-dim or not, steps as the float (where the option
                 takes a tensor).
* bare_tensor:   a tensor given as `params` (not a list of them) is refused with
                 torch.optim's own TypeError and text.

Every run also checks that no step changes a gradient (optim_registry.train).
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
from functools import partial

import pytest
import torch
from optim_registry import (
    LOW_PRECISION,
    TOLERANCES,
    ULP,
    cases,
    clone_groups,
    doubled,
    flat,
    grads_for,
    train,
)


def refused(exc, match, fn, what=""):
    """fn() raises `exc` with a message matching `match` (searched)."""
    try:
        fn()
    except exc as e:
        assert re.search(match, str(e)), f"{what}: {e!r} does not match {match!r}"
    else:
        pytest.fail(f"{what}: not refused (expected {exc.__name__} matching {match!r})")


def snapshot(opt, params):
    return [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict())


def assert_same_state(a, b):
    """Two state dicts are equal bit for bit: group values (as JSON: NaN equals NaN) and
    state tensors."""
    assert json.dumps(a["param_groups"], sort_keys=True) == json.dumps(
        b["param_groups"], sort_keys=True
    )
    assert a["state"].keys() == b["state"].keys()
    for i, st in a["state"].items():
        assert st.keys() == b["state"][i].keys(), i
        for key, x in st.items():
            y = b["state"][i][key]
            if isinstance(x, torch.Tensor):
                assert x.dtype == y.dtype and torch.equal(x, y), (i, key)
            else:
                assert x == y, (i, key)


def assert_unchanged(opt, params, before):
    old_params, old_state = before
    assert all(torch.equal(p, q) for p, q in zip(params, old_params))
    assert_same_state(opt.state_dict(), old_state)


def stop_in(info, phase) -> int:
    """The step after which a run in `phase` stops (mid: a run without a schedule)."""
    S, T = info.phases()
    stops = dict(mid=info.steps // 2, sign=S // 2, transition=S + T // 2, after=S + T + 1)
    return stops[phase]


def assert_parity(info, groups, dtype, options, scheduler=None):
    """The run of info.steps against the reference, compared after every step; `scheduler`
    (a factory of the optimizer) moves the lr of the optimizer and of the reference."""
    opt = info.cls(groups, **options)
    ref = info.make_reference(groups, dtype, options)
    sched = None if scheduler is None else scheduler(opt)

    def check(k):
        info.compare(opt, ref, k, dtype)
        if sched is not None:
            sched.step()
            for gi, group in enumerate(opt.param_groups):
                ref.set_lr(gi, group["lr"])

    train([(opt, flat(groups))], info.steps, ref=ref, each=check)
    if info.schedule:
        assert opt.temperature(0) is not None  # the run crossed the fit
    return opt


# ---- parity with the float64 reference --------------------------------------------------


def _dtypes_and_variants(info):
    variants = [(v, d) for v in info.variants for d in (torch.float32, torch.float64)]
    return [("default", d) for d in info.dtypes] + variants


@pytest.mark.parametrize(
    "info,variant,dtype", cases(contract="parity", expand=_dtypes_and_variants)
)
def test_parity_with_the_reference_over_every_phase(info, variant, dtype, device):
    options = dict(info.options, **info.variants.get(variant, {}))
    assert_parity(info, info.params(dtype, device), dtype, options)


@pytest.mark.parametrize("info", cases(lambda i: i.group_options, "param_groups"))
def test_param_groups_with_their_own_options(info, device):
    groups = info.params(torch.float32, device)
    groups += [
        dict(g, **over)
        for g, over in zip(info.params(torch.float32, device, seed=1), info.group_options)
    ]
    opt = assert_parity(info, groups, torch.float32, info.options)
    for group, over in zip(
        opt.param_groups[len(groups) - len(info.group_options) :], info.group_options
    ):
        assert all(group[key] == value for key, value in over.items())


LR_FACTORS = (1.0, 0.5, 0.0, 2.0)  # lr 0: not even the weight decay moves a parameter


@pytest.mark.parametrize("info", cases(contract="lr_scheduler"))
def test_an_lr_scheduler_drives_every_group(info, device):
    def scheduler(opt):
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: LR_FACTORS[e % 4])

    groups = info.params(torch.float32, device)
    opt = assert_parity(info, groups, torch.float32, info.options, scheduler)
    for group in opt.param_groups:
        assert group["lr"] == group["initial_lr"] * LR_FACTORS[info.steps % 4]


# ---- resume ---------------------------------------------------------------------------------


def _phases(info):
    return [("sign",), ("transition",), ("after",)] if info.schedule else [("mid",)]


@pytest.mark.parametrize("info,phase", cases(contract="resume", expand=_phases))
def test_resume_from_a_state_dict_is_bit_identical(info, phase, device):
    def make(groups):
        opt = info.cls(groups, **info.options)
        return opt, torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)

    def run(opt, sched, groups, steps, start=1):
        train([(opt, flat(groups))], steps, start=start, each=lambda k: sched.step())

    full = info.params(torch.float32, device)
    opt, sched = make(full)
    run(opt, sched, full, info.steps)

    stop = stop_in(info, phase)
    part = info.params(torch.float32, device)
    o, s = make(part)
    run(o, s, part, stop)
    blob = io.BytesIO()
    torch.save(
        {
            "params": [p.detach() for p in flat(part)],
            "opt": o.state_dict(),
            "sched": s.state_dict(),
        },
        blob,
    )
    blob.seek(0)
    saved = torch.load(blob, weights_only=True)
    json.dumps(saved["opt"]["param_groups"])  # JSON values only

    resumed = info.params(torch.float32, device, seed=7)  # every value from the checkpoint
    with torch.no_grad():
        for p, q in zip(flat(resumed), saved["params"]):
            p.copy_(q)
    o2, s2 = make(resumed)
    # A fresh optimizer's state dict has the group keys of a trained one (DCP loads into it).
    fresh = o2.state_dict()["param_groups"]
    assert [set(g) for g in fresh] == [set(g) for g in saved["opt"]["param_groups"]]
    o2.load_state_dict(saved["opt"])
    s2.load_state_dict(saved["sched"])
    run(o2, s2, resumed, info.steps - stop, start=stop + 1)

    assert all(torch.equal(a, b) for a, b in zip(flat(full), flat(resumed)))
    assert_same_state(opt.state_dict(), o2.state_dict())
    for gi in range(len(full)):
        assert opt.temperature(gi) == o2.temperature(gi)


# ---- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("info", cases(lambda i: i.invalid, "invalid"))
def test_invalid_options_are_refused(info):
    groups = info.params()
    opt = info.cls(groups, **info.options)
    for bad in info.invalid:
        options = dict(info.options, **bad.options)
        match = "Invalid.*" + bad.match
        refused(ValueError, match, partial(info.cls, clone_groups(groups), **options), bad)
        if bad.group is not None:
            added = dict(info.params(seed=1)[bad.group], **bad.options)
            refused(ValueError, match, partial(opt.add_param_group, added), f"group {bad}")
            assert len(opt.param_groups) == len(groups)  # a refused group is not kept
        if bad.cpp and info.cpp is not None:
            refused(
                RuntimeError, "Invalid", partial(info.make_cpp, clone_groups(groups), options), bad
            )
    train([(opt, flat(groups))], 2)  # the optimizer still works


@pytest.mark.parametrize("info", cases(contract="sparse"))
def test_a_sparse_gradient_is_refused_before_any_change(info):
    groups = doubled(info)
    params = flat(groups)
    opt = info.cls(groups, **info.options)
    train([(opt, params)], 2)
    before = snapshot(opt, params)
    for gi in range(len(groups) // 2, len(groups)):  # each group of the second set in turn
        for p, g in zip(params, grads_for(params, 3)):
            p.grad = g
        sparse = groups[gi]["params"][-1]
        sparse.grad = sparse.grad.to_sparse()
        refused(RuntimeError, "sparse", opt.step, f"group {gi}")
        assert_unchanged(opt, params, before)


@pytest.mark.parametrize("info", cases(contract="complex"))
def test_a_complex_param_is_refused(info):
    groups = info.params()
    shape = groups[0]["params"][0].shape
    bad = dict(groups[0], params=[torch.zeros(shape, dtype=torch.complex64, requires_grad=True)])
    refused(ValueError, "complex", lambda: info.cls([bad], **info.options))
    opt = info.cls(groups, **info.options)
    refused(ValueError, "complex", lambda: opt.add_param_group(bad))
    assert len(opt.param_groups) == len(groups)


@pytest.mark.parametrize(
    "info,failing",
    cases(lambda i: i.schedule, "non_finite", lambda i: [("every_group",), ("a_later_group",)]),
)
def test_a_non_finite_fit_statistic_is_refused_before_any_change(info, failing):
    S, _ = info.phases()
    groups = info.params() if failing == "every_group" else doubled(info)
    params = flat(groups)
    opt = info.cls(groups, **info.options)
    train([(opt, params)], S)
    before = snapshot(opt, params)
    for p, g in zip(params, grads_for(params, S + 1)):
        p.grad = g
    bad = groups if failing == "every_group" else groups[len(groups) // 2 :]
    for p in flat(bad):
        p.grad = torch.full_like(p, float("inf"))
    refused(ValueError, "non-finite", opt.step)  # at the fit step, S + 1
    if failing == "a_later_group":
        # No parameter, no buffer moved and no group counted the step. (The groups before
        # the failing one keep the fit of their finite statistic, as the reference does.)
        assert all(torch.equal(p, q) for p, q in zip(params, before[0]))
        assert_same_state(dict(opt.state_dict(), param_groups=[]), dict(before[1], param_groups=[]))
        assert [g["step"] for g in opt.param_groups] == [
            g["step"] for g in before[1]["param_groups"]
        ]
        return
    assert_unchanged(opt, params, before)
    # The caller skips the bad batch: the run goes on as if it had never come.
    train([(opt, params)], info.steps - S, start=S + 1)
    twin = info.params()
    train([(info.cls(twin, **info.options), flat(twin))], info.steps)
    assert all(torch.equal(a, b) for a, b in zip(params, flat(twin)))


# ---- dtypes and implementations ------------------------------------------------------------


@pytest.mark.parametrize("info", cases(contract="dtypes"))
def test_every_dtype_steps_and_low_precision_tracks_float32(info, device):
    lr = info.options["lr"]
    for dtype in info.dtypes:
        groups = info.params(dtype, device)
        twin = clone_groups(groups, torch.float32)
        opt = info.cls(groups, **info.options)
        train([(opt, flat(groups)), (info.cls(twin, **info.options), flat(twin))], info.steps)
        for p in flat(groups):
            assert p.dtype == dtype and torch.isfinite(p).all(), dtype
            for key, value in opt.state[p].items():
                if value.shape == p.shape:
                    assert value.dtype == dtype, (dtype, key)
        if dtype in LOW_PRECISION:
            # Each step may round a parameter by an ulp of the storage format, and may step
            # an element by lr the other way (a direction within rounding of zero): the
            # bound is steps * (ulp |p| + lr); the runs stay within ~0.35 of it.
            for p, q in zip(flat(groups), flat(twin)):
                bound = info.steps * (ULP[dtype] * q.detach().double().abs() + lr)
                assert ((p.double() - q.double()).abs() <= bound).all(), dtype


@pytest.mark.parametrize("info", cases(lambda i: len(i.fused) > 1, "fused"))
def test_fused_matches_unfused(info, device):
    for dtype in info.dtypes:
        _assert_fused_matches_unfused(info, dtype, device)


def _assert_fused_matches_unfused(info, dtype, device):
    S, _ = info.phases()
    runs = {}
    for fused in info.fused:
        groups = info.params(dtype, device)
        runs[fused] = (info.cls(groups, fused=fused, **info.options), flat(groups))

    # On the CPU the sign phase and the fit step (tau_0 = tmax: tanh(tau d) = sign(d)) agree
    # bit for bit; after them the kernel's tanh and PyTorch's differ in the last bit now and
    # then. (On CUDA, where the kernel may contract into FMAs, TOLERANCES throughout.)
    # Lion's unfused averages (lerp) round differently from the kernel's throughout: there
    # a direction within rounding of 0 may step the other way (2 lr), in a few elements.
    exact = torch.device(device).type == "cpu" and info.unfused_exact
    lr = max(float(g["lr"]) for g in runs[False][0].param_groups)

    def check(k):
        tol = dict(rtol=0, atol=0) if exact and k <= S + 1 else TOLERANCES[dtype]
        for fused, (_, params) in runs.items():
            for p, q in zip(params, runs[False][1]):
                if not info.unfused_exact:
                    p, q = _without_rare_flips(p, q, lr * k, tol)
                torch.testing.assert_close(
                    p, q, **tol, msg=lambda m, fused=fused: f"fused={fused}, step {k}: {m}"
                )

    train(list(runs.values()), info.steps, each=check)


def _without_rare_flips(p, q, bound, tol):
    """p and q with the elements that differ beyond `tol` made equal, after checking those
    are sign flips: at most one in 10000 (or one), each within the steps' worth of 2 lr."""
    off = ~torch.isclose(p.double(), q.double(), **tol)
    assert off.sum() <= max(1, p.numel() // 10000), "too many sign flips for rounding"
    assert ((p.double() - q.double()).abs()[off] <= 2 * bound * (1 + 1e-3) + 1e-6).all()
    q = q.clone()
    q[off] = p[off]
    return p, q


def _variants(info):
    return [("default",)] + [(v,) for v in info.variants]


@pytest.mark.parametrize("info,variant", cases(lambda i: i.cpp, "cpp", expand=_variants))
def test_cpp_matches_python_bit_for_bit(info, variant, device, tmp_path):
    options = dict(info.options, **info.variants.get(variant, {}))
    groups = info.params(torch.float32, device)
    twin = clone_groups(groups)
    runs = [(info.cls(groups, **options), flat(groups)), (info.make_cpp(twin, options), flat(twin))]
    stop = stop_in(info, "transition" if info.schedule else "mid")

    def check(k):
        (py, _), (cpp, _) = runs
        assert all(torch.equal(a, b) for a, b in zip(flat(groups), flat(twin))), f"step {k}"
        if info.schedule:
            for gi in range(len(groups)):
                assert py.temperature(gi) == cpp.temperature(gi), (k, gi)
        if k == stop:  # save, and go on with a fresh optimizer that loads it
            cpp.save(str(tmp_path / "opt.pt"))
            runs[1] = (info.make_cpp(twin, options), flat(twin))
            runs[1][0].load(str(tmp_path / "opt.pt"))

    train(runs, info.steps, each=check)


# ---- relations between optimizers and with torch ---------------------------------------------


@pytest.mark.parametrize("info", cases(lambda i: i.plain, "plain"))
def test_the_sign_phase_forever_is_the_plain_optimizer(info, device):
    beyond = dict(info.plain.options, sign_steps=info.steps, transition_steps=5)
    soft, plain = info.params(torch.float32, device), info.params(torch.float32, device)
    opt = info.cls(soft, **beyond)

    def still_plain(k):
        assert all(opt.temperature(gi) is None for gi in range(len(soft))), k
        assert all(torch.equal(a, b) for a, b in zip(flat(soft), flat(plain))), k

    runs = [(opt, flat(soft)), (info.plain.cls(plain, **info.plain.options), flat(plain))]
    train(runs, info.steps, each=still_plain)


@pytest.mark.parametrize("info", cases(contract="grad_scaler"))
def test_grad_scaler_skips_inf_batches_and_matches_unscaled_training(info, device):
    """GradScaler hands an optimizer that takes them its scale and found_inf (the element-wise
    ones): a skipped batch is then a step() call that moves nothing, as a step without
    gradients; otherwise (Muon's) it unscales on the host and does not call step(). The
    scaled run equals an unscaled twin that does the same where a batch is skipped."""
    groups, twin_groups = info.params(torch.float32, device), info.params(torch.float32, device)
    params = flat(groups)
    opt, twin = info.cls(groups, **info.options), info.cls(twin_groups, **info.options)
    counted = getattr(opt, "_step_supports_amp_scaling", False)
    scaler = torch.amp.GradScaler(device.type, init_scale=1024.0, growth_interval=1000)
    scaler.scale(torch.ones((), device=device))  # the scale starts as a loss's scaling does
    S, _ = info.phases()
    # The first step, one in the sign phase, and the fit step.
    skipped = {1, 2, S + 1} if info.schedule else {1, 2}

    def scaled_step(grads):
        for p, g in zip(params, grads):
            p.grad = g * scaler.get_scale()  # a power of two: unscaling is exact
        scaler.step(opt)
        scaler.update()

    for k in range(1, info.steps + 1):
        grads = grads_for(params, k)
        if k in skipped:  # a batch that overflowed
            before, scale = snapshot(opt, params), scaler.get_scale()
            scaled_step(grads[:-1] + [torch.full_like(grads[-1], math.inf)])
            assert all(torch.equal(p, q) for p, q in zip(params, before[0])), k
            if k > 1:  # a first step may make its buffers, as zeros (README: a known limit)
                assert_same_state(
                    dict(opt.state_dict(), param_groups=[]), dict(before[1], param_groups=[])
                )
            assert scaler.get_scale() == scale / 2, k
            if counted:
                twin.zero_grad()
                twin.step()
        scaled_step(grads)
        train([(twin, flat(twin_groups))], 1, start=k)
    assert all(torch.equal(a, b) for a, b in zip(params, flat(twin_groups)))
    assert_same_state(opt.state_dict(), twin.state_dict())
    for gi in range(len(groups)):
        assert opt.temperature(gi) == twin.temperature(gi), gi


def _rates(info) -> list[str]:
    """The learning-rate options of the entry's options that take a tensor."""
    table = info.cls._table
    return [
        o.name
        for o in table.options
        if "learning rate" in o.label and o.tensor and o.name in info.options
    ]


@pytest.mark.parametrize(
    "info,shape", cases(_rates, "lr_tensor", expand=lambda i: [((),), ((1,),)])
)
def test_an_lr_tensor_steps_as_the_float(info, shape, device):
    groups, twin = info.params(torch.float32, device), info.params(torch.float32, device)
    rates = {name: torch.full(shape, info.options[name], device=device) for name in _rates(info)}
    # The float is the tensor's value (float32, as torch.tensor(0.02) holds it).
    floats = {name: float(t) for name, t in rates.items()}
    runs = [(info.cls(groups, **dict(info.options, **floats)), flat(groups))]
    runs.append((info.cls(twin, **dict(info.options, **rates)), flat(twin)))
    train(runs, info.steps)
    assert all(torch.equal(a, b) for a, b in zip(flat(groups), flat(twin)))


@pytest.mark.parametrize("info", cases(contract="bare_tensor"))
def test_a_bare_tensor_as_params_is_torchs_type_error(info):
    bare = torch.randn(4, 3)
    with pytest.raises(TypeError) as theirs:
        torch.optim.SGD(bare, lr=0.1)
    # Not taken as a list of its rows, as iterating over it would give.
    refused(TypeError, re.escape(str(theirs.value)), lambda: info.cls(bare, **info.options))
