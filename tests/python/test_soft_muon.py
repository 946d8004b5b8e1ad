"""SoftMuon and Muon as torch.optim optimizers: what is theirs beyond the contract every
optimizer meets (test_contract.py: parity with the float64 reference, param groups,
schedulers, state_dict resume, bad input, dtypes, the C++ path, GradScaler, SoftMuon's sign
phase as Muon): parity with torch.optim.Muon, routing (muon_param_groups), late fits, the ops
and the spectral maps."""

import copy
import warnings

import pytest
import torch
from optim_registry import MUON_OPTIONS, MUON_PARAMS, clone_params, grads_for, randn_params, train
from optim_registry import flat as flat_params
from torch import nn

import softsign
from softsign.reference.options import OPTIONS


def matrices(dtype=torch.float32):
    """The registry's matrix group: (out, in) matrices of several shapes (square, wide,
    tall, one twice for batching) and a conv weight."""
    return MUON_PARAMS(dtype)[0]["params"]


# ---- parity ----------------------------------------------------------------------------


@pytest.mark.parametrize("adjust_lr", ["original", "match_rms_adamw"])
def test_muon_matches_torch_muon(adjust_lr):
    ours = randn_params([(32, 16), (16, 48), (24, 24)])
    theirs = clone_params(ours)
    opt = softsign.Muon(ours, lr=0.02, weight_decay=0.1, adjust_lr=adjust_lr)
    ref = torch.optim.Muon(theirs, lr=0.02, weight_decay=0.1, adjust_lr_fn=adjust_lr)
    for k in range(1, 21):
        for a, b, g in zip(ours, theirs, grads_for(ours, k)):
            a.grad, b.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
    for a, b in zip(ours, theirs):
        # bf16 Newton-Schulz: each update is within a few bf16 ulps of torch's; 20 steps of
        # lr 0.02 walk at most ~20 * 0.02 * 2**-7.
        torch.testing.assert_close(a, b, rtol=0, atol=20 * 0.02 * 2**-7)


def test_grad_is_not_modified_and_conv_is_one_matrix():
    (conv,) = randn_params([(6, 4, 3, 3)], torch.float64)
    flat = conv.detach().reshape(6, -1).clone().requires_grad_()
    g = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    conv.grad, flat.grad = g.clone(), g.reshape(6, -1).clone()
    softsign.Muon([conv]).step()
    softsign.Muon([flat]).step()
    assert torch.equal(conv.grad, g)
    torch.testing.assert_close(conv.detach().reshape(6, -1), flat.detach(), rtol=0, atol=1e-14)


# ---- optimizer contract ----------------------------------------------------------------


class TinyLM(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 8)
        self.block = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 8))
        self.conv = nn.Conv1d(8, 8, 3, padding=1)
        self.norm = nn.LayerNorm(8)
        self.lm_head = nn.Linear(8, 11, bias=False)

    def forward(self, x):
        h = self.embed(x)
        h = h + self.conv(h.transpose(1, 2)).transpose(1, 2)
        return self.lm_head(self.norm(self.block(h)))


def test_muon_param_groups_routes_hidden_matrices_only():
    model = TinyLM()
    muon, other = softsign.muon_param_groups(model)
    assert muon["use_muon"] and not other["use_muon"]
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in muon["params"]) == [
        "block.0.weight",
        "block.2.weight",
        "conv.weight",
    ]
    assert "embed.weight" in {names[id(p)] for p in other["params"]}
    assert "lm_head.weight" in {names[id(p)] for p in other["params"]}


def test_plain_iterable_routes_by_dim_with_a_warning():
    model = TinyLM()
    with pytest.warns(UserWarning, match="muon_param_groups"):
        opt = softsign.SoftMuon(model.parameters(), total_steps=100)
    muon, other = opt.param_groups
    assert all(p.ndim >= 2 for p in muon["params"]) and all(p.ndim < 2 for p in other["params"])
    assert other["lr"] == 3e-4 and other["betas"] == (0.9, 0.95) and other["eps"] == 1e-10


def test_group_without_grads_at_the_fit_step_fits_later():
    params = matrices()
    opt = softsign.SoftMuon(params, sign_steps=2, transition_steps=4)
    train([(opt, params)], 2)
    opt.zero_grad(set_to_none=True)
    opt.step()  # k = 3 = S + 1, no gradients: nothing to fit or update
    assert opt.temperature(0) is None
    train([(opt, params)], 1, start=4)
    assert opt.temperature(0) is not None


def test_bad_params_and_grads():
    with pytest.raises(ValueError, match="use_muon=True needs matrices"):
        softsign.Muon([dict(params=[torch.zeros(3, requires_grad=True)], use_muon=True)])
    with pytest.raises(ValueError, match="complex"):
        softsign.Muon([torch.zeros(3, 3, dtype=torch.complex64, requires_grad=True)])
    p = torch.zeros(4, 4, requires_grad=True)
    opt = softsign.Muon([p])
    p.grad = torch.eye(4).to_sparse()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    assert torch.equal(p, torch.zeros(4, 4))


# ---- ops ---------------------------------------------------------------------------------


def step_kwargs(**over):
    """Keyword arguments of torch.ops.softsign.muon_step_: SoftMuon's defaults (the option
    table's) with weight decay 0.1 and no temperature, then `over`."""
    defaults = OPTIONS["SoftMuon"].defaults
    names = ("lr", "momentum", "nesterov", "ns_steps", "adjust_lr", "soft_map", "soft_steps")
    return {**{n: defaults[n] for n in names}, "weight_decay": 0.1, "temperature": None, **over}


