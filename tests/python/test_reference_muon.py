"""The float64 SoftMuon / Muon reference against independent closed forms: the spectral
soft sign and its augmented-polar identity, NS5 and the coupled soft iteration, the update
scale, torch.optim.AdamW and torch.optim.Muon, and the schedule fit at step S + 1."""

import math

import pytest
import torch

from softsign import reference
from softsign.reference import MuonReference, SoftMuonReference

F64 = torch.float64


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=F64)


def with_spectrum(m, n, sigma, seed=0):
    """An m x n matrix with the given singular values and random singular vectors."""
    r = min(m, n)
    U, _ = torch.linalg.qr(randn(m, r, seed=seed))
    V, _ = torch.linalg.qr(randn(n, r, seed=seed + 1))
    return (U * torch.as_tensor(sigma, dtype=F64)) @ V.mT


def polar_by_eigh(A):
    """Polar factor of a full-column-rank tall A as A (A^T A)^(-1/2), via eigh (no SVD)."""
    w, Q = torch.linalg.eigh(A.mT @ A)
    return A @ (Q * w.rsqrt()) @ Q.mT


def rel(a, b):
    return ((a - b).norm() / b.norm()).item()


# -- spectral maps ---------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 10), (10, 6), (7, 7), (3, 5, 4)])
def test_phi_tau_at_large_tau_is_the_polar_factor(shape):
    M = randn(*shape)
    assert (reference.phi_tau(M, 1e9) - reference.polar(M)).abs().max() < 1e-12
    assert (reference.phi_tau(M, torch.tensor(1e9)) - reference.polar(M)).abs().max() < 1e-12
    # the polar factor of a full-rank matrix: orthonormal rows (wide) or columns (tall)
    P = reference.polar(M)
    G = P @ P.mT if shape[-2] <= shape[-1] else P.mT @ P
    assert torch.allclose(G, torch.eye(G.shape[-1], dtype=F64).expand_as(G), atol=1e-12)


def test_phi_tau_at_small_tau_is_tau_times_m():
    M = randn(6, 9)
    for tau in (1e-6, 1e-9):
        assert rel(reference.phi_tau(M, tau) / tau, M) < 1e-9


@pytest.mark.parametrize("shape", [(9, 4), (4, 9), (5, 5)])
@pytest.mark.parametrize("tau", [0.05, 1.0, 30.0, 1e4])
def test_phi_tau_is_the_first_block_of_the_augmented_polar_factor(shape, tau):
    m, n = shape
    M = randn(m, n, seed=3)
    if m >= n:  # [M; tau^-1 I_n] is tall: the first m rows of its polar factor
        P = polar_by_eigh(torch.cat([M, torch.eye(n, dtype=F64) / tau], dim=0))[:m]
    else:  # [M, tau^-1 I_m] is wide: the first n columns of its polar factor
        P = polar_by_eigh(torch.cat([M, torch.eye(m, dtype=F64) / tau], dim=1).mT).mT[:, :n]
    assert torch.allclose(reference.phi_tau(M, tau), P, atol=1e-12, rtol=0)
    # and the closed form (M M^T + tau^-2 I)^(-1/2) M
    w, Q = torch.linalg.eigh(M @ M.mT + torch.eye(m, dtype=F64) / tau**2)
    assert torch.allclose(reference.phi_tau(M, tau), (Q * w.rsqrt()) @ Q.mT @ M, atol=1e-12)


