"""SoftSignum and Signum as torch.optim optimizers: multi-step parity with the float64
reference across the sign phase, the transition and after it, and the optimizer
contract (groups, schedulers, GradScaler, state_dict, bad input)."""

import copy
import io
import json
import math
import warnings

import pytest
import torch

import softsign
from softsign.reference import SoftSignumReference

from conftest import TOLERANCES

CONFIGS = {
    "plain": dict(momentum=0.9),
    "no_momentum": dict(momentum=0.0),
    "nesterov_wd": dict(momentum=0.9, nesterov=True, weight_decay=0.1),
    "dampening_maximize": dict(momentum=0.8, dampening=0.5, maximize=True),
}
SHAPES = [(1,), (7,), (33, 5), (3, 4, 5), (70001,)]  # tiny to several CPU chunks


def make_params(dtype, device, seed=0, shapes=SHAPES):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).to(dtype).to(device).requires_grad_() for s in shapes]


def grads_for(params, step, seed=1):
    gen = torch.Generator().manual_seed(seed * 1000 + step)
    # A per-tensor scale spreads the magnitudes, as in a real model.
    return [
        (torch.randn(p.shape, generator=gen) * 10.0 ** (-i % 3)).to(p.dtype).to(p.device)
        for i, p in enumerate(params)
    ]


def run_parity(opt, groups, refs, steps, dtype, *, grad_mask=None):
    for k in range(1, steps + 1):
        for gi, params in enumerate(groups):
            gs = grads_for(params, k, seed=gi + 1)
            if grad_mask is not None and not grad_mask(gi, k):
                gs = [None] * len(params)
            for p, g in zip(params, gs):
                p.grad = g
            refs[gi].step(gs)
        opt.step()
        for gi, params in enumerate(groups):
            for i, p in enumerate(params):
                got = p.detach().double().cpu()
                if refs[gi].tau is None and refs[gi].last_directions[i] is not None:
                    resync_sign_flips(got, refs[gi], i, dtype)
                torch.testing.assert_close(
                    got,
                    refs[gi].params[i],
                    **TOLERANCES[dtype],
                    msg=lambda m, k=k, gi=gi: f"step {k}, group {gi}: {m}",
                )
            tau = opt.temperature(gi)
            if refs[gi].tau is None:
                assert tau is None
            else:
                # The fit reads float32 directions; the reference float64 ones.
                rel = 1e-12 if dtype == torch.float64 else 1e-5
                assert tau == pytest.approx(refs[gi].tau, rel=rel)