def test_muon_step_op_passes_opcheck():
    params = [t.detach() for t in matrices()]
    grads = grads_for(params, 1)
    bufs = [torch.zeros_like(p) for p in params]
    for temperature, soft_map in [(None, "newton_schulz"), (torch.tensor(30.0), "accurate")]:
        torch.library.opcheck(
            torch.ops.softsign.muon_step_.default,
            (params, grads, bufs),
            step_kwargs(temperature=temperature, soft_map=soft_map),
        )


def test_muon_step_with_nan_temperature_zeroes_the_update():
    params = [t.detach() for t in matrices()]
    before = [p.clone() for p in params]
    torch.ops.softsign.muon_step_(
        params,
        grads_for(params, 1),
        [torch.zeros_like(p) for p in params],
        **step_kwargs(weight_decay=0.0, temperature=torch.tensor(float("nan"))),
    )
    assert all(torch.equal(a, b) for a, b in zip(params, before))


def test_muon_step_with_found_inf_zero_is_the_plain_step():
    a = [t.detach() for t in matrices()]
    b = [p.clone() for p in a]
    bufs_a = [torch.randn_like(p) for p in a]
    bufs_b = [x.clone() for x in bufs_a]
    kw = step_kwargs(temperature=torch.tensor(30.0, dtype=torch.float64), soft_map="accurate")
    gs = grads_for(a, 1)
    torch.ops.softsign.muon_step_(a, gs, bufs_a, **kw)
    torch.ops.softsign.muon_step_(b, gs, bufs_b, **kw, found_inf=torch.tensor(0.0))
    assert all(torch.equal(x, y) for x, y in zip(a + bufs_a, b + bufs_b))


def test_muon_step_rejects_mixed_shapes_and_devices():
    p = torch.zeros(4, 4)
    with pytest.raises(RuntimeError, match="shape"):
        torch.ops.softsign.muon_step_(
            [p], [torch.zeros(4, 5)], [torch.zeros(4, 4)], **step_kwargs()
        )


# ---- the spectral maps against float64 SVD -------------------------------------------------


def spectrum_matrix(m, n, decades=3.0, rank=None, seed=0):
    gen = torch.Generator().manual_seed(seed)
    k = min(m, n)
    u, _ = torch.linalg.qr(torch.randn(m, k, generator=gen, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))
    s = torch.logspace(0, -decades, k, dtype=torch.float64)
    if rank is not None:
        s[rank:] = 0
    return (u * s) @ v.T


MATRICES = {
    "square": lambda: spectrum_matrix(96, 96, seed=1),
    "wide": lambda: spectrum_matrix(48, 160, seed=2),
    "tall": lambda: spectrum_matrix(160, 48, seed=3),
    "rank_deficient": lambda: spectrum_matrix(64, 128, rank=20, seed=4),
    "gaussian": lambda: torch.randn(80, 80, generator=torch.Generator().manual_seed(5)).double(),
    "zero": lambda: torch.zeros(40, 56, dtype=torch.float64),
}


@pytest.mark.parametrize("kind", sorted(MATRICES))
def test_accurate_soft_map_within_spec_bound(kind):
    from softsign.reference.spectral import phi_tau

    base = MATRICES[kind]()
    for scale in (1e-3, 1.0):
        M = base * scale
        for tau in (1.0, 30.0, 1e3, 1e5, 1e9):
            want = phi_tau(M, tau)
            got = softsign.functional.soft_spectral_map(M.float(), tau, "accurate")
            assert got.dtype == torch.float32 and torch.isfinite(got).all()
            err = (got.double() - want).norm() / max(want.norm().item(), 1e-300)
            assert err <= 1e-2, (kind, scale, tau, err.item())


def test_newton_schulz_maps_equal_the_float64_reference_iterations():
    from softsign.reference.spectral import newton_schulz5, soft_newton_schulz

    for kind in ("square", "wide", "tall", "rank_deficient", "zero"):
        M = MATRICES[kind]()
        got = softsign.functional.newton_schulz5(M)
        torch.testing.assert_close(got, newton_schulz5(M), rtol=0, atol=1e-12)
        for tau in (1.0, 1e3, 1e9):
            got = softsign.functional.soft_spectral_map(M, tau, "newton_schulz")
            torch.testing.assert_close(got, soft_newton_schulz(M, tau), rtol=0, atol=1e-10)
        # In bf16 it is the public code op for op: the reference emulation agrees exactly.
        got = softsign.functional.soft_spectral_map(M.float(), 1e3, "newton_schulz")
        want = soft_newton_schulz(M, 1e3, dtype=torch.bfloat16)
        assert got.dtype == torch.bfloat16 and torch.equal(got, want)


def test_no_jump_at_the_start_of_the_transition():
    # At tau = 1e9 the accurate map is the polar factor: its norm stays within NS5's spread.
    from softsign.reference.spectral import polar

    for kind in ("square", "wide", "tall"):
        M = MATRICES[kind]()
        ref = polar(M).norm()
        ns = softsign.functional.newton_schulz5(M.float()).double().norm() / ref
        soft = softsign.functional.soft_spectral_map(M.float(), 1e9, "accurate").double().norm()
        assert 0.7 < ns < 1.2
        assert abs(soft / ref - 1) < 1e-2 < abs(ns - 1)


