"""SoftSignum and Signum as torch.optim optimizers: what is theirs beyond the contract every
optimizer meets (test_contract.py: parity with the float64 reference, param groups,
schedulers, state_dict resume, bad input, dtypes, fused and C++ paths, GradScaler, lr
tensors, Signum as SoftSignum's sign phase): groups without gradients at the fit, the first
transition step, the state dict's layout, closures, memory layouts, aliases, the zero-MAD
rule and the warning on a transition too short to soften. Over every element-wise pair of
softsign.elementwise_pairs(): warm starts, the statistic the fit reads (the directions of its
momentum rule, also as the sharded selection reads them), and the outside implementations a
@foreign_source registration declares equal to one of ours (steps, checkpoints, warm starts)."""

import io
import json
import math
import warnings

import pytest
import torch
from optim_registry import (
    OPTIMIZERS,
    SIGN_SHAPES,
    clone_params,
    derived_group,
    elementwise,
    grads_for,
    per_group,
    randn_params,
    shaped,
    train,
)

import softsign
import softsign._C
from softsign import _select
from softsign.optim._elementwise import rule_keywords
from softsign.optim._warm_start import FOREIGN_SOURCES
from softsign.reference import SoftSignumReference

# The element-wise optimizers of the contract registry: each joins these tests by its entry.
ELEMENTWISE = [info.name for info in OPTIMIZERS if info.compare is elementwise]
ELEMENTWISE_SOFT = [name for name in ELEMENTWISE if name.startswith("Soft")]
# softsign's element-wise pairs as the package finds them, {name: (plain, soft)}.
PAIRS = softsign.elementwise_pairs()


def test_group_without_gradients_at_the_fit_step(device):
    groups = shaped(([(64,)], {}), ([(32,)], {}))(device=device, seed=5)
    (a,), (b,) = (g["params"] for g in groups)
    opts = dict(lr=1e-2, sign_steps=10, transition_steps=10)
    opt = softsign.SoftSignum(groups, **opts)
    ref = per_group()(SoftSignumReference, groups, torch.float32, opts)
    for k in range(1, 25):
        # Group 1 has no gradients from step 9 to 13: it fits at step 14, on schedule index 3.
        a.grad, b.grad = grads_for([a, b], k)
        if 9 <= k <= 13:
            b.grad = None
        ref.step([a.grad, b.grad])
        opt.step()
        elementwise(opt, ref, k, torch.float32)


def test_first_transition_step_is_the_sign_step(device):
    p1 = randn_params([(1000,)], device=device)
    p2 = clone_params(p1)
    a = softsign.Signum(p1, lr=1e-2, momentum=0.0)
    b = softsign.SoftSignum(p2, lr=1e-2, momentum=0.0, sign_steps=3, transition_steps=5)
    train([(a, p1), (b, p2)], 4)
    assert b.temperature() == 1e9  # tau_0 = tmax: tanh(tau d) = sign(d) in float32
    torch.testing.assert_close(p2[0], p1[0], rtol=0, atol=1e-7)


def test_state_dict_layout():
    params = randn_params([(10,), (4,)])
    opt = softsign.SoftSignum(params, total_steps=10, alpha_sign=0.5)
    train([(opt, params)], 10)
    sd = opt.state_dict()
    json.dumps(sd["param_groups"])  # JSON values only
    assert sd["param_groups"][0]["step"] == 10
    assert set(sd["param_groups"][0]["fit"]) == {"median", "mad"}
    assert all(set(s) == {"momentum_buffer"} for s in sd["state"].values())


def test_state_dict_of_an_unfitted_group_has_the_keys_of_a_fitted_one():
    """torch.distributed.checkpoint loads into the state dict of a fresh optimizer, so its
    keys must not change when the fit happens: "fit" holds None until then, which strict
    JSON (checkpoint tools, MLflow, Weights & Biases) writes, where NaN is refused."""
    params = randn_params([(10,)])
    opt = softsign.SoftSignum(params, total_steps=10, alpha_sign=0.5)
    fit = opt.state_dict()["param_groups"][0]["fit"]
    assert fit == {"median": None, "mad": None}
    json.dumps(opt.state_dict()["param_groups"], allow_nan=False)
    fresh = softsign.SoftSignum(params, total_steps=10, alpha_sign=0.5)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["fit"] is None
    train([(fresh, params)], 10)
    assert fresh.param_groups[0]["fit"] is not None
    json.dumps(fresh.state_dict()["param_groups"], allow_nan=False)


