"""Lion and SoftLion: against the community's lion-pytorch (whose steps and checkpoints Lion
must match), against the float64 reference over the sign phase, the fit step, the transition
and after it, and the optimizer contract (the fit's statistic, resume, bad input, dtypes,
fused vs unfused, AMP)."""

from __future__ import annotations

import io
import math
import warnings

import pytest
import torch

import softsign
from softsign.reference import LionReference, SoftLionReference

from conftest import TOLERANCES

SHAPES = [(1,), (7,), (33, 5), (3, 4, 5), (70001,)]  # tiny to several CPU chunks
CONFIGS = {
    "plain": dict(),
    "weight_decay": dict(weight_decay=0.1, betas=(0.8, 0.95)),
    "maximize": dict(maximize=True, betas=(0.95, 0.98)),
    "no_interpolation": dict(betas=(0.0, 0.9)),  # c = g: signSGD with a buffer kept
}


def make_params(dtype=torch.float32, seed=0, shapes=SHAPES, device="cpu"):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).to(dtype).to(device).requires_grad_() for s in shapes]


def grads_for(params, step, seed=1):
    gen = torch.Generator().manual_seed(seed * 1000 + step)
    # A per-tensor scale spreads the magnitudes, as in a real model.
    return [
        (torch.randn(p.shape, generator=gen) * 10.0 ** (-i % 3)).to(p.dtype).to(p.device)
        for i, p in enumerate(params)
    ]


def train(opt, params, steps, start=1):
    for k in range(start, start + steps):
        for p, g in zip(params, grads_for(params, k)):
            p.grad = g
        opt.step()


def clone(params):
    return [p.detach().clone().requires_grad_() for p in params]


# ---- lion-pytorch ----------------------------------------------------------------------------


def _lion_pytorch():
    return pytest.importorskip("lion_pytorch", reason="lion-pytorch is not installed")


def assert_equal_but_for_rare_sign_flips(ours, theirs, lr, steps):
    """Equal bit for bit, but for a few elements whose c was within rounding of zero.

    Both optimizers round every product and sum in float32, in the same order, with one
    difference: lion-pytorch's 1 - beta is the float64 difference rounded to float32, ours
    is float32's own 1.0f - beta (as the fused kernels form it), so the two buffers differ by
    about 1e-7 relatively. That can only flip sign(c) where |c| is that close to zero: each
    such element then moves 2 lr the other way once. Over the runs here no element flips;
    the bound allows one flip per 10^4 elements."""
    flipped = 0
    for a, b in zip(ours, theirs):
        off = a != b
        flipped += int(off.sum())
        assert (a - b).abs().max() <= 2 * lr * steps + 1e-6
    assert flipped <= 1 + sum(a.numel() for a in ours) // 10_000, f"{flipped} elements differ"