def test_singular_values_match_svd():
    tensors = [MATRICES["tall"](), torch.randn(7).double(), torch.randn(4, 3, 2, 2).double()]
    got = softsign.functional.singular_values([t.float() for t in tensors])
    for t, s in zip(tensors, got):
        view = t.reshape(1, -1) if t.dim() == 1 else t.reshape(t.shape[0], -1)
        want = torch.linalg.svdvals(view)
        torch.testing.assert_close(
            s.double().sort().values, want.sort().values, rtol=0, atol=1e-4 * want.max().item()
        )


def test_small_singular_values_are_resolved():
    """Singular values down to 1e-6 sigma_max come out to 1e-9 sigma_max: the Gram
    eigenproblem is solved in float64 (in float32 everything below ~3e-4 sigma_max is noise,
    which differed with the batch a matrix was solved in)."""
    gen = torch.Generator().manual_seed(3)
    U, _ = torch.linalg.qr(torch.randn(12, 5, dtype=torch.float64, generator=gen))
    V, _ = torch.linalg.qr(torch.randn(9, 5, dtype=torch.float64, generator=gen))
    want = torch.tensor([1.0, 1e-2, 1e-4, 1e-5, 1e-6], dtype=torch.float64)
    M = (U * want) @ V.T
    M32 = M.float()
    want = torch.linalg.svdvals(M32.double())  # of the float32 matrix actually passed
    for batch in ([M32], [M32, M32.flip(0), M32]):
        got = softsign.functional.singular_values(batch)[0].double().sort(descending=True).values
        # float64 eigenvalues err by ~1e-16 sigma_max^2, so sigma by ~1e-16 / (2 sigma).
        torch.testing.assert_close(got[:5], want[:5], rtol=1e-5, atol=1e-9)
        assert (got[5:] <= 1e-7).all()


# ---- audit fixes: group input, failed fits read back late, bf16 decay, routing ------------


def test_a_generator_in_a_group_dict_keeps_its_params():
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    opt = softsign.Muon([dict(params=model.parameters(), use_muon=True)])
    assert len(opt.param_groups[0]["params"]) == 2
    opt.add_param_group(dict(params=(p for p in [nn.Parameter(torch.ones(3))]), use_muon=False))
    assert len(opt.param_groups[1]["params"]) == 1


def test_a_mixed_group_without_use_muon_is_refused():
    model = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="use_muon"):
        softsign.Muon([dict(params=list(model.parameters()), lr=0.02)])
    opt = softsign.Muon([model.weight])
    with pytest.raises(ValueError, match="use_muon"):
        opt.add_param_group(dict(params=[nn.Parameter(torch.ones(3, 3)), model.bias]))
    assert len(opt.param_groups) == 1


def test_named_parameters_are_routed_and_keep_their_names():
    torch.manual_seed(0)
    a, b = nn.Linear(6, 5), nn.Linear(6, 5)
    b.load_state_dict(a.state_dict())
    with pytest.warns(UserWarning, match="muon_param_groups"):
        named = softsign.SoftMuon(a.named_parameters(), total_steps=6, alpha_sign=0.5)
    with pytest.warns(UserWarning, match="muon_param_groups"):
        plain = softsign.SoftMuon(b.parameters(), total_steps=6, alpha_sign=0.5)
    assert [g["param_names"] for g in named.param_groups] == [["weight"], ["bias"]]
    for k in range(6):
        x = torch.randn(3, 6, generator=torch.Generator().manual_seed(k))
        for m, opt in ((a, named), (b, plain)):
            opt.zero_grad()
            m(x).square().sum().backward()
            opt.step()
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)


def test_an_empty_group_steps_through_every_phase():
    (w,) = randn_params([(6, 4)])
    opt = softsign.SoftMuon(
        [dict(params=[w], use_muon=True), dict(params=[], use_muon=True)],
        sign_steps=2,
        transition_steps=3,
    )
    train([(opt, [w])], 6)
    assert opt.temperature(0) is not None and opt.temperature(1) is None


def test_muon_step_with_found_inf_leaves_params_and_buffers():
    # A failed fit's gradients hold NaN: not even the momentum may take them.
    params = [t.detach() for t in matrices()]
    bufs = [torch.randn_like(p) for p in params]
    before = [p.clone() for p in params], [b.clone() for b in bufs]
    for nesterov in (True, False):
        torch.ops.softsign.muon_step_(
            params,
            [torch.full_like(p, float("nan")) for p in params],
            bufs,
            **step_kwargs(
                nesterov=nesterov,
                temperature=torch.tensor(float("nan"), dtype=torch.float64),
                soft_map="accurate",
                found_inf=torch.tensor(1.0),
            ),
        )
        assert all(torch.equal(a, b) for a, b in zip(params, before[0]))
        assert all(torch.equal(a, b) for a, b in zip(bufs, before[1]))