def test_phi_tau_zero_and_rank_deficient():
    Z = torch.zeros(4, 6, dtype=F64)
    for tau in (1.0, 1e9, math.inf):
        assert torch.equal(reference.phi_tau(Z, tau), Z)
    assert torch.equal(reference.polar(Z), Z)
    assert torch.equal(reference.newton_schulz5(Z), Z)
    u, v = randn(5, 1, seed=1), randn(1, 7, seed=2)
    R = u @ v  # rank 1, sigma = |u| |v|
    sigma = u.norm() * v.norm()
    for tau in (0.1, 1.0, 1e9):
        x = tau * sigma
        expected = R / sigma * (x / torch.sqrt(1 + x * x))
        assert torch.allclose(reference.phi_tau(R, tau), expected, atol=1e-6 / tau + 1e-12)
    assert torch.allclose(reference.polar(R), R / sigma, atol=1e-12)
    # tau*sigma far beyond where (tau sigma)^2 overflows, and far below where it underflows
    M = with_spectrum(4, 6, [1.0, 0.1, 1e-2, 1e-3])
    assert (reference.phi_tau(M, 1e300) - reference.polar(M)).abs().max() < 1e-12
    assert rel(reference.phi_tau(M, 1e-300) * 1e300, M) < 1e-12


def test_newton_schulz5_orthogonalizes_and_keeps_the_singular_vectors():
    for m, n in [(8, 16), (16, 8)]:
        M = with_spectrum(m, n, torch.linspace(1.0, 3.0, min(m, n)), seed=5)
        orth = reference.newton_schulz5(M)
        assert orth.dtype == F64 and orth.shape == M.shape
        sv = torch.linalg.svdvals(orth)
        assert sv.min() > 0.6 and sv.max() < 1.25
        U, _, Vh = torch.linalg.svd(M, full_matrices=False)
        D = U.mT @ orth @ Vh.mT  # diagonal: orth = U p(S) V^T
        assert (D - torch.diag_embed(D.diagonal())).abs().max() < 1e-12
        # batched equals per matrix
        B = torch.stack([M, 2 * M])
        assert torch.allclose(reference.newton_schulz5(B)[1], reference.newton_schulz5(2 * M))
    # the bf16 emulation returns bf16, near the fp64 iteration
    O16 = reference.newton_schulz5(M, dtype=torch.bfloat16)
    assert O16.dtype == torch.bfloat16
    assert rel(O16.double(), reference.newton_schulz5(M)) < 0.05


@pytest.mark.parametrize("shape", [(6, 10), (10, 6)])
@pytest.mark.parametrize("tau", [0.3, 1.0, 3.0])
def test_soft_newton_schulz_converges_to_phi_tau(shape, tau):
    M = with_spectrum(*shape, torch.linspace(0.5, 2.0, min(shape)), seed=7)
    exact = reference.phi_tau(M, tau)
    assert torch.allclose(reference.soft_newton_schulz(M, tau, steps=60), exact, atol=1e-12)
    # 5 steps (the public default) are only an approximation
    five = reference.soft_newton_schulz(M, torch.tensor(tau), steps=5)
    assert five.shape == M.shape and rel(five, exact) < 0.5


def test_soft_newton_schulz_five_steps_shrink_at_the_start_of_the_transition():
    # the authors' defect (docs/algorithms.md section 5): at tau ~ 1e9 mid-spectrum singular
    # values come out far below 1
    M = with_spectrum(16, 32, torch.logspace(0, -3, 16), seed=9)
    sv = torch.linalg.svdvals(reference.soft_newton_schulz(M, 1e9, steps=5))
    assert sv.median() < 0.5
    assert torch.linalg.svdvals(reference.phi_tau(M, 1e9)).min() > 1 - 1e-9


def test_muon_scale_and_views():
    assert reference.muon_scale(8, 2) == 2.0
    assert reference.muon_scale(2, 8) == 1.0
    assert reference.muon_scale(8, 2, "match_rms_adamw") == pytest.approx(0.2 * math.sqrt(8))
    assert reference.muon_scale(3, 50, "match_rms_adamw") == pytest.approx(0.2 * math.sqrt(50))
    with pytest.raises(ValueError):
        reference.muon_scale(2, 2, "spectral")
    w = randn(4, 3, 2, 2)
    assert reference.matrix_view(w).shape == (4, 12)
    assert reference.statistic_view(w).shape == (4, 12)
    assert reference.statistic_view(randn(7)).shape == (1, 7)
    assert reference.statistic_view(randn(3, 5)).shape == (3, 5)
    with pytest.raises(ValueError):
        reference.matrix_view(randn(7))