@pytest.mark.parametrize("fused", [None, False])
def test_lion_equals_lion_pytorch(fused):
    lion_pytorch = _lion_pytorch()
    ours = make_params()
    theirs = clone(ours)
    kw = dict(lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    a = softsign.Lion(ours, fused=fused, **kw)
    b = lion_pytorch.Lion(theirs, **kw)
    steps = 40
    for k in range(1, steps + 1):
        for x, y, g in zip(ours, theirs, grads_for(ours, k)):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
    assert_equal_but_for_rare_sign_flips(ours, theirs, kw["lr"], steps)
    # The buffers differ by the rounding of 1 - beta2 only: 0.01 rounded from float64 and
    # 1.0f - 0.99f differ by 9e-7 relatively, so each buffer is off by about 1e-6 of the
    # gradients' size (up to about 4 here).
    for x, y in zip(ours, theirs):
        torch.testing.assert_close(
            a.state[x]["exp_avg"], b.state[y]["exp_avg"], rtol=1e-5, atol=1e-5
        )


def test_lion_equals_lion_pytorch_with_param_groups():
    lion_pytorch = _lion_pytorch()
    ours = make_params(shapes=[(40,), (5, 6), (300,)])
    theirs = clone(ours)
    groups = lambda ps: [
        dict(params=ps[:2]),
        dict(params=ps[2:], lr=3e-3, betas=(0.5, 0.9), weight_decay=0.01),
    ]
    a = softsign.Lion(groups(ours), lr=1e-3)
    b = lion_pytorch.Lion(groups(theirs), lr=1e-3)
    for k in range(1, 21):
        for x, y, g in zip(ours, theirs, grads_for(ours, k)):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
    assert_equal_but_for_rare_sign_flips(ours, theirs, 3e-3, 20)


def test_a_lion_pytorch_checkpoint_loads_and_continues():
    lion_pytorch = _lion_pytorch()
    ours = make_params(shapes=[(100,), (9, 9)])
    theirs = clone(ours)
    b = lion_pytorch.Lion(theirs, lr=1e-3, weight_decay=0.1)
    train(b, theirs, 5)
    with torch.no_grad():
        for x, y in zip(ours, theirs):
            x.copy_(y)
    a = softsign.Lion(ours, lr=1e-3, weight_decay=0.1)
    buf = io.BytesIO()
    torch.save(b.state_dict(), buf)
    buf.seek(0)
    a.load_state_dict(torch.load(buf, weights_only=True))
    group = a.param_groups[0]
    assert group["maximize"] is False and group["fused"] is None and group["step"] == 0
    train(a, ours, 10, start=6)
    train(b, theirs, 10, start=6)
    assert_equal_but_for_rare_sign_flips(ours, theirs, 1e-3, 10)


# ---- the float64 reference ---------------------------------------------------------------------


def resync_sign_flips(got, ref, i, dtype):
    """A direction within rounding of zero may take the other sign in float32 than in
    float64: in the sign phase, and at the first transition steps where tau is about tmax,
    that is a 2 lr jump and not an error. Such elements, and only those, are copied into the
    reference so the comparison goes on."""
    d = ref.last_directions[i]
    near_zero = d.abs() <= 1e-5 * d.abs().max()
    # Any difference counts: a flip of lr (sign 0 against 1, an exact cancellation) can
    # still pass the tolerance of a low-precision format, and would then walk.
    flips = near_zero & (got != ref.params[i])
    # bfloat16 and float16 values have so few bits that b1 m and (1 - b1) g cancel exactly
    # for about 1e-4 of the elements, where float32 and float64 then round apart.
    per = 10_000 if dtype in (torch.float32, torch.float64) else 1_000
    assert flips.sum() <= max(1, d.numel() // per), "too many sign flips for rounding"
    ref.params[i][flips] = got[flips]


def resync_buffers(opt, params, ref, dtype):
    """With bfloat16 or float16 storage the buffer m = b2 m + (1 - b2) g is rounded to the
    format from float32 by the optimizer and from float64 by the reference, which now and
    then lands one ulp of the format apart. Unlike the heavy ball's (where d is the buffer),
    Lion's c = b1 m + (1 - b1) g then moves by b1 ulp(m), enough to flip the sign of any c
    below about 0.4% of |m|. So each step both keep the optimizer's buffer once it is
    checked to be within one ulp of the reference's."""
    if dtype not in (torch.bfloat16, torch.float16):
        return
    ulp = torch.finfo(dtype).eps
    for i, p in enumerate(params):
        ours = opt.state[p]["exp_avg"].double().cpu()
        torch.testing.assert_close(ours, ref.bufs[i], rtol=ulp, atol=ulp * 2**-6)
        ref.bufs[i] = ours.clone()


def run_parity(opt, params, ref, steps, dtype):
    taus = []
    for k in range(1, steps + 1):
        gs = grads_for(params, k)
        for p, g in zip(params, gs):
            p.grad = g
        ref.step(gs)
        opt.step()
        resync_buffers(opt, params, ref, dtype)
        for i, p in enumerate(params):
            got = p.detach().double().cpu()
            resync_sign_flips(got, ref, i, dtype)
            torch.testing.assert_close(
                got, ref.params[i], **TOLERANCES[dtype], msg=lambda m, k=k: f"step {k}: {m}"
            )
        tau = opt.temperature()
        taus.append(tau)
        if ref.tau is None:
            assert tau is None
        else:
            # The fit reads float32 directions; the reference float64 ones.
            rel = 1e-12 if dtype == torch.float64 else 1e-5
            assert tau == pytest.approx(ref.tau, rel=rel)
    return taus


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fused", [None, False])
def test_soft_lion_matches_the_reference(config, dtype, fused):
    opts = dict(lr=1e-2, total_steps=30, alpha_sign=0.5, **CONFIGS[config])
    params = make_params(dtype)
    storage = None if dtype == torch.float32 else dtype
    ref = SoftLionReference(params, storage_dtype=storage, **opts)
    opt = softsign.SoftLion(params, fused=fused, **opts)
    taus = run_parity(opt, params, ref, 36, dtype)  # S = 15, T = 15, then 6 steps after
    assert taus[:15] == [None] * 15 and None not in taus[15:]
    assert taus[-1] == taus[-2]  # after the transition the last temperature stays


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("fused", [None, False])
def test_lion_matches_the_reference(config, fused):
    opts = dict(lr=1e-2, **CONFIGS[config])
    params = make_params()
    ref = LionReference(params, **opts)
    run_parity(softsign.Lion(params, fused=fused, **opts), params, ref, 20, torch.float32)


@pytest.mark.parametrize("fused", [None, False])
def test_float64_is_tight(fused):
    opts = dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.05, sign_steps=4, transition_steps=6)
    params = make_params(torch.float64, shapes=[(50,), (6, 7)])
    ref = SoftLionReference(params, **opts)
    run_parity(softsign.SoftLion(params, fused=fused, **opts), params, ref, 14, torch.float64)


def test_the_fit_reads_the_distribution_of_c():
    """At step S + 1 the statistic is c = beta1 * m + (1 - beta1) * g, m the buffer before
    that step: its exact lower median and MAD, not those of g or of the buffer."""
    beta1, beta2 = 0.8, 0.95
    params = make_params(shapes=[(500,), (20, 30)])
    opt = softsign.SoftLion(params, lr=1e-2, betas=(beta1, beta2), sign_steps=5, transition_steps=5)
    train(opt, params, 5)
    bufs = [opt.state[p]["exp_avg"].clone() for p in params]
    gs = grads_for(params, 6)
    for p, g in zip(params, gs):
        p.grad = g
    opt.step()
    # c as the kernels form it: every product and sum rounded in float32, 1 - beta1 in float32.
    one_minus = float(torch.tensor(1.0) - torch.tensor(beta1))
    c = torch.cat([(beta1 * m + one_minus * g).reshape(-1) for m, g in zip(bufs, gs)])
    mu = c.double().median()
    mad = (c.double() - mu).abs().median()
    assert opt.param_groups[0]["fit"] == {"median": mu.item(), "mad": mad.item()}
    for other in (torch.cat([g.reshape(-1) for g in gs]), torch.cat([m.reshape(-1) for m in bufs])):
        assert other.double().median().item() != mu.item()
    ref = SoftLionReference(params, betas=(beta1, beta2), sign_steps=5, transition_steps=5)
    ref.bufs = [m.double() for m in bufs]
    ref.k = 5
    ref.step(gs)
    assert ref.fit == pytest.approx((mu.item(), mad.item()), rel=1e-6)


def test_the_first_step_starts_the_buffer_at_zero():
    """m starts at zero (as lion-pytorch's): the first c is (1 - beta1) g and the buffer
    becomes (1 - beta2) g, not g."""
    w = torch.nn.Parameter(torch.zeros(3))
    opt = softsign.Lion([w], lr=0.1, betas=(0.9, 0.99))
    w.grad = torch.tensor([2.0, -4.0, 0.0])
    opt.step()
    assert w.tolist() == pytest.approx([-0.1, 0.1, 0.0])
    one_minus = float(torch.tensor(1.0) - torch.tensor(0.99))
    assert torch.equal(opt.state[w]["exp_avg"], one_minus * torch.tensor([2.0, -4.0, 0.0]))


# ---- the optimizer contract ----------------------------------------------------------------


def test_lion_equals_soft_lion_with_the_transition_beyond():
    p1 = make_params(shapes=[(100,), (9, 9)])
    p2 = clone(p1)
    kw = dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01)
    a = softsign.Lion(p1, **kw)
    b = softsign.SoftLion(p2, sign_steps=40, transition_steps=5, **kw)
    for k in range(1, 41):
        for x, y, g in zip(p1, p2, grads_for(p1, k)):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
        assert b.temperature() is None
    assert all(torch.equal(x, y) for x, y in zip(p1, p2))