def test_a_failed_fit_read_back_late_changes_nothing_and_the_run_recovers(monkeypatch):
    """On a GPU the fit's status arrives a step late (an event query). Simulated on the CPU:
    the first query of every fit answers "not yet"."""
    from softsign import _fit

    ready = _fit.PendingFit.ready
    asked = set()

    def first_not_ready(self):
        if id(self) not in asked:
            asked.add(id(self))
            return False
        return ready(self)

    monkeypatch.setattr(_fit.PendingFit, "ready", first_not_ready)
    params = matrices()
    opt = softsign.SoftMuon(params, sign_steps=2, transition_steps=4, weight_decay=0.1)
    train([(opt, params)], 2)
    before = [p.detach().clone() for p in params]
    bufs = [opt.state[p]["momentum_buffer"].clone() for p in params]
    for p in params:
        p.grad = torch.full_like(p, float("nan"))
    opt.step()  # the fit step: its status is not read yet, and nothing may change
    assert all(torch.equal(p.detach(), b) for p, b in zip(params, before))
    assert all(torch.equal(opt.state[p]["momentum_buffer"], b) for p, b in zip(params, bufs))
    with pytest.raises(ValueError, match="non-finite"):
        train([(opt, params)], 1, start=4)
    train([(opt, params)], 4, start=4)  # the user skips the bad batch: a new fit, finite steps
    assert opt.temperature() is not None
    assert all(torch.isfinite(p).all() for p in params)


@pytest.mark.filterwarnings("ignore:.*zero MAD")
def test_bf16_weight_decay_rounds_once_in_every_phase():
    """p <- p (1 - lr wd) is computed in float32 and rounded once to bf16, as
    torch.optim.Muon's p.mul_(1 - lr wd) does, in the sign phase and the transition."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(64, 32, generator=gen).to(torch.bfloat16).requires_grad_()
    lr, wd = 0.05, 0.05  # lr * wd = 0.0025: a bf16 factor would be 0.99609
    opt = softsign.SoftMuon([w], lr=lr, weight_decay=wd, sign_steps=2, transition_steps=3)
    for k in range(5):  # zero gradients: the update is 0, only the decay moves w
        before = w.detach().double()
        w.grad = torch.zeros_like(w)
        opt.step()
        exact = (before * (1 - lr * wd)).to(torch.bfloat16).double()
        diff = (w.detach().double() - exact).abs()
        ulp = exact.abs() * 2**-7
        assert (diff <= ulp).all(), k
        assert (diff > 0).float().mean() < 0.02, k  # double rounding only, rarely


def test_muon_param_groups_finds_heads_tables_and_raw_matrices():
    class Classifier(nn.Module):  # the layout of torchvision's ResNet, VGG and ViT heads
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3)
            self.class_token = nn.Parameter(torch.zeros(1, 1, 8))
            self.pos_embedding = nn.Parameter(torch.zeros(5, 8))
            self.mix = nn.Parameter(torch.zeros(8, 8))  # a hidden matrix of its own
            self.scale = nn.Parameter(torch.ones(1, 8))
            self.features = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
            self.norm = nn.LayerNorm(8)
            self.fc = nn.Linear(8, 10)  # the output head: the last layer with parameters

    model = Classifier()
    muon, other = softsign.muon_param_groups(model)
    names = {id(p): n for n, p in model.named_parameters()}
    assert sorted(names[id(p)] for p in muon["params"]) == [
        "conv.weight",
        "features.0.weight",
        "features.2.weight",
        "mix",
    ]
    assert {"class_token", "pos_embedding", "scale", "fc.weight"} <= {
        names[id(p)] for p in other["params"]
    }
    # No head when the model ends in a norm, as a bare nn.Transformer does.
    ends_in_norm = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.LayerNorm(4))
    muon, _ = softsign.muon_param_groups(ends_in_norm)
    assert len(muon["params"]) == 2


# ---- friendlier misuse -------------------------------------------------------------------


@pytest.mark.parametrize("not_a_module", ["list", "generator", "dict"])
def test_muon_param_groups_wants_a_module(not_a_module):
    model = TinyLM()
    arg = {
        "list": list(model.parameters()),
        "generator": model.parameters(),
        "dict": dict(model.named_parameters()),
    }[not_a_module]
    with pytest.raises(TypeError, match=r"expects an nn\.Module"):
        softsign.muon_param_groups(arg)


def test_a_transition_shorter_than_two_steps_warns():
    with pytest.warns(UserWarning, match=r"total_steps.*at least 16"):
        softsign.SoftMuon(softsign.muon_param_groups(TinyLM()), total_steps=10)
    opt = softsign.SoftMuon(softsign.muon_param_groups(TinyLM()), total_steps=100)
    with pytest.warns(UserWarning, match="transition_steps >= 2"):
        opt.add_param_group(
            dict(params=[nn.Parameter(torch.ones(3, 3))], use_muon=True, transition_steps=1)
        )
    # AdamW groups and Muon have no transition: nothing to warn about.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        softsign.Muon(softsign.muon_param_groups(TinyLM()))
        opt.add_param_group(dict(params=[nn.Parameter(torch.ones(3))], use_muon=False))


def _repr_groups(opt) -> list[dict]:
    """{key: text} of each group of repr(opt) (torch.optim.Optimizer's layout)."""
    groups = []
    for line in repr(opt).splitlines()[1:-1]:
        if line.startswith("Parameter Group"):
            groups.append({})
        elif line.strip():
            key, _, value = line.strip().partition(": ")
            groups[-1][key] = value
    return groups


def test_repr_shows_each_group_the_options_it_uses():
    model = TinyLM()
    opt = softsign.SoftMuon(softsign.muon_param_groups(model), total_steps=100)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3)  # adds initial_lr everywhere
    muon, adamw = _repr_groups(opt)
    assert repr(opt).startswith("SoftMuon (\nParameter Group 0\n") and repr(opt).endswith("\n)")
    assert sorted(adamw) == ["betas", "eps", "initial_lr", "lr", "use_muon", "weight_decay"]
    assert adamw["eps"] == "1e-10" and adamw["lr"] == "0.0003" and adamw["use_muon"] == "False"
    assert not any(key.startswith("adamw_") for key in muon)
    assert {"momentum", "ns_steps", "soft_map", "total_steps", "step", "fit"} <= set(muon)
    assert muon["eps"] == "0.0001" and muon["lr"] == "0.02"
    # Only the text is filtered: the groups and the state dict keep every key.
    assert "adamw_lr" in opt.param_groups[0] and "momentum" in opt.param_groups[1]
    sd = opt.state_dict()["param_groups"]
    assert set(sd[1]) == set(opt.param_groups[1]) - {"params"} | {"params"}
    fresh = softsign.SoftMuon(softsign.muon_param_groups(model), total_steps=100)
    fresh.load_state_dict(opt.state_dict())
    assert repr(fresh) == repr(opt)
    del sched

    plain = softsign.Muon(softsign.muon_param_groups(model))
    muon, adamw = _repr_groups(plain)
    assert repr(plain).startswith("Muon (")
    assert "fit" not in muon and "soft_map" not in muon and "adjust_lr" in muon
    assert sorted(adamw) == ["betas", "eps", "lr", "use_muon", "weight_decay"]