def test_a_checkpoint_with_nan_for_the_unfitted_group_still_loads():
    """Checkpoints of earlier versions stored NaN there."""
    params = randn_params([(10,)])
    opt = softsign.SoftSignum(params, total_steps=10, alpha_sign=0.5)
    sd = opt.state_dict()
    sd["param_groups"][0]["fit"] = {"median": math.nan, "mad": math.nan}
    opt.load_state_dict(sd)
    assert opt.param_groups[0]["fit"] is None


@pytest.mark.parametrize("name", ELEMENTWISE_SOFT)
def test_alpha_sign_zero_fits_at_the_first_step(name):
    params = randn_params([(100,)])
    twins = clone_params(params)
    opt = getattr(softsign, name)(params, lr=1e-2, total_steps=10, alpha_sign=0.0)
    cpp = getattr(softsign._C, name)(twins, lr=1e-2, total_steps=10, alpha_sign=0.0)
    train([(opt, params), (cpp, twins)], 1)
    assert opt.temperature() is not None
    assert cpp.temperature() == opt.temperature()
    assert torch.equal(params[0], twins[0])


@pytest.mark.parametrize("fused", [None, False, True])
def test_only_an_explicit_fused_true_claims_amp_unscaling(fused):
    """torch's convention (GradScaler, Lightning's gradient clipping): an optimizer claims
    the unscaling only where a fused kernel consumes grad_scale and found_inf."""
    for cls in (getattr(softsign, name) for name in ELEMENTWISE):
        kwargs = dict(total_steps=20) if cls.__name__.startswith("Soft") else {}
        opt = cls(randn_params([(4,)]), fused=fused, **kwargs)
        assert getattr(opt, "_step_supports_amp_scaling", False) is (fused is True)


def test_grad_scaler_unscale_clip_step_with_the_default_fused():
    """The usual AMP recipe: unscale_, clip, step. With fused=None the scaler unscales; the
    steps equal those of the unscaled gradients, clipped alike."""
    a = randn_params([(50,)])
    b = clone_params(a)
    scaled = softsign.SoftSignum(a, lr=1e-2, total_steps=6, alpha_sign=0.5)
    plain = softsign.SoftSignum(b, lr=1e-2, total_steps=6, alpha_sign=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    for k in range(6):
        g = grads_for(a, k)
        for p in a:
            p.grad = None
        # d(loss)/dp = g, scaled by a power of two: exact.
        scaler.scale(sum((p * gk).sum() for p, gk in zip(a, g))).backward()
        scaler.unscale_(scaled)
        torch.nn.utils.clip_grad_norm_(a, 1.0)
        scaler.step(scaled)
        scaler.update()
        for p, gk in zip(b, g):
            p.grad = gk.clone()
        torch.nn.utils.clip_grad_norm_(b, 1.0)
        plain.step()
    torch.testing.assert_close(a[0], b[0], rtol=1e-6, atol=1e-6)
    assert scaled.temperature() == plain.temperature()


def test_closure_is_called_with_grad_enabled():
    w = torch.zeros(3, requires_grad=True)
    opt = softsign.Signum([w], lr=0.1, momentum=0.0)

    def closure():
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 3.0
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.1))


def test_aliases_of_the_public_code():
    opt = softsign.SoftSignum(
        [torch.zeros(2, requires_grad=True)], sign_iters=4, transition_iters=6
    )
    assert (opt.param_groups[0]["sign_steps"], opt.param_groups[0]["transition_steps"]) == (4, 6)


def test_fused_on_a_device_without_kernels_is_rejected_at_step():
    w = torch.zeros(2, device="meta", requires_grad=True)
    opt = softsign.Signum([w], fused=True)  # meta passes: it may become a real device
    w.grad = torch.zeros(2, device="meta")
    with pytest.raises(ValueError, match="fused"):
        opt.step()