def resync_sign_flips(got, ref, i, dtype):
    """In the sign phase a direction within rounding of zero may take the other sign in
    float32 than in float64: a 2 * lr jump that is not an error. Such elements, and only
    those, are copied into the reference so the comparison goes on."""
    d = ref.last_directions[i]
    near_zero = d.abs() <= 1e-5 * d.abs().max()
    off = ~torch.isclose(got, ref.params[i], **TOLERANCES[dtype])
    flips = off & near_zero
    assert flips.sum() <= max(1, d.numel() // 10000), "too many sign flips for rounding"
    ref.params[i][flips] = got[flips]


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fused", [None, False])
def test_parity_with_reference(config, dtype, fused, device):
    opts = dict(lr=1e-2, total_steps=30, alpha_sign=0.5, **CONFIGS[config])
    params = make_params(dtype, device)
    storage = None if dtype == torch.float32 else dtype
    ref = SoftSignumReference(params, storage_dtype=storage, **opts)
    opt = softsign.SoftSignum(params, fused=fused, **opts)
    run_parity(opt, [params], [ref], 36, dtype)  # S = 15, T = 15, then 6 steps after


def test_parity_float64_is_tight(device):
    opts = dict(lr=1e-2, momentum=0.9, nesterov=True, sign_steps=4, transition_steps=6)
    params = make_params(torch.float64, device, shapes=[(50,), (6, 7)])
    ref = SoftSignumReference(params, **opts)
    run_parity(softsign.SoftSignum(params, **opts), [params], [ref], 14, torch.float64)


def test_param_groups_with_different_options(device):
    a = make_params(torch.float32, device, seed=3, shapes=[(40,), (5, 6)])
    b = make_params(torch.float32, device, seed=4, shapes=[(300,)])
    opt = softsign.SoftSignum(
        [
            dict(params=a),
            dict(
                params=b,
                lr=3e-3,
                momentum=0.5,
                nesterov=True,
                total_steps=20,
                alpha_sign=0.3,
                weight_decay=0.01,
            ),
        ],
        lr=1e-2,
        total_steps=30,
        alpha_sign=0.5,
    )
    refs = [
        SoftSignumReference(a, lr=1e-2, total_steps=30, alpha_sign=0.5),
        SoftSignumReference(
            b,
            lr=3e-3,
            momentum=0.5,
            nesterov=True,
            total_steps=20,
            alpha_sign=0.3,
            weight_decay=0.01,
        ),
    ]
    run_parity(opt, [a, b], refs, 34, torch.float32)


def test_group_without_gradients_at_the_fit_step(device):
    a = make_params(torch.float32, device, seed=5, shapes=[(64,)])
    b = make_params(torch.float32, device, seed=6, shapes=[(32,)])
    opts = dict(lr=1e-2, sign_steps=10, transition_steps=10)
    opt = softsign.SoftSignum([dict(params=a), dict(params=b)], **opts)
    refs = [SoftSignumReference(a, **opts), SoftSignumReference(b, **opts)]
    # Group 1 has no gradients from step 9 to 13: it fits at step 14, on schedule index 3.
    run_parity(
        opt, [a, b], refs, 24, torch.float32, grad_mask=lambda gi, k: gi == 0 or not 9 <= k <= 13
    )


def test_signum_equals_soft_signum_with_the_transition_beyond(device):
    p1 = make_params(torch.float32, device, shapes=[(100,), (9, 9)])
    p2 = [p.detach().clone().requires_grad_() for p in p1]
    kw = dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.01)
    a = softsign.Signum(p1, **kw)
    b = softsign.SoftSignum(p2, sign_steps=40, transition_steps=5, **kw)
    for k in range(1, 41):
        for x, y, g in zip(p1, p2, grads_for(p1, k)):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
        assert b.temperature() is None
    assert all(torch.equal(x, y) for x, y in zip(p1, p2))


def test_first_transition_step_is_the_sign_step(device):
    p1 = make_params(torch.float32, device, shapes=[(1000,)])
    p2 = [p.detach().clone().requires_grad_() for p in p1]
    a = softsign.Signum(p1, lr=1e-2, momentum=0.0)
    b = softsign.SoftSignum(p2, lr=1e-2, momentum=0.0, sign_steps=3, transition_steps=5)
    for k in range(1, 5):
        for x, y, g in zip(p1, p2, grads_for(p1, k)):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
    assert b.temperature() == 1e9  # tau_0 = tmax: tanh(tau d) = sign(d) in float32
    torch.testing.assert_close(p2[0], p1[0], rtol=0, atol=1e-7)


def train_steps(opt, params, steps, start=1):
    for k in range(start, start + steps):
        for p, g in zip(params, grads_for(params, k)):
            p.grad = g
        opt.step()


@pytest.mark.parametrize("resume_at", [5, 17, 26])  # sign phase, transition, after
def test_resume_is_bit_identical(resume_at, device):
    opts = dict(
        lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.01, total_steps=25, alpha_sign=0.6
    )
    full = make_params(torch.float32, device)
    opt = softsign.SoftSignum(full, **opts)
    train_steps(opt, full, 32)

    part = make_params(torch.float32, device)
    opt = softsign.SoftSignum(part, **opts)
    train_steps(opt, part, resume_at)
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in part], "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    resumed = [p.clone().requires_grad_() for p in saved["params"]]
    opt2 = softsign.SoftSignum(resumed, **opts)
    opt2.load_state_dict(saved["opt"])
    train_steps(opt2, resumed, 32 - resume_at, start=resume_at + 1)
    assert all(torch.equal(x, y) for x, y in zip(full, resumed))


def test_state_dict_layout():
    params = make_params(torch.float32, "cpu", shapes=[(10,), (4,)])
    opt = softsign.SoftSignum(params, total_steps=10, alpha_sign=0.5)
    train_steps(opt, params, 10)
    sd = opt.state_dict()
    json.dumps(sd["param_groups"])  # JSON values only
    assert sd["param_groups"][0]["step"] == 10
    assert set(sd["param_groups"][0]["fit"]) == {"median", "mad"}
    assert all(set(s) == {"momentum_buffer"} for s in sd["state"].values())