@pytest.mark.parametrize("resume_at", [5, 17, 26])  # sign phase, transition, after
def test_resume_is_bit_identical(resume_at):
    opts = dict(lr=1e-2, betas=(0.9, 0.99), weight_decay=0.01, total_steps=25, alpha_sign=0.6)
    full = make_params()
    opt = softsign.SoftLion(full, **opts)
    train(opt, full, 32)

    part = make_params()
    opt = softsign.SoftLion(part, **opts)
    train(opt, part, resume_at)
    buf = io.BytesIO()
    torch.save({"params": [p.detach() for p in part], "opt": opt.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    assert all(set(s) == {"exp_avg"} for s in saved["opt"]["state"].values())
    resumed = [p.clone().requires_grad_() for p in saved["params"]]
    opt2 = softsign.SoftLion(resumed, **opts)
    opt2.load_state_dict(saved["opt"])
    train(opt2, resumed, 32 - resume_at, start=resume_at + 1)
    assert all(torch.equal(x, y) for x, y in zip(full, resumed))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(lr=-1.0), "learning rate"),
        (dict(lr=torch.tensor(float("nan"))), "learning rate"),
        (dict(betas=(0.9,)), "betas"),
        (dict(betas=(1.5, 0.99)), "beta"),
        (dict(betas=(0.9, -0.1)), "beta"),
        (dict(weight_decay=-1.0), "weight_decay"),
        (dict(fused="yes"), "fused"),
        (dict(total_steps=None), "total_steps"),
        (dict(total_steps=0), "total_steps"),
        (dict(alpha_sign=0.0), "alpha_sign"),
        (dict(eps=1.0), "eps"),
        (dict(newton_iters=2.5), "newton_iters"),
        (dict(tmax=0.5), "tmax"),
        (dict(sign_steps=-1), "sign_steps"),
        (dict(sign_steps=3, sign_iters=4), "sign_iters"),
    ],
)
def test_bad_hyperparameters_are_refused_before_anything_changes(kwargs, match):
    kw = dict(total_steps=100)
    kw.update(kwargs)
    w = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(ValueError, match=f"Invalid.*{match}|{match}.*Invalid"):
        softsign.SoftLion([w], **kw)
    opt = softsign.SoftLion([w], total_steps=100)
    with pytest.raises(ValueError, match="Invalid"):
        opt.add_param_group(dict(params=[torch.nn.Parameter(torch.ones(3))], **kwargs))
    assert len(opt.param_groups) == 1 and not opt.state
    w.grad = torch.ones(3)
    opt.step()  # the optimizer still works
    torch.testing.assert_close(w.detach(), torch.full((3,), 1 - 1e-4))