def test_zero_mad_warns_and_stays_finite():
    w = torch.nn.Parameter(torch.zeros(6))
    opt = softsign.SoftSignum([w], lr=0.1, momentum=0.0, sign_steps=1, transition_steps=4)
    ref = SoftSignumReference([w], lr=0.1, momentum=0.0, sign_steps=1, transition_steps=4)
    g = torch.full((6,), 0.5)
    with pytest.warns(UserWarning, match="zero MAD"):
        for _ in range(3):
            w.grad = g.clone()
            opt.step()
            ref.step([g])
    assert torch.isfinite(w).all()
    torch.testing.assert_close(w.detach().double(), ref.params[0])
    assert opt.temperature() == pytest.approx(math.atanh(1 - 1e-4) / 0.5)


def test_zero_mad_of_zero_median_keeps_the_sign_regime():
    w = torch.nn.Parameter(torch.zeros(6))
    opt = softsign.SoftSignum([w], lr=0.1, momentum=0.0, sign_steps=1, transition_steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            w.grad = torch.zeros(6)
            opt.step()
    assert opt.temperature() == 1e9 and torch.equal(w.detach(), torch.zeros(6))


def _strided_layouts_run(fused, layout_change):
    """Six steps (sign phase, fit, transition) of three parameters whose memory layouts the
    fused kernels cannot walk directly; returns the parameters' final values."""
    torch.manual_seed(0)
    base = torch.randn(6, 10)
    view = torch.nn.Parameter(base[:, ::2])  # a strided view: not dense
    conv = torch.nn.Parameter(torch.randn(4, 3, 2, 2))
    plain = torch.nn.Parameter(torch.randn(5, 7))
    opt = softsign.SoftSignum(
        [view, conv, plain], lr=0.1, nesterov=True, sign_steps=3, transition_steps=4, fused=fused
    )
    for k in range(6):
        gen = torch.Generator().manual_seed(k)
        view.grad = torch.randn(view.shape, generator=gen)
        conv.grad = torch.randn(conv.shape, generator=gen)
        # A grad assigned with other strides than its parameter's.
        plain.grad = torch.randn(7, 5, generator=gen).t()
        if k == 2 and layout_change:  # the model goes channels_last after its buffers exist
            conv.data = conv.data.to(memory_format=torch.channels_last)
        opt.step()
    return [view.detach().clone(), conv.detach().clone(), plain.detach().clone()], opt


@pytest.mark.parametrize("layout_change", [False, True])
def test_fused_step_takes_any_memory_layout(layout_change):
    got, opt = _strided_layouts_run(None, layout_change)
    expected, _ = _strided_layouts_run(False, layout_change)  # the pure-PyTorch path
    assert opt.temperature() is not None  # the run crossed the fit
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-6)


def test_aliases_inside_a_group_dict():
    w = torch.nn.Parameter(torch.ones(3))
    opt = softsign.SoftSignum([dict(params=[w], sign_iters=2, transition_iters=5)], total_steps=50)
    group = opt.param_groups[0]
    assert (group["sign_steps"], group["transition_steps"]) == (2, 5)
    assert "sign_iters" not in group and "transition_iters" not in group


def test_empty_and_zero_element_groups_step_through_every_phase():
    w = torch.nn.Parameter(torch.ones(4))
    empty = torch.nn.Parameter(torch.ones(0))
    opt = softsign.SoftSignum(
        [dict(params=[w]), dict(params=[]), dict(params=[empty])], sign_steps=2, transition_steps=3
    )
    for _ in range(7):
        w.grad, empty.grad = torch.randn(4), torch.ones(0)
        opt.step()
    assert opt.temperature(0) is not None
    # A group of 0 elements has nothing to fit: its fit waits, as for a group without grads.
    assert opt.temperature(1) is None and opt.temperature(2) is None
    assert opt.param_groups[2]["fit"] is None