# -- the optimizer -----------------------------------------------------------------------


def grads_for(params, step, seed=1):
    gen = torch.Generator().manual_seed(seed * 1000 + step)
    return [
        torch.randn(p.shape, generator=gen, dtype=F64) * 10.0 ** (-i % 3)
        for i, p in enumerate(params)
    ]


def run_torch(opt, params, steps, skip=None):
    for k in range(1, steps + 1):
        for i, (p, g) in enumerate(zip(params, grads_for(params, k))):
            p.grad = None if skip and skip(k, i) else g
        opt.step()
    return [p.detach() for p in params]


def run_ref(ref, params, steps, skip=None):
    for k in range(1, steps + 1):
        gs = grads_for(params, k)
        ref.step([None if skip and skip(k, i) else g for i, g in enumerate(gs)])
    return ref.params


def test_adamw_side_matches_torch_adamw():
    shapes = [(7,), (3, 4), (2, 3, 2)]
    init = [randn(*s, seed=i) for i, s in enumerate(shapes)]
    skip = lambda k, i: (k == 3 and i == 1)  # a missing gradient: no state change
    tp = [p.clone().requires_grad_() for p in init]
    opt = torch.optim.AdamW(
        tp, lr=1e-2, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.1, foreach=False
    )
    expected = run_torch(opt, tp, 10, skip)
    ref = SoftMuonReference(
        [dict(params=init, use_muon=False, lr=1e-2, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.1)]
    )
    got = run_ref(ref, init, 10, skip)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert ref.state[1]["step"] == 9 and ref.state[0]["step"] == 10
    assert ref.temperature(0) is None
    # the adamw_* options are the defaults of use_muon=False groups
    tp = [p.clone().requires_grad_() for p in init]
    opt = torch.optim.AdamW(
        tp, lr=2e-3, betas=(0.9, 0.99), eps=1e-6, weight_decay=0.05, foreach=False
    )
    expected = run_torch(opt, tp, 4)
    ref = SoftMuonReference(
        [dict(params=init, use_muon=False)],
        adamw_lr=2e-3,
        adamw_betas=(0.9, 0.99),
        adamw_eps=1e-6,
        adamw_weight_decay=0.05,
    )
    for a, b in zip(run_ref(ref, init, 4), expected):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


MUON_CONFIGS = {
    "default": dict(),
    "plain_momentum": dict(nesterov=False, momentum=0.9),
    "match_rms": dict(adjust_lr="match_rms_adamw"),
}


@pytest.mark.parametrize("config", MUON_CONFIGS)
@pytest.mark.parametrize("ns_dtype", [torch.bfloat16, F64])
def test_muon_side_matches_torch_muon(config, ns_dtype):
    kw = MUON_CONFIGS[config]
    shapes = [(8, 16), (24, 6), (5, 5)]
    init = [randn(*s, seed=i) for i, s in enumerate(shapes)]
    tp = [p.clone().requires_grad_() for p in init]
    opt = torch.optim.Muon(
        tp,
        lr=0.02,
        weight_decay=0.01,
        momentum=kw.get("momentum", 0.95),
        nesterov=kw.get("nesterov", True),
        adjust_lr_fn=kw.get("adjust_lr", "original"),
    )
    skip = lambda k, i: (k == 2 and i == 0)
    expected = run_torch(opt, tp, 5, skip)
    ref = MuonReference(
        [dict(params=init, use_muon=True)], lr=0.02, weight_decay=0.01, ns_dtype=ns_dtype, **kw
    )
    got = run_ref(ref, init, 5, skip)
    # bf16 emulation: the same products rounded the same way; fp64: NS5's bf16 error
    tol = 1e-12 if ns_dtype == torch.bfloat16 else 5e-3
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=tol)
    assert ref.temperature(0) is None and ref.steps[0] == 5