def test_lion_takes_no_schedule_options():
    with pytest.raises(TypeError):
        softsign.Lion([torch.nn.Parameter(torch.ones(3))], total_steps=10)


def test_non_finite_statistics_raise_before_any_change():
    a = torch.nn.Parameter(torch.ones(4))
    b = torch.nn.Parameter(torch.ones(4))
    opt = softsign.SoftLion([dict(params=[a]), dict(params=[b])], sign_steps=2, transition_steps=3)
    for _ in range(2):
        a.grad, b.grad = torch.randn(4), torch.randn(4)
        opt.step()
    before = [t.detach().clone() for t in (a, b, opt.state[a]["exp_avg"], opt.state[b]["exp_avg"])]
    a.grad = torch.ones(4)
    b.grad = torch.tensor([1.0, float("nan"), float("nan"), float("nan")])
    with pytest.raises(ValueError, match="non-finite"):
        opt.step()
    after = (a, b, opt.state[a]["exp_avg"], opt.state[b]["exp_avg"])
    assert all(torch.equal(x.detach(), y) for x, y in zip(after, before))
    assert [g["step"] for g in opt.param_groups] == [2, 2]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float64])
def test_fused_equals_unfused(dtype):
    """The same directions, buffers and fit on both paths; in the soft phase tanh itself may
    differ by an ulp (the fused kernel's vectorized tanh against torch.tanh)."""
    p1 = make_params(dtype, shapes=[(1000,), (30, 7)])
    p2 = clone(p1)
    kw = dict(lr=1e-2, weight_decay=0.1, sign_steps=5, transition_steps=6)
    a = softsign.SoftLion(p1, fused=True, **kw)
    b = softsign.SoftLion(p2, fused=False, **kw)
    for k in range(1, 15):
        for x, y, g in zip(p1, p2, grads_for(p1, k)):
            x.grad, y.grad = g.clone(), g.clone()
        a.step()
        b.step()
        if k <= 6:  # the sign phase and the fit step's own update (tau_0 = tmax)
            assert all(torch.equal(x, y) for x, y in zip(p1, p2)), k
        for x, y in zip(p1, p2):
            torch.testing.assert_close(x, y, **TOLERANCES[dtype])
            torch.testing.assert_close(a.state[x]["exp_avg"], b.state[y]["exp_avg"], rtol=0, atol=0)
    assert a.param_groups[0]["fit"] == b.param_groups[0]["fit"] is not None
    assert a.temperature() == b.temperature()