# ---- matrices stored as (in, out): transposed=True ------------------------------------------

# nn.Linear's (out, in) weights: tall, wide and square. Their transposes, stored as
# transformers' Conv1D stores its weight, must step as they do.
LINEAR_SHAPES = [(16, 8), (8, 24), (12, 12)]
TRANSPOSED_RUN = dict(sign_steps=3, transition_steps=4, weight_decay=0.1)  # 9 steps: all phases


def _linear_and_transposed(dtype, flag=True, **options):
    """(optimizer, weights) over nn.Linear-shaped weights, and over the same weights stored
    transposed in a group with transposed=flag, each with a vector in an AdamW group."""
    weights = randn_params(LINEAR_SHAPES + [(5,)], dtype)
    stored = [w.detach().T.contiguous().requires_grad_() for w in weights[:-1]]
    stored.append(weights[-1].detach().clone().requires_grad_())
    runs = []
    for params, transposed in ((weights, False), (stored, flag)):
        groups = [
            dict(params=params[:-1], use_muon=True, transposed=transposed),
            dict(params=params[-1:], use_muon=False),
        ]
        runs.append((softsign.SoftMuon(groups, **options), params))
    return runs


def _step_both(runs, k):
    """Step k with the same gradients, transposed for the stored weights."""
    grads = grads_for(runs[0][1], k)
    for (opt, params), flip in zip(runs, (False, True)):
        for p, g in zip(params, grads):
            p.grad = (g.T.contiguous() if flip and g.ndim == 2 else g.clone()).to(p.dtype)
        opt.step()