def test_zero_mad_warning_points_at_the_callers_line():
    w = torch.nn.Parameter(torch.zeros(6))
    opt = softsign.SoftSignum([w], momentum=0.0, sign_steps=1, transition_steps=4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            w.grad = torch.full((6,), 0.5)
            opt.step()
    (warning,) = [w for w in caught if "zero MAD" in str(w.message)]
    assert warning.filename == __file__


# ---- a transition too short to soften (docs/algorithms.md section 2) ---------------------


@pytest.mark.parametrize(
    "kwargs,names",
    [
        (dict(total_steps=10), ["total_steps", "alpha_sign", "at least 16"]),
        (dict(total_steps=15), ["total_steps", "at least 16"]),
        (dict(total_steps=10, alpha_sign=0.95), ["total_steps", "at least 31"]),
        (dict(sign_steps=3, transition_steps=1), ["transition_steps >= 2"]),
        (dict(total_steps=10, transition_steps=1), ["transition_steps >= 2"]),
        (dict(total_steps=10, sign_steps=9), ["sign_steps", "at most 8"]),
    ],
)
def test_a_transition_shorter_than_two_steps_warns_and_names_the_option(kwargs, names):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        softsign.SoftSignum([torch.zeros(2, requires_grad=True)], **kwargs)
    (warning,) = [w for w in caught if "transition" in str(w.message)]
    assert warning.category is UserWarning and warning.filename == __file__
    for name in names:
        assert name in str(warning.message)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(total_steps=16),
        dict(total_steps=10, alpha_sign=0.5),
        dict(sign_steps=3, transition_steps=2),
        dict(total_steps=10, alpha_sign=1.0),  # no transition asked for: Signum
        dict(total_steps=10, sign_steps=10),
        dict(total_steps=10, sign_steps=20),
    ],
)
def test_a_long_enough_or_absent_transition_does_not_warn(kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        softsign.SoftSignum([torch.zeros(2, requires_grad=True)], **kwargs)


def test_a_group_with_its_own_short_transition_warns_when_added():
    opt = softsign.SoftSignum([torch.zeros(2, requires_grad=True)], total_steps=100)
    with pytest.warns(UserWarning, match="transition_steps=1"):
        opt.add_param_group(dict(params=[torch.zeros(2, requires_grad=True)], transition_steps=1))
    assert len(opt.param_groups) == 2  # a warning, not a refusal


def test_a_one_step_transition_never_leaves_the_sign_regime():
    # Why the minimum is 2: tau_0 is fitted to the quantile p_0 = 0, where every entry is
    # saturated, and the steps after a one-step transition keep it.
    w = torch.nn.Parameter(torch.zeros(1000))
    with pytest.warns(UserWarning, match="total_steps"):
        opt = softsign.SoftSignum([w], lr=0.1, momentum=0.0, total_steps=10)
    gen = torch.Generator().manual_seed(0)
    for _ in range(14):
        w.grad = torch.randn(1000, generator=gen)
        opt.step()
        assert opt.temperature() in (None, 1e9)
    assert opt.temperature() == 1e9


# ---- torch.optim's contract (the breaks found by torch's generic optimizer tests) ------------


@pytest.mark.parametrize("name", ELEMENTWISE_SOFT)
def test_a_schedule_given_in_the_param_groups_alone_is_taken(name):
    """torch checks a required option per group: the groups may carry it."""
    w = torch.randn(100, requires_grad=True)
    opt = getattr(softsign, name)([{"params": [w], "total_steps": 8, "alpha_sign": 0.5}])
    train([(opt, [w])], 8)
    assert opt.temperature() is not None
    with pytest.raises(ValueError, match="Invalid schedule"):
        getattr(softsign, name)([{"params": [torch.randn(3, requires_grad=True)]}])


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_a_tensor_lr_of_more_than_one_element_has_torchs_message(name):
    kwargs = dict(total_steps=10) if name.startswith("Soft") else {}
    with pytest.raises(ValueError, match="Tensor lr must be 1-element"):
        getattr(softsign, name)(randn_params([(3,)]), lr=torch.tensor([1e-3, 1e-3]), **kwargs)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_fused_params_built_on_meta_then_materialized(name):
    """fused=True is refused for a device without kernels at step time, not for meta
    params at construction: build on meta, to_empty(), step."""
    kwargs = dict(total_steps=4, alpha_sign=0.5) if name.startswith("Soft") else {}
    model = torch.nn.Linear(4, 3, device="meta")
    opt = getattr(softsign, name)(model.parameters(), lr=1e-2, fused=True, **kwargs)
    model.to_empty(device="cpu")
    torch.nn.init.normal_(model.weight)
    torch.nn.init.zeros_(model.bias)
    params = list(model.parameters())
    train([(opt, params)], 4)
    assert all(torch.isfinite(p).all() for p in params)


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_a_bare_tensor_as_params_is_a_type_error(name):
    with pytest.raises(TypeError):
        PAIRS[name][0](torch.randn(4, 3))


# ---- warm starts: train with a plain optimizer, finish with its soft one -----------------------

# Every pair, with a step size and a weight decay of its own and the plain class's other
# defaults, given to both classes (so the two step with one rule whatever the soft class's
# defaults say).
WARM = [
    (plain.__name__, soft.__name__, {**plain._table.defaults, "lr": 1e-2, "weight_decay": 0.05})
    for plain, soft in PAIRS.values()
]


@pytest.mark.parametrize("plain,soft,options", WARM)
def test_warm_start_steps_as_the_plain_optimizer_until_the_transition(plain, soft, options):
    a = randn_params([(100,), (7, 9)])
    b = clone_params(a)
    first = getattr(softsign, plain)(a, **options)
    train([(first, a)], 5)
    # A checkpoint of the plain run, loaded into a fresh plain optimizer, is the source.
    source = getattr(softsign, plain)(b, **options)
    source.load_state_dict(first.state_dict())
    with torch.no_grad():
        for p, q in zip(b, a):
            p.copy_(q)
    opt = getattr(softsign, soft)(b, total_steps=12, alpha_sign=0.75, **options)
    opt.warm_start_from(source)
    assert opt.param_groups[0]["step"] == 5
    train([(first, a), (opt, b)], 4, start=6)  # steps 6..9 = S: the sign phase
    for p, q in zip(a, b):
        assert torch.equal(p, q)
    train([(opt, b)], 1, start=10)  # the transition starts on time
    assert opt.temperature() is not None


def test_warm_start_from_torch_sgd_needs_the_step_and_the_same_rule():
    a = randn_params([(50,)])
    sgd = torch.optim.SGD(a, lr=1e-2, momentum=0.9)
    train([(sgd, a)], 3)
    opt = softsign.SoftSignum(a, lr=1e-3, momentum=0.9, total_steps=10, alpha_sign=0.5)
    with pytest.raises(ValueError, match="step="):
        opt.warm_start_from(sgd)
    opt.warm_start_from(sgd, step=3)
    assert torch.equal(opt.state[a[0]]["momentum_buffer"], sgd.state[a[0]]["momentum_buffer"])
    damped = torch.optim.SGD(a, lr=1e-2, momentum=0.9, dampening=0.5)
    with pytest.raises(ValueError, match="do not mean the same thing"):
        opt.warm_start_from(damped, step=3)


def test_warm_start_refuses_params_it_was_not_given():
    a, b = randn_params([(5,)]), randn_params([(5,)], seed=1)
    with pytest.raises(ValueError, match="in none of the given optimizers"):
        softsign.SoftSignum(a + b, total_steps=20).warm_start_from(softsign.Signum(a))


@pytest.mark.parametrize("plain,soft,options", WARM)
def test_loading_a_plain_state_into_the_soft_optimizer_names_warm_start_from(plain, soft, options):
    a = randn_params([(10,)])
    first = getattr(softsign, plain)(a, **options)
    train([(first, a)], 2)
    opt = getattr(softsign, soft)(a, total_steps=20, **options)
    with pytest.raises(ValueError, match="warm_start_from"):
        opt.load_state_dict(first.state_dict())


def test_warm_start_from_an_unknown_optimizer_names_what_it_reads():
    a = randn_params([(8,)])
    adam = torch.optim.Adam(a)
    opt = softsign.SoftSignum(a, total_steps=10)
    before = a[0].clone()
    with pytest.raises(TypeError, match="cannot read the state of Adam") as caught:
        opt.warm_start_from(adam)
    message = str(caught.value)
    for label in ["torch.optim.SGD", *(f.label for f in FOREIGN_SOURCES.values())]:
        assert label in message
    assert torch.equal(a[0], before) and not opt.state


# ---- the statistic of the fit ----------------------------------------------------------------


def _directions(rule, grads, bufs, fresh, maximize):
    """The directions of a group as torch.ops.softsign.soft_sign_direction forms them: of
    grads with their buffers, then of first-step grads (no buffer yet), flattened into one."""
    kw = dict(maximize=maximize, grad_scale=None, **rule)
    out = torch.ops.softsign.soft_sign_direction(grads, bufs, first_step=False, **kw)
    if fresh:
        out += torch.ops.softsign.soft_sign_direction(fresh, [], first_step=True, **kw)
    return torch.cat([d.reshape(-1) for d in out])


@pytest.mark.parametrize("maximize", [False, True])
@pytest.mark.parametrize("name", sorted(PAIRS))
def test_the_sharded_statistic_selects_what_the_fused_one_does(name, maximize):
    """The selection passes driven from Python (how a group of DTensors sums its histograms
    over ranks) read each rule's directions as the fused direction_median_mad does, and
    select the median of the directions the direction op forms."""
    rule = rule_keywords(PAIRS[name][0])
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(s, generator=gen) for s in [(300,), (20, 7)]]
    bufs = [torch.randn(g.shape, generator=gen) for g in grads]
    fresh = [torch.randn(50, generator=gen)]
    want = torch.ops.softsign.direction_median_mad(
        grads, bufs, fresh, maximize=maximize, grad_scale=None, **rule
    )
    got = _select.median_mad(
        [_select.Source(grads, bufs), _select.Source(fresh, [], first_step=True)],
        device=torch.device("cpu"),
        hook=lambda hist: None,
        maximize=maximize,
        **rule,
    )
    assert [t.item() for t in got] == [t.item() for t in want]
    d = _directions(rule, grads, bufs, fresh, maximize).double()
    # torch's median of an even count is the lower one, as the fit's.
    assert got[0].item() == d.median().item()
    assert got[1].item() == (d - d.median()).abs().median().item()


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_the_fit_reads_the_distribution_of_the_directions(name):
    """At step S + 1 the statistic is that of the directions the step takes the sign of, from
    the buffers before that step: their exact lower median and MAD, not those of the
    gradients or of the buffers. The options are the plain class's second contract group
    (each number off its default, maximize on), so a rule that read a default would miss."""
    plain, soft = PAIRS[name]
    options = derived_group(plain._table)
    params = randn_params([(500,), (20, 30)])
    opt = soft(params, sign_steps=5, transition_steps=5, **options)
    train([(opt, params)], 5)
    group = opt.param_groups[0]
    bufs = [opt.state[p][soft._buffer].clone() for p in params] if soft._buffered(group) else []
    gs = grads_for(params, 6)
    for p, g in zip(params, gs):
        p.grad = g
    opt.step()
    d = _directions(rule_keywords(soft, **options), gs, bufs, [], options["maximize"]).double()
    mu = d.median()
    mad = (d - mu).abs().median()
    assert group["fit"] == {"median": mu.item(), "mad": mad.item()}
    for other in [gs, bufs]:
        if other:
            assert torch.cat([x.reshape(-1) for x in other]).double().median().item() != mu.item()