def test_grad_scaler_skips_steps_with_inf_and_matches_unscaled_training():
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 4)
    twin = torch.nn.Linear(8, 4)
    twin.load_state_dict(model.state_dict())
    x, y = torch.randn(32, 8), torch.randn(32, 4)
    kw = dict(lr=1e-2, sign_steps=3, transition_steps=4)
    opt = softsign.SoftLion(model.parameters(), **kw)
    opt2 = softsign.SoftLion(twin.parameters(), **kw)
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

    w = torch.nn.Parameter(torch.ones(4))
    opt = softsign.Lion([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)
    scaler.scale((w * torch.tensor([1.0, math.inf, 1.0, 1.0])).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(w.detach(), torch.ones(4))
    assert torch.equal(opt.state[w]["exp_avg"], torch.zeros(4))
    assert scaler.get_scale() == 2.0


def test_lr_as_tensor_and_an_lr_scheduler():
    p1 = make_params(shapes=[(20,)])
    p2 = clone(p1)
    a = softsign.SoftLion(p1, lr=0.01, sign_steps=2, transition_steps=3)
    b = softsign.SoftLion(p2, lr=torch.tensor(0.01), sign_steps=2, transition_steps=3)
    train(a, p1, 5)
    train(b, p2, 5)
    torch.testing.assert_close(p1[0], p2[0])
    w = torch.nn.Parameter(torch.zeros(50))
    opt = softsign.Lion([w], lr=0.1, betas=(0.0, 0.9))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    for k in range(3):
        before = w.detach().clone()
        w.grad = torch.randn(50, generator=torch.Generator().manual_seed(k))
        opt.step()
        sched.step()
        # beta1 = 0: c = g, every coordinate moves by exactly lr.
        assert (w - before).abs().max().item() == pytest.approx(0.1 * 0.5**k)


# ---- no host synchronization, torch.compile ----------------------------------------------


@pytest.mark.skipif(not torch.backends.cuda.is_built(), reason="fake CUDA needs a CUDA build")
@pytest.mark.parametrize("lands_after", [None, 1])
@pytest.mark.parametrize("fused,amp", [(None, True), (None, False), (False, False)])
def test_step_never_waits_for_the_device(monkeypatch, lands_after, fused, amp):
    """test_sync_free.py's fake-CUDA recorder over SoftLion's phases (and Lion's)."""
    from test_sync_free import fake_cuda, run_steps, vectors_and_matrices

    with fake_cuda(monkeypatch, lands_after) as recorder:
        params = vectors_and_matrices()
        opt = softsign.SoftLion(
            params, lr=1e-3, weight_decay=0.1, total_steps=12, alpha_sign=0.5, fused=fused
        )
        run_steps(recorder, opt, params, 15, amp)  # sign, fit, transition, after
        assert (lands_after is None) == (opt.param_groups[0]["fit"] is None)
        opt = softsign.Lion(params, lr=1e-3, fused=fused)
        run_steps(recorder, opt, params, 3, amp)


@pytest.mark.parametrize("name", ["Lion", "SoftLion"])
def test_compiled_step_equals_eager(name):
    cls = getattr(softsign, name)
    kw = dict(lr=1e-2, weight_decay=0.1)
    if name == "SoftLion":
        kw.update(sign_steps=4, transition_steps=5)  # 10 steps: sign, fit, soft, after
    eager = make_params(shapes=[(48, 32), (16, 8, 3, 3), (32,)])
    compiled = clone(eager)
    a, b = cls(eager, **kw), cls(compiled, **kw)
    torch._dynamo.reset()
    step = torch.compile(b.step)
    for k in range(1, 11):
        for p, q, g in zip(eager, compiled, grads_for(eager, k)):
            p.grad, q.grad = g, g.clone()
        a.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dynamo's notes on the profiler ranges
            step()
        for p, q in zip(eager, compiled):
            torch.testing.assert_close(q, p, rtol=0, atol=0, msg=f"step {k}")
    assert b.temperature() == a.temperature()


@pytest.mark.parametrize("maximize", [False, True])
def test_the_sharded_statistic_selects_what_the_fused_one_does(maximize):
    """The selection passes driven from Python (how a group of DTensors sums its histograms
    over ranks) read Lion's c as the fused direction_median_mad does."""
    from softsign import _select

    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(s, generator=gen) for s in [(300,), (20, 7)]]
    bufs = [torch.randn(g.shape, generator=gen) for g in grads]
    fresh = [torch.randn(50, generator=gen)]
    rule = dict(momentum=0.99, dampening=0.99, nesterov=False, lion_beta1=0.9)
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
    one_minus = float(torch.tensor(1.0) - torch.tensor(0.9))
    sign = -1.0 if maximize else 1.0  # maximize negates g, not the buffer
    c = [0.9 * m + one_minus * (sign * g) for m, g in zip(bufs, grads)]
    c += [one_minus * (sign * f) for f in fresh]
    assert got[0].item() == torch.cat([x.reshape(-1) for x in c]).double().median().item()
