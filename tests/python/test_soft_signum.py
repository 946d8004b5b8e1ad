"""SoftSignum and Signum as torch.optim optimizers: what is theirs beyond the contract every
optimizer meets (test_contract.py: parity with the float64 reference, param groups,
schedulers, state_dict resume, bad input, dtypes, fused and C++ paths, GradScaler, lr
tensors, Signum as SoftSignum's sign phase): groups without gradients at the fit, the first
transition step, the state dict's layout, closures, memory layouts, aliases, the zero-MAD
rule and the warning on a transition too short to soften."""

import json
import math
import warnings

import pytest
import torch
from optim_registry import (
    OPTIMIZERS,
    clone_params,
    elementwise,
    grads_for,
    per_group,
    randn_params,
    shaped,
    train,
)

import softsign
import softsign._C
from softsign.reference import SoftSignumReference

# The element-wise optimizers of the contract registry: each joins these tests by its entry.
ELEMENTWISE = [info.name for info in OPTIMIZERS if info.compare is elementwise]
ELEMENTWISE_SOFT = [name for name in ELEMENTWISE if name.startswith("Soft")]


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


@pytest.mark.parametrize("name", ["Signum", "Lion"])
def test_a_bare_tensor_as_params_is_a_type_error(name):
    with pytest.raises(TypeError):
        getattr(softsign, name)(torch.randn(4, 3))


# ---- warm starts: train with Signum (Lion), finish with SoftSignum (SoftLion) -------------------

WARM = [
    ("Signum", "SoftSignum", dict(lr=1e-2, momentum=0.9, weight_decay=0.05)),
    ("Lion", "SoftLion", dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05)),
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


def test_warm_start_from_lion_pytorch():
    lion_pytorch = pytest.importorskip("lion_pytorch", reason="lion-pytorch is not installed")
    a = randn_params([(64,)])
    theirs = lion_pytorch.Lion(a, lr=1e-3, betas=(0.9, 0.99))
    train([(theirs, a)], 3)
    opt = softsign.SoftLion(a, lr=1e-3, betas=(0.9, 0.99), total_steps=10, alpha_sign=0.5)
    opt.warm_start_from(theirs, step=3)
    assert torch.equal(opt.state[a[0]]["exp_avg"], theirs.state[a[0]]["exp_avg"])


def test_warm_start_from_an_unknown_optimizer_names_what_it_reads():
    a = randn_params([(8,)])
    adam = torch.optim.Adam(a)
    opt = softsign.SoftSignum(a, total_steps=10)
    before = a[0].clone()
    with pytest.raises(TypeError, match=r"cannot read the state of Adam.*and lion_pytorch\.Lion"):
        opt.warm_start_from(adam)
    assert torch.equal(a[0], before) and not opt.state