# ---- outside implementations -------------------------------------------------------------------
# Every outside optimizer registered with @foreign_source(..., same_as=<our class>) is held to
# that class: steps over param groups, its checkpoints, warm starts. The cases are collected
# from the registrations whether or not the package is installed, and skip without it.

TWINS = [f for f in FOREIGN_SOURCES.values() if f.same_as is not None]


def _twin_of(foreign):
    """(our plain class, our soft class) that `foreign` steps as; skips the test when its
    package is not installed."""
    pytest.importorskip(foreign.module, reason=f"{foreign.label}'s package is not installed")
    plain, soft = PAIRS[foreign.same_as]
    return plain, soft


def _taken(foreign, options) -> dict:
    """The options that `foreign` takes."""
    return {k: v for k, v in options.items() if k in foreign.options}


def _trained_by_them(foreign, shapes, options, steps):
    """(their optimizer, its params after `steps` steps, a copy of those params as ours)."""
    theirs = randn_params(shapes)
    opt = foreign.make(theirs, **options)
    train([(opt, theirs)], steps)
    ours = clone_params(theirs)
    return opt, theirs, ours


def _state_keys(foreign, plain, opt):
    """[(our state key, theirs)] of the buffers our `plain` and their `opt` keep."""
    theirs = foreign.rule(opt.param_groups[0]).keys
    return list(zip((plain._buffer,), theirs))