@pytest.mark.parametrize("soft_map", ["newton_schulz", "accurate"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_transposed_group_steps_as_the_linear_weights(dtype, soft_map):
    runs = _linear_and_transposed(dtype, soft_map=soft_map, **TRANSPOSED_RUN)
    (linear, weights), (conv1d, stored) = runs
    # float64 runs every op in float64; float32 orthogonalizes in bfloat16, where the Gram
    # matrix of a square X and of X^T round differently (a few bf16 ulps of lr per step).
    atol = 1e-13 if dtype == torch.float64 else 0.05 * 0.02  # lr: the default 0.02
    for k in range(1, 10):
        _step_both(runs, k)
        assert linear.temperature() == conv1d.temperature(), k
        for w, s in zip(weights[:-1], stored[:-1]):
            torch.testing.assert_close(
                s.T, w, rtol=0, atol=k * atol, msg=lambda m, k=k: f"step {k}: {m}"
            )
        assert torch.equal(weights[-1], stored[-1])
    assert linear.temperature() is not None  # the run went through the transition
    # Without transposed=True the (in, out) weights take the scale of their own shape: the
    # wide (8, 24), stored (24, 8), would step sqrt(3) times too far.
    runs = _linear_and_transposed(dtype, flag=False, **TRANSPOSED_RUN)
    _step_both(runs, 1)
    (_, weights), (_, stored) = runs
    assert not torch.allclose(stored[1].T, weights[1], rtol=0, atol=1e-3)


def test_a_transposed_group_matches_the_reference():
    from softsign.reference import SoftMuonReference

    params = randn_params(LINEAR_SHAPES, torch.float64)
    groups = [dict(params=params, use_muon=True, transposed=True)]
    opt = softsign.SoftMuon(groups, **TRANSPOSED_RUN)
    ref = SoftMuonReference(groups, **TRANSPOSED_RUN)
    for k in range(1, 10):
        grads = grads_for(params, k)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        ref.step(grads)
        for p, q in zip(params, ref.params):
            # The reference's float64 Newton-Schulz; the soft map agrees to 1e-6 (the fit's
            # statistic carries ~1e-8 relative error), as in the parity contract.
            torch.testing.assert_close(p.detach(), q, rtol=0, atol=1e-10 if k <= 3 else 1e-6)


@pytest.mark.parametrize("soft_map", ["newton_schulz", "accurate"])
def test_cpp_transposed_group_steps_bit_for_bit_as_python(soft_map):
    from softsign import _C

    options = dict(TRANSPOSED_RUN, soft_map=soft_map)
    params = randn_params([(8, 16), (24, 8), (24, 8), (12, 12)])
    twin = clone_params(params)
    opt = softsign.SoftMuon([dict(params=params, use_muon=True, transposed=True)], **options)
    cpp = _C.SoftMuon([(twin, True)], transposed=True, **options)
    for k in range(1, 10):
        train([(opt, params), (cpp, twin)], 1, start=k)
        assert all(torch.equal(a, b) for a, b in zip(params, twin)), k
        assert opt.temperature() == cpp.temperature(), k


def test_transposed_needs_two_dimensional_matrices():
    conv = torch.zeros(6, 4, 3, 3, requires_grad=True)
    with pytest.raises(ValueError, match="Invalid transposed"):
        softsign.Muon([dict(params=[conv], use_muon=True, transposed=True)])
    opt = softsign.SoftMuon([torch.zeros(4, 3, requires_grad=True)], total_steps=100)
    with pytest.raises(ValueError, match="Invalid transposed"):
        opt.add_param_group(dict(params=[conv], use_muon=True, transposed=True))
    assert len(opt.param_groups) == 1
    with pytest.raises(ValueError, match="Invalid transposed"):
        opt.add_param_group(dict(params=[torch.zeros(4, 3)], use_muon=True, transposed=1))
    # An AdamW group ignores it.
    vector = torch.zeros(3, requires_grad=True)
    softsign.Muon([dict(params=[vector], use_muon=False)], transposed=True)
    from softsign import _C

    with pytest.raises(RuntimeError, match="Invalid transposed"):
        _C.Muon([([conv], True)], transposed=True)


# ---- a tensor lr -----------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (1,)])
@pytest.mark.parametrize("name", ["Muon", "SoftMuon"])
def test_a_device_lr_tensor_is_never_read_on_the_host(monkeypatch, request, name, shape):
    """A CUDA lr (matrix and AdamW groups) steps without a host sync, in every phase, with
    transposed groups too; checked on fake CUDA tensors (test_sync_free.py)."""
    sync_free = pytest.importorskip("test_sync_free")
    if not torch.backends.cuda.is_built():
        pytest.skip("fake CUDA tensors need a CUDA build of torch")
    # torch has no fake kernel for its fused AdamW with a tensor lr (the AdamW groups' op):
    # an in-place op with no outputs, so a Meta kernel that does nothing serves, for this
    # test only.
    meta = torch.library.Library("aten", "IMPL")
    meta.impl("_fused_adamw_.tensor_lr", lambda *args, **kwargs: None, "Meta")
    request.addfinalizer(meta._destroy)
    schedule = dict(sign_steps=2, transition_steps=3) if name == "SoftMuon" else {}
    with sync_free.fake_cuda(monkeypatch, None) as recorder:
        params = sync_free.vectors_and_matrices()
        groups = sync_free.muon_groups(params)
        square = [p for p in groups[0]["params"] if p.dim() == 2]
        groups[0]["params"] = [p for p in groups[0]["params"] if p.dim() != 2]
        groups.append(dict(params=square, use_muon=True, transposed=True))
        lr = torch.full(shape, 0.02, device="cuda")
        adamw_lr = torch.full(shape, 1e-3, device="cuda")
        opt = getattr(softsign, name)(
            groups, lr=lr, adamw_lr=adamw_lr, weight_decay=0.01, **schedule
        )
        sync_free.run_steps(recorder, opt, params, 7)


@pytest.mark.parametrize("transposed", [False, True])
def test_a_device_lr_path_steps_as_the_float_lr(transposed):
    """The path a device lr takes (decay and lr * u formed as tensors, then muon_apply_ at
    lr 1), run here with a CPU tensor routed to it: within rounding of the float path, in
    every phase, and not at all after a failed fit."""
    from softsign.optim import soft_muon

    lr = torch.tensor(0.02, dtype=torch.float64)
    params = randn_params([(16, 8), (8, 24)], torch.float64)
    twin = clone_params(params)
    options = dict(sign_steps=2, transition_steps=3, weight_decay=0.1)
    groups = lambda ps, lr: [dict(params=ps, use_muon=True, transposed=transposed, lr=lr)]
    opt = softsign.SoftMuon(groups(params, float(lr)), **options)
    tensor_lr = softsign.SoftMuon(groups(twin, lr), **options)
    real = soft_muon._device_lr
    try:
        soft_muon._device_lr = lambda x: isinstance(x, torch.Tensor)
        train([(opt, params), (tensor_lr, twin)], 7)
    finally:
        soft_muon._device_lr = real
    for a, b in zip(params, twin):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-15)


# ---- warm starts: train with Muon, finish with SoftMuon ---------------------------------------

# S = 9, T = 3: the transition after the warm start at step 5.
WARM_SCHEDULE = dict(total_steps=12, alpha_sign=0.75)


def _copy_into(params, values):
    with torch.no_grad():
        for p, q in zip(params, values):
            p.copy_(q)


@pytest.mark.parametrize("source", ["Muon", "SoftMuon"])
def test_warm_start_from_muon_steps_as_one_soft_muon_run(source):
    """Muon for 5 steps, its checkpoint loaded into a fresh Muon, SoftMuon warm-started from
    it: bit for bit an uninterrupted SoftMuon run, through the sign phase, the fit at step
    S + 1 = 10 and the transition (SoftMuon's sign phase is Muon)."""
    straight = MUON_PARAMS()
    whole = softsign.SoftMuon(straight, **MUON_OPTIONS, **WARM_SCHEDULE)
    train([(whole, flat_params(straight))], 12)

    a = MUON_PARAMS()
    plain = dict(MUON_OPTIONS, total_steps=100) if source == "SoftMuon" else MUON_OPTIONS
    first = getattr(softsign, source)(a, **plain)
    train([(first, flat_params(a))], 5)
    b = MUON_PARAMS()
    checkpoint = getattr(softsign, source)(b, **plain)
    checkpoint.load_state_dict(first.state_dict())
    _copy_into(flat_params(b), flat_params(a))
    opt = softsign.SoftMuon(b, **MUON_OPTIONS, **WARM_SCHEDULE)
    opt.warm_start_from(checkpoint)
    assert [g["step"] for g in opt.param_groups] == [5, 5]

    def phase(k):
        assert (opt.temperature() is None) == (k <= 9), k

    train([(opt, flat_params(b))], 7, start=6, each=phase)
    assert all(torch.equal(p, q) for p, q in zip(flat_params(b), flat_params(straight)))
    assert opt.temperature() == whole.temperature()
    for p, q in zip(flat_params(b), flat_params(straight)):
        for key, value in whole.state[q].items():
            assert torch.equal(opt.state[p][key], value), key


def _torch_recipe(params, **adamw):
    """torch.optim.Muon on the 2-D matrices, torch.optim.AdamW on the rest, with the
    options of MUON_OPTIONS (torch's recipe)."""
    matrices = [p for p in params if p.ndim == 2]
    others = [p for p in params if p.ndim != 2]
    muon = torch.optim.Muon(matrices, lr=0.02, weight_decay=0.05)
    adamw = torch.optim.AdamW(
        others, **dict(dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-10, weight_decay=0.01), **adamw)
    )
    groups = [dict(params=matrices, use_muon=True), dict(params=others, use_muon=False)]
    return muon, adamw, groups