def test_conv_weight_uses_the_out_by_rest_view():
    conv = randn(4, 3, 2, 2)  # view (4, 12): scale 1
    tall = randn(12, 2, 1, 1, seed=1)  # view (12, 2): scale sqrt(6)
    ref4 = MuonReference([conv, tall], lr=0.05)
    ref2 = MuonReference([conv.reshape(4, -1), tall.reshape(12, -1)], lr=0.05)
    tp = [
        conv.reshape(4, -1).clone().requires_grad_(),
        tall.reshape(12, -1).clone().requires_grad_(),
    ]
    opt = torch.optim.Muon(tp, lr=0.05, weight_decay=0.0, adjust_lr_fn="original")
    for k in range(1, 4):
        gs = grads_for([conv, tall], k)
        ref4.step(gs)
        ref2.step([g.reshape(g.shape[0], -1) for g in gs])
        for p, g in zip(tp, gs):
            p.grad = g.reshape(g.shape[0], -1)
        opt.step()
    assert ref4.params[0].shape == (4, 3, 2, 2)
    for a, b, c in zip(ref4.params, ref2.params, tp):
        assert torch.equal(a.reshape(b.shape), b)
        torch.testing.assert_close(b, c.detach(), rtol=0, atol=5e-3)
    orth = ref4.last_updates[1].reshape(12, 2)
    assert torch.allclose(
        torch.linalg.svdvals(orth) / math.sqrt(6), torch.ones(2, dtype=F64), atol=0.35
    )


@pytest.mark.parametrize("soft_map", ["accurate", "newton_schulz"])
def test_transposed_matrices_step_as_the_transposes_of_their_linear_weights(soft_map):
    """transposed=True: a weight stored (in, out) steps as the transpose of the (out, in)
    weight, through the sign phase, the fit and the soft map (the scale is the (out, in)
    matrix's: the wide (4, 9) stored as (9, 4) keeps scale 1, not sqrt(9/4))."""
    linear = [randn(9, 4), randn(4, 9, seed=1), randn(5, 5, seed=2)]
    options = dict(sign_steps=2, transition_steps=3, weight_decay=0.1, soft_map=soft_map)
    ref = SoftMuonReference(linear, **options)
    stored = SoftMuonReference(
        [dict(params=[w.T for w in linear], use_muon=True, transposed=True)], **options
    )
    for k in range(1, 7):
        gs = grads_for(linear, k)
        ref.step(gs)
        stored.step([g.T for g in gs])
        for a, b in zip(ref.params, stored.params):
            torch.testing.assert_close(b.T, a, rtol=0, atol=1e-13)
    assert stored.temperature(0) == pytest.approx(ref.temperature(0), rel=1e-12)
    with pytest.raises(ValueError, match="transposed"):
        SoftMuonReference([dict(params=[randn(4, 3, 2)], transposed=True)], total_steps=10)


def test_muon_equals_soft_muon_before_the_transition():
    init = [randn(6, 9), randn(9, 4, seed=1), randn(5, seed=2)]
    groups = lambda: [dict(params=init[:2], use_muon=True), dict(params=init[2:], use_muon=False)]
    muon = MuonReference(groups(), weight_decay=0.1)
    soft = SoftMuonReference(groups(), weight_decay=0.1, total_steps=100, sign_steps=50)
    for a, b in zip(run_ref(muon, init, 6), run_ref(soft, init, 6)):
        assert torch.equal(a, b)
    assert soft.temperature(0) is None and soft.schedules[0] is None
    with pytest.raises(ValueError):
        SoftMuonReference([dict(params=init[:2], use_muon=True)])  # no total_steps
    with pytest.raises(ValueError):
        MuonReference(init[:2], total_steps=10)