def assert_equal_but_for_rare_sign_flips(ours, theirs, lr, steps):
    """Equal bit for bit, but for a few elements whose direction was within rounding of zero.

    Both optimizers round every product and sum in float32, in the same order, but an outside
    one may form its coefficients otherwise (lion-pytorch's 1 - beta is the float64
    difference rounded to float32, ours float32's own 1.0f - beta, as the fused kernels form
    it), so the two buffers differ by about 1e-7 relatively. That can only flip the sign of
    a direction that close to zero: each such element then moves 2 lr the other way once.
    Over the runs here no element flips; the bound allows one flip per 10^4 elements."""
    flipped = 0
    for a, b in zip(ours, theirs):
        off = a != b
        flipped += int(off.sum())
        assert (a - b).abs().max() <= 2 * lr * steps + 1e-6
    assert flipped <= 1 + sum(a.numel() for a in ours) // 10_000, f"{flipped} elements differ"


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("foreign", TWINS, ids=lambda f: f.label)
def test_steps_equal_the_outside_implementation(foreign, fused):
    plain, _ = _twin_of(foreign)
    options = _taken(foreign, dict(lr=1e-3, weight_decay=0.1))
    ours = randn_params(SIGN_SHAPES)
    theirs = clone_params(ours)
    a = plain(ours, fused=fused, **options)
    b = foreign.make(theirs, **options)
    train([(a, ours), (b, theirs)], 40)
    assert_equal_but_for_rare_sign_flips(ours, theirs, options.get("lr", 1e-3), 40)
    # The buffers differ by the rounding of the coefficients only: about 1e-6 of the
    # gradients' size (up to about 4 here).
    for mine, their in _state_keys(foreign, plain, b):
        for p, q in zip(ours, theirs):
            torch.testing.assert_close(a.state[p][mine], b.state[q][their], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("foreign", TWINS, ids=lambda f: f.label)
def test_steps_equal_the_outside_implementation_with_param_groups(foreign):
    plain, _ = _twin_of(foreign)
    # The second group: the contract registry's (another lr and weight decay, each other
    # number off its default), of the options the outside optimizer takes.
    own = _taken(foreign, derived_group(plain._table))

    def groups(params):
        return [dict(params=params[:2]), dict(params=params[2:], **own)]

    ours = randn_params([(40,), (5, 6), (300,)])
    theirs = clone_params(ours)
    a = plain(groups(ours), lr=1e-3)
    b = foreign.make(groups(theirs), lr=1e-3)
    train([(a, ours), (b, theirs)], 20)
    # The larger lr bounds the jumps of sign flips.
    assert_equal_but_for_rare_sign_flips(ours, theirs, max(1e-3, own.get("lr", 0.0)), 20)


@pytest.mark.parametrize("foreign", TWINS, ids=lambda f: f.label)
def test_an_outside_checkpoint_loads_and_continues(foreign):
    plain, _ = _twin_of(foreign)
    options = _taken(foreign, dict(lr=1e-3, weight_decay=0.1))
    b, theirs, ours = _trained_by_them(foreign, [(100,), (9, 9)], options, 5)
    a = plain(ours, **options)
    buf = io.BytesIO()
    torch.save(b.state_dict(), buf)
    buf.seek(0)
    a.load_state_dict(torch.load(buf, weights_only=True))
    group = a.param_groups[0]
    # What their checkpoint does not hold takes our defaults; they keep no step count.
    for name, default in plain._table.defaults.items():
        if name not in foreign.options:
            assert group[name] == default, name
    assert group["step"] == 0
    train([(a, ours), (b, theirs)], 10, start=6)
    assert_equal_but_for_rare_sign_flips(ours, theirs, options.get("lr", 1e-3), 10)


@pytest.mark.parametrize("foreign", TWINS, ids=lambda f: f.label)
def test_warm_start_from_the_outside_implementation(foreign):
    plain, soft = _twin_of(foreign)
    options = _taken(foreign, dict(lr=1e-3, weight_decay=0.1))
    theirs, a, b = _trained_by_them(foreign, [(64,), (9, 9)], options, 3)
    # warm_start_from matches params by identity: the source is their checkpoint loaded into
    # their optimizer over our params.
    source = foreign.make(b, **options)
    source.load_state_dict(theirs.state_dict())
    opt = soft(b, total_steps=10, alpha_sign=0.5, **options)
    if foreign.rule(source.param_groups[0]).step is None:  # the step count is then ours to give
        with pytest.raises(ValueError, match="step="):
            opt.warm_start_from(source)
    opt.warm_start_from(source, step=3)
    for mine, their in _state_keys(foreign, plain, theirs):
        for p, q in zip(b, a):
            assert torch.equal(opt.state[p][mine], theirs.state[q][their])
    train([(theirs, a), (opt, b)], 2, start=4)  # steps 4, 5 = S: the sign phase
    assert_equal_but_for_rare_sign_flips(b, a, options.get("lr", 1e-3), 2)
    assert opt.temperature() is None