def test_state_dict_of_an_unfitted_group_has_the_keys_of_a_fitted_one():
    """torch.distributed.checkpoint loads into the state dict of a fresh optimizer, so its
    keys must not change when the fit happens: "fit" holds NaNs until then."""
    params = make_params(torch.float32, "cpu", shapes=[(10,)])
    opt = softsign.SoftSignum(params, total_steps=10, alpha_sign=0.5)
    fit = opt.state_dict()["param_groups"][0]["fit"]
    assert set(fit) == {"median", "mad"} and math.isnan(fit["median"]) and math.isnan(fit["mad"])
    fresh = softsign.SoftSignum(params, total_steps=10, alpha_sign=0.5)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.param_groups[0]["fit"] is None
    train_steps(fresh, params, 10)
    assert fresh.param_groups[0]["fit"] is not None


def test_lr_scheduler_drives_the_step_size():
    params = make_params(torch.float32, "cpu", shapes=[(50,)])
    opt = softsign.SoftSignum(params, lr=0.1, momentum=0.0, total_steps=100)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    for k in range(1, 7):
        lr = opt.param_groups[0]["lr"]
        before = params[0].detach().clone()
        train_steps(opt, params, 1, start=k)
        sched.step()
        # Sign phase without momentum: every coordinate moves by exactly lr.
        torch.testing.assert_close((params[0] - before).abs().max().item(), lr)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 / 8)


def test_lr_as_tensor(device):
    p1 = make_params(torch.float32, device, shapes=[(20,)])
    p2 = [p.detach().clone().requires_grad_() for p in p1]
    a = softsign.SoftSignum(p1, lr=0.01, sign_steps=2, transition_steps=3)
    b = softsign.SoftSignum(p2, lr=torch.tensor(0.01), sign_steps=2, transition_steps=3)
    for k in range(1, 6):
        for x, y, g in zip(p1, p2, grads_for(p1, k)):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
    torch.testing.assert_close(p1[0], p2[0])


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


def test_grad_scaler_matches_unscaled_training():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    twin = copy.deepcopy(model)
    x, y = torch.randn(32, 8), torch.randn(32, 4)
    opt = softsign.SoftSignum(model.parameters(), lr=1e-2, sign_steps=3, transition_steps=4)
    opt2 = softsign.SoftSignum(twin.parameters(), lr=1e-2, sign_steps=3, transition_steps=4)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1000)
    for _ in range(8):
        for m, o, s in ((model, opt, scaler), (twin, opt2, None)):
            o.zero_grad()
            loss = torch.nn.functional.mse_loss(m(x), y)
            if s is None:
                loss.backward()
                o.step()
            else:
                s.scale(loss).backward()
                s.step(o)
                s.update()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert opt.temperature() == pytest.approx(opt2.temperature())


def test_grad_scaler_skips_steps_with_inf():
    w = torch.nn.Parameter(torch.ones(4))
    opt = softsign.SoftSignum([w], lr=0.1, sign_steps=1, transition_steps=3)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    loss = (w * torch.tensor([1.0, float("inf"), 1.0, 1.0])).sum()
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(w.detach(), torch.ones(4))
    assert scaler.get_scale() == 2.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-1.0), "learning rate"),
        (dict(lr=torch.tensor(float("nan"))), "learning rate"),
        (dict(momentum=-0.1), "momentum"),
        (dict(dampening=1.5), "dampening"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(nesterov=True, momentum=0.0), "nesterov"),
        (dict(alpha_sign=0.0), "alpha_sign"),
        (dict(alpha_sign=1.5), "alpha_sign"),
        (dict(eps=0.0), "eps"),
        (dict(eps=1.0), "eps"),
        (dict(newton_iters=-1), "newton_iters"),
        (dict(newton_iters=2.5), "newton_iters"),
        (dict(tmax=0.5), "tmax"),
        (dict(total_steps=0), "total_steps"),
        (dict(total_steps=None), "total_steps"),
        (dict(total_steps=None, sign_steps=5), "transition_steps"),
        (dict(sign_steps=-1), "sign_steps"),
        (dict(transition_steps=0), "transition_steps"),
        (dict(sign_steps=3, sign_iters=4), "sign_iters"),
    ],
)
def test_invalid_hyperparameters(kwargs, match):
    kw = dict(total_steps=100)
    kw.update(kwargs)
    with pytest.raises(ValueError, match=match):
        softsign.SoftSignum([torch.zeros(2, requires_grad=True)], **kw)