def test_warm_start_from_torch_muon_and_adamw():
    params = randn_params([(16, 8), (16, 8), (8, 24), (10,), (15,)])
    muon, adamw, groups = _torch_recipe(params)
    train([(_Both(muon, adamw), params)], 3)
    opt = softsign.SoftMuon(groups, **MUON_OPTIONS, **WARM_SCHEDULE)
    with pytest.raises(ValueError, match="step="):  # torch's optimizers count no steps
        opt.warm_start_from(muon, adamw)
    opt.warm_start_from(muon, adamw, step=3)
    assert [g["step"] for g in opt.param_groups] == [3, 3]
    for p in muon.param_groups[0]["params"]:
        assert torch.equal(opt.state[p]["momentum_buffer"], muon.state[p]["momentum_buffer"])
        assert opt.state[p]["momentum_buffer"] is not muon.state[p]["momentum_buffer"]
    for p in adamw.param_groups[0]["params"]:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(opt.state[p][key], adamw.state[p][key]), key
        assert opt.state[p]["step"].dtype == torch.float32

    # It goes on as torch's pair would, until its transition: the same update rule, with
    # Newton-Schulz in bfloat16 batched here and one matrix at a time there (each update
    # within ~2 bf16 ulps of lr * scale, the scale sqrt(2) at most here); AdamW to float32
    # rounding.
    twin = clone_params(params)
    twin_muon, twin_adamw, _ = _torch_recipe(twin)
    twin_muon.load_state_dict(muon.state_dict())
    twin_adamw.load_state_dict(adamw.state_dict())
    train([(opt, params), (_Both(twin_muon, twin_adamw), twin)], 6, start=4)
    assert opt.temperature() is None
    for a, b in zip(params, twin):
        atol = 6 * 0.02 * 2**0.5 * 2**-6 if a.ndim == 2 else 1e-6
        torch.testing.assert_close(a, b, rtol=0, atol=atol)
    train([(opt, params)], 1, start=10)  # S + 1: the transition starts on time
    assert opt.temperature() is not None


class _Both:
    """Two torch optimizers stepped as one (train() steps one optimizer per run)."""

    def __init__(self, *optimizers):
        self.optimizers = optimizers

    def step(self):
        for o in self.optimizers:
            o.step()


def test_warm_start_warns_where_the_update_differs_but_the_state_carries():
    params = randn_params([(16, 8), (6,)])
    matrices, others = params[:1], params[1:]
    muon = torch.optim.Muon(
        matrices, lr=0.02, adjust_lr_fn="match_rms_adamw", ns_coefficients=(3.0, -3.2, 1.2)
    )
    adamw = torch.optim.AdamW(others, lr=1e-3, betas=(0.9, 0.95))
    train([(_Both(muon, adamw), params)], 2)
    opt = softsign.Muon([dict(params=matrices, use_muon=True), dict(params=others, use_muon=False)])
    with pytest.warns(UserWarning) as record:
        opt.warm_start_from(muon, adamw, step=2)
    (message,) = [str(w.message) for w in record]
    assert "adjust_lr: 'match_rms_adamw' in Muon, 'original' here" in message
    assert "ns_coefficients" in message and "its own" in message
    assert torch.equal(
        opt.state[matrices[0]]["momentum_buffer"], muon.state[matrices[0]]["momentum_buffer"]
    )


