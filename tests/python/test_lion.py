"""Lion and SoftLion: what is theirs beyond the contract every optimizer meets
(test_contract.py: the float64 reference over every phase and dtype, param groups,
schedulers, resume, bad input, fused vs unfused, the C++ bindings, GradScaler, lr tensors,
SoftLion's sign phase as Lion; test_compile.py: torch.compile): lion-pytorch's steps and
checkpoints, the statistic the fit reads (c), the buffer's start at zero, no host
synchronization, and the sharded selection of c."""

from __future__ import annotations

import io

import pytest
import torch
from optim_registry import SIGN_SHAPES, clone_params, grads_for, randn_params, train

import softsign
from softsign.reference import SoftLionReference

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


def against_lion_pytorch(make_groups, shapes, steps, lr, fused=None, **kw):
    """(ours, theirs): softsign.Lion and lion-pytorch's Lion over make_groups(params) of the
    same params, stepped together on the same gradients."""
    ours = randn_params(shapes)
    theirs = clone_params(ours)
    a = softsign.Lion(make_groups(ours), lr=lr, fused=fused, **kw)
    b = _lion_pytorch().Lion(make_groups(theirs), lr=lr, **kw)
    train([(a, ours), (b, theirs)], steps)
    assert_equal_but_for_rare_sign_flips(ours, theirs, lr, steps)
    return a, b


@pytest.mark.parametrize("fused", [None, False])
def test_lion_equals_lion_pytorch(fused):
    a, b = against_lion_pytorch(
        list, SIGN_SHAPES, 40, 1e-3, betas=(0.9, 0.99), weight_decay=0.1, fused=fused
    )
    # The buffers differ by the rounding of 1 - beta2 only: 0.01 rounded from float64 and
    # 1.0f - 0.99f differ by 9e-7 relatively, so each buffer is off by about 1e-6 of the
    # gradients' size (up to about 4 here).
    for x, y in zip(a.state.values(), b.state.values()):
        torch.testing.assert_close(x["exp_avg"], y["exp_avg"], rtol=1e-5, atol=1e-5)


def test_lion_equals_lion_pytorch_with_param_groups():
    def groups(params):
        own = dict(lr=3e-3, betas=(0.5, 0.9), weight_decay=0.01)
        return [dict(params=params[:2]), dict(params=params[2:], **own)]

    # The second group's lr (3e-3) bounds the jumps of sign flips.
    against_lion_pytorch(groups, [(40,), (5, 6), (300,)], 20, 3e-3)


def test_a_lion_pytorch_checkpoint_loads_and_continues():
    lion_pytorch = _lion_pytorch()
    ours = randn_params([(100,), (9, 9)])
    theirs = clone_params(ours)
    b = lion_pytorch.Lion(theirs, lr=1e-3, weight_decay=0.1)
    train([(b, theirs)], 5)
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
    train([(a, ours), (b, theirs)], 10, start=6)
    assert_equal_but_for_rare_sign_flips(ours, theirs, 1e-3, 10)


def test_the_fit_reads_the_distribution_of_c():
    """At step S + 1 the statistic is c = beta1 * m + (1 - beta1) * g, m the buffer before
    that step: its exact lower median and MAD, not those of g or of the buffer."""
    beta1, beta2 = 0.8, 0.95
    params = randn_params([(500,), (20, 30)])
    opt = softsign.SoftLion(params, lr=1e-2, betas=(beta1, beta2), sign_steps=5, transition_steps=5)
    train([(opt, params)], 5)
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


@pytest.mark.parametrize("maximize", [False, True])
def test_the_sharded_statistic_selects_what_the_fused_one_does(maximize):
    """The selection passes driven from Python (how a group of DTensors sums its histograms
    over ranks) read Lion's c as the fused direction_median_mad does."""
    from softsign import _select

    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(s, generator=gen) for s in [(300,), (20, 7)]]
    bufs = [torch.randn(g.shape, generator=gen) for g in grads]
    fresh = [torch.randn(50, generator=gen)]
    rule = dict(
        momentum=0.99, dampening=0.99, nesterov=False, momentum_rule="lion", rule_coeffs=[0.9]
    )
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