def test_aliases_of_the_public_code():
    opt = softsign.SoftSignum(
        [torch.zeros(2, requires_grad=True)], sign_iters=4, transition_iters=6
    )
    assert (opt.param_groups[0]["sign_steps"], opt.param_groups[0]["transition_steps"]) == (4, 6)


def test_complex_params_are_rejected():
    with pytest.raises(ValueError, match="complex"):
        softsign.SoftSignum([torch.zeros(2, dtype=torch.complex64)], total_steps=10)


def test_fused_on_a_device_without_kernels_is_rejected():
    with pytest.raises(ValueError, match="fused"):
        softsign.Signum([torch.zeros(2, device="meta")], fused=True)


def test_sparse_gradients_are_rejected_before_any_change():
    dense = torch.nn.Parameter(torch.ones(3))
    emb = torch.nn.Embedding(5, 2, sparse=True)
    opt = softsign.SoftSignum([dense, *emb.parameters()], total_steps=100)
    dense.grad = torch.ones(3)
    emb(torch.tensor([1])).sum().backward()
    before = emb.weight.detach().clone()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    assert torch.equal(dense.detach(), torch.ones(3)) and torch.equal(emb.weight, before)
    assert opt.state_dict()["param_groups"][0]["step"] == 0


def test_non_finite_statistics_raise_before_any_change():
    a = torch.nn.Parameter(torch.ones(4))
    b = torch.nn.Parameter(torch.ones(4))
    opt = softsign.SoftSignum(
        [dict(params=[a]), dict(params=[b])], sign_steps=2, transition_steps=3, momentum=0.0
    )
    for _ in range(2):
        a.grad, b.grad = torch.ones(4), torch.ones(4)
        opt.step()
    a0, b0 = a.detach().clone(), b.detach().clone()
    a.grad = torch.ones(4)
    b.grad = torch.tensor([1.0, float("nan"), float("nan"), float("nan")])
    with pytest.raises(ValueError, match="non-finite"):
        opt.step()
    assert torch.equal(a.detach(), a0) and torch.equal(b.detach(), b0)


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


def test_grad_is_not_modified(device):
    params = make_params(torch.float32, device, shapes=[(30,)])
    opt = softsign.SoftSignum(params, maximize=True, total_steps=4, alpha_sign=0.5)
    for k in range(1, 5):
        g = grads_for(params, k)[0]
        params[0].grad = g.clone()
        opt.step()
        assert torch.equal(params[0].grad, g)


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


@pytest.mark.parametrize(
    "options,match",
    [
        (dict(momentum=2.0), "momentum"),
        (dict(lr=-1.0), "learning rate"),
        (dict(sign_steps=-3), "sign_steps"),
        (dict(tmax=1e300), "tmax"),  # tau beyond float32 would write NaN
        (dict(nesterov=True, momentum=0.0), "nesterov"),
        (dict(sign_iters=2, sign_steps=3), "sign_iters"),
    ],
)
def test_group_options_are_checked_and_a_refused_group_is_not_kept(options, match):
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = softsign.SoftSignum([a], total_steps=100)
    with pytest.raises(ValueError, match=match):
        opt.add_param_group(dict(params=[b], **options))
    with pytest.raises(ValueError, match=match):
        softsign.SoftSignum([dict(params=[b], **options)], total_steps=100)
    assert len(opt.param_groups) == 1
    a.grad = torch.ones(3)
    opt.step()  # the optimizer still works


def test_a_group_with_a_complex_param_is_not_kept():
    opt = softsign.Signum([torch.nn.Parameter(torch.ones(3))])
    with pytest.raises(ValueError, match="complex"):
        opt.add_param_group(dict(params=[torch.zeros(2, dtype=torch.complex64)]))
    assert len(opt.param_groups) == 1


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