@pytest.mark.parametrize("soft_map", ["accurate", "newton_schulz"])
def test_schedule_fit_at_s_plus_one_from_raw_gradient_singular_values(soft_map):
    init = [randn(6, 9), randn(4, 3, 2, 2, seed=1), randn(5, seed=2)]  # 1-D: AdamW
    S, T = 3, 4
    ref = SoftMuonReference(
        [dict(params=init, use_muon=True)],
        sign_steps=S,
        transition_steps=T,
        soft_map=soft_map,
        lr=0.01,
    )
    taus = []
    for k in range(1, S + T + 3):
        gs = grads_for(init, k)
        before = [p.clone() for p in ref.params]
        bufs = [ref.state[i].get("momentum_buffer") for i in range(2)]
        ref.step(gs)
        taus.append(ref.temperature(0))
        if k == S + 1:  # the statistic: singular values of the raw gradients (not momentum)
            sv = torch.cat(
                [
                    torch.linalg.svdvals(gs[0]),
                    torch.linalg.svdvals(gs[1].reshape(4, -1)),
                    torch.linalg.svdvals(gs[2].reshape(1, -1)),
                ]
            )
            mu = sv.sort().values[(sv.numel() - 1) // 2]
            s = (sv - mu).abs().sort().values[(sv.numel() - 1) // 2]
            expected = reference.temperature_schedule(mu, s, T, kind="algebraic")
            assert ref.fits[0] == (mu.item(), s.item())
            assert torch.equal(ref.schedules[0], expected)
        if k > S:  # the update is the soft map of d at this step's tau
            tau = ref.temperature(0)
            for i in range(2):
                buf = torch.lerp(bufs[i], gs[i], 0.05)
                d = torch.lerp(gs[i], buf, 0.95)
                D = d.reshape(d.shape[0], -1)
                if soft_map == "accurate":
                    orth = reference.phi_tau(D, tau)
                else:
                    orth = reference.soft_newton_schulz(D, tau, steps=5)
                orth = orth * reference.muon_scale(*D.shape)
                torch.testing.assert_close(
                    ref.params[i], before[i] - 0.01 * orth.reshape(d.shape), rtol=1e-12, atol=1e-14
                )
    sched = ref.schedules[0].tolist()
    assert taus[:S] == [None] * S
    assert taus[S : S + T] == sched
    assert taus[S + T :] == [sched[-1]] * 2  # held after the transition
    assert sched[0] == 1e9 and all(a >= b for a, b in zip(sched, sched[1:]))


def test_fit_waits_for_gradients_and_bad_statistics_raise_first():
    init = [randn(4, 6), randn(5, 5, seed=1)]
    ref = SoftMuonReference(
        [dict(params=init[:1]), dict(params=init[1:])], sign_steps=1, transition_steps=3
    )
    g = grads_for(init, 1)
    ref.step([[g[0]], [None]])  # nested per-group form
    ref.step([[g[0]], [None]])  # k = 2 = S + 1: group 1 has no gradients, no fit
    assert ref.schedules[0] is not None and ref.schedules[1] is None
    ref.step(g)  # group 1 fits at k = 3 and uses index k - S - 1 = 1
    assert ref.temperature(1) == float(ref.schedules[1][1])
    bad = SoftMuonReference(init, sign_steps=0, transition_steps=2)
    with pytest.raises(ValueError, match="non-finite"):
        bad.step([torch.full((4, 6), math.inf, dtype=F64), g[1]])
    assert all(torch.equal(a, b) for a, b in zip(bad.params, init))
    assert bad.steps == [0] and bad.schedules == [None]


def test_storage_dtype_rounds_params_and_state():
    init = [randn(6, 9).bfloat16().double(), randn(5, seed=2).bfloat16().double()]
    ref = SoftMuonReference(
        [dict(params=init[:1]), dict(params=init[1:], use_muon=False)],
        total_steps=4,
        alpha_sign=0.5,
        storage_dtype=torch.bfloat16,
    )
    run_ref(ref, init, 4)
    tensors = ref.params + [ref.state[0]["momentum_buffer"], ref.state[1]["exp_avg"]]
    for t in tensors:
        assert torch.equal(t, t.bfloat16().double())
    assert ref.temperature(0) is not None