def _refusals():
    """(source factory, target groups' overrides, message) of warm starts that must fail."""
    return [
        # A different EMA momentum: the buffer would mean another average.
        (
            lambda m, o: [
                torch.optim.Muon(m, momentum=0.9),
                torch.optim.AdamW(o, betas=(0.9, 0.95)),
            ],
            {},
            r"momentum.*0\.95.*0\.9.*do not mean the same thing",
        ),
        (
            lambda m, o: [
                torch.optim.Muon(m, nesterov=False),
                torch.optim.AdamW(o, betas=(0.9, 0.95)),
            ],
            {},
            "nesterov",
        ),
        # AdamW's moments with other betas, or an AMSGrad state this optimizer has no slot for.
        (lambda m, o: [torch.optim.Muon(m), torch.optim.AdamW(o)], {}, "betas"),
        (
            lambda m, o: [
                torch.optim.Muon(m),
                torch.optim.AdamW(o, betas=(0.9, 0.95), amsgrad=True),
            ],
            {},
            "amsgrad",
        ),
        # A matrix that AdamW stepped, in a matrix group here.
        (
            lambda m, o: [torch.optim.AdamW(m + o, betas=(0.9, 0.95))],
            {},
            "AdamW parameter there: give it a use_muon=False group here",
        ),
    ]


@pytest.mark.parametrize("case", range(len(_refusals())))
def test_warm_start_refuses_a_state_that_means_something_else(case):
    make, _, match = _refusals()[case]
    params = randn_params([(16, 8), (6,)])
    matrices, others = params[:1], params[1:]
    sources = make(matrices, others)
    train([(_Both(*sources), params)], 2)
    opt = softsign.SoftMuon(
        [dict(params=matrices, use_muon=True), dict(params=others, use_muon=False)],
        **WARM_SCHEDULE,
    )
    train([(opt, params)], 1)
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=match):
        opt.warm_start_from(*sources, step=2)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for i, state in before["state"].items():
        assert all(torch.equal(v, after["state"][i][k]) for k, v in state.items())


def test_warm_start_needs_every_param_and_starts_unstepped_ones_fresh():
    a, b = randn_params([(8, 4)]), randn_params([(6, 3)], seed=1)
    muon = softsign.Muon(a)
    with pytest.raises(ValueError, match="in none of the given optimizers"):
        softsign.SoftMuon(a + b, **WARM_SCHEDULE).warm_start_from(muon)
    source = softsign.Muon(a + b)
    train([(source, a)], 2)  # b never gets a gradient there
    opt = softsign.SoftMuon(a + b, **WARM_SCHEDULE)
    with pytest.warns(UserWarning, match="1 parameter"):
        opt.warm_start_from(source)
    assert "momentum_buffer" in opt.state[a[0]] and "momentum_buffer" not in opt.state[b[0]]


@pytest.mark.parametrize("source", ["Muon", "torch"])
def test_loading_a_muon_state_into_soft_muon_names_warm_start_from(source):
    params = randn_params([(8, 4)])
    if source == "Muon":
        first = softsign.Muon(params)
    else:
        first = torch.optim.Muon(params)
    train([(first, params)], 2)
    opt = softsign.SoftMuon(params, **WARM_SCHEDULE)
    with pytest.raises(ValueError, match="warm_start_from"):
        opt.load_state_dict(first.state_dict())


@pytest.mark.parametrize("source", ["torch.optim.Muon", "torch.optim.AdamW"])
def test_loading_another_optimizers_state_into_muon_names_warm_start_from(source):
    """torch's groups have no use_muon: taken as they are, they would become matrix groups
    with torch's options; the state is refused and the optimizer left as it was."""
    params = randn_params([(8, 4)])
    first = torch.optim.Muon(params) if source.endswith("Muon") else torch.optim.AdamW(params)
    train([(first, params)], 2)
    opt = softsign.Muon(params)
    before = copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match="warm_start_from"):
        opt.load_state_dict(first.state_dict())
    assert opt.state_dict() == before


def test_a_load_pre_hook_may_adapt_a_foreign_state_first():
    """torch runs load_state_dict's pre hooks on the dict as given: one that marks
    torch.optim.Muon's groups use_muon=True makes its state loadable into Muon."""
    params = randn_params([(8, 4)])
    first = torch.optim.Muon(params, lr=0.02)
    train([(first, params)], 2)
    opt = softsign.Muon(params)

    def adapt(optimizer, state_dict):
        groups = [dict(g, use_muon=True) for g in state_dict["param_groups"]]
        return dict(state_dict, param_groups=groups)

    opt.register_load_state_dict_pre_hook(adapt)
    opt.load_state_dict(first.state_dict())
    assert opt.param_groups[0]["use_muon"] is True
    buf = first.state[params[0]]["momentum_buffer"]
    assert torch.equal(opt.state[params[0]]["momentum_buffer"], buf)


def test_one_cycle_lr_cycles_muons_momentum_and_leaves_adamws_betas():
    """What the README says of OneCycleLR(cycle_momentum=True): torch's scheduler writes one
    key, `momentum`, into every group; Muon's groups follow it, AdamW's keep their betas."""
    w = nn.Parameter(torch.randn(8, 4))
    b = nn.Parameter(torch.randn(4))
    groups = [dict(params=[w], use_muon=True), dict(params=[b], use_muon=False)]
    opt = softsign.Muon(groups)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[0.02, 3e-4], total_steps=6)
    seen = set()
    for _ in range(5):
        w.grad, b.grad = torch.randn_like(w), torch.randn_like(b)
        opt.step()
        sched.step()
        seen.add(opt.param_groups[0]["momentum"])
        assert opt.param_groups[1]["betas"] == (0.9, 0.95)
    assert 0.85 <= min(seen) < 0.86 and max(seen) <= 0.95 and len(seen) > 2
    assert torch.isfinite(w).all() and torch.isfinite(b).all()
