"""CUDA-only contracts: no host synchronization in any phase of step(), agreement of the
CUDA and CPU kernels, and the asynchronous report of a failed temperature fit. Skipped
without a GPU (conftest marks every test whose name holds 'cuda').

The second half holds the fused ops on DEVICE to the CPU ops on identical inputs, over the
matrix of the CPU-hosted CUDA kernel suite (dtypes, sizes around the vector width and the
chunk, misaligned and strided views, launch splitting, every option of the step, the
temperatures, and every pass of the radix selection), so that the first GPU run checks
all of it."""

import math

import pytest
import torch

import softsign
from softsign.functional import median_mad

from conftest import TOLERANCES
from conftest import step_kwargs as conftest_step_kwargs

ops = torch.ops.softsign

# The device held to the CPU ops below. Pointing it at "cpu" checks this file's own logic
# without a GPU (every comparison then holds trivially); conftest still skips the tests by
# their names, so run such a copy with that hook left out.
DEVICE = torch.device("cuda")


def grads(params, k):
    gen = torch.Generator().manual_seed(k)
    return [torch.randn(p.shape, generator=gen).to(p.dtype).to(p.device) for p in params]


def make(device, dtypes=(torch.float32, torch.bfloat16, torch.float16)):
    gen = torch.Generator().manual_seed(0)
    shapes = [(1,), (333,), (65536 * 3 + 7,), (48, 64)]
    return [
        torch.randn(s, generator=gen).to(dt).to(device).requires_grad_()
        for s in shapes
        for dt in dtypes
    ]


@pytest.mark.parametrize("amp", [False, True])
def test_no_host_sync_in_any_phase_cuda(amp):
    params = make("cuda")
    opt = softsign.SoftSignum(
        params, lr=1e-2, nesterov=True, weight_decay=0.1, total_steps=20, alpha_sign=0.5
    )
    all_grads = [grads(params, k) for k in range(1, 25)]
    if amp:
        opt.grad_scale = torch.tensor(1.0, device="cuda")
        opt.found_inf = torch.tensor(0.0, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for gs in all_grads:  # sign phase, fit step, transition, after it
            for p, g in zip(params, gs):
                p.grad = g
            opt.step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert opt.temperature() is not None
    assert all(torch.isfinite(p).all() for p in params)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_kernel_matches_cpu_kernel_cuda(dtype):
    cpu = make("cpu", (dtype,))
    gpu = [p.detach().cuda().requires_grad_() for p in cpu]
    kw = dict(
        lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.05, sign_steps=5, transition_steps=5
    )
    a, b = softsign.SoftSignum(cpu, **kw), softsign.SoftSignum(gpu, **kw)
    for k in range(1, 14):
        for x, y, g in zip(cpu, gpu, grads(cpu, k)):
            x.grad, y.grad = g, g.cuda()
        a.step()
        b.step()
    for x, y in zip(cpu, gpu):
        torch.testing.assert_close(y.cpu(), x, **TOLERANCES[dtype])
    assert b.temperature() == pytest.approx(a.temperature(), rel=1e-6)


def test_non_finite_fit_is_reported_at_the_next_step_cuda():
    w = torch.nn.Parameter(torch.ones(8, device="cuda"))
    opt = softsign.SoftSignum([w], momentum=0.0, sign_steps=1, transition_steps=4)
    w.grad = torch.ones(8, device="cuda")
    opt.step()
    before = w.detach().clone()
    w.grad = torch.full((8,), float("nan"), device="cuda")
    opt.step()  # the fit step: no host read, and the NaN schedule makes it a no-op
    torch.cuda.synchronize()
    assert torch.equal(w.detach(), before)
    w.grad = torch.ones(8, device="cuda")
    with pytest.raises(ValueError, match="non-finite"):
        opt.step()
    assert torch.equal(w.detach(), before)


def test_group_spanning_cpu_and_cuda_cuda():
    a = torch.nn.Parameter(torch.randn(10))
    b = torch.nn.Parameter(torch.randn(10, device="cuda"))
    opt = softsign.SoftSignum([a, b], sign_steps=1, transition_steps=3)
    for _ in range(4):
        a.grad, b.grad = torch.randn(10), torch.randn(10, device="cuda")
        opt.step()
    assert opt.temperature() is not None


@pytest.mark.parametrize("soft_map", ["newton_schulz", "accurate"])
def test_cuda_soft_muon_steps_do_not_synchronize(soft_map):
    gen = torch.Generator().manual_seed(0)
    mats = [torch.randn(s, generator=gen).cuda().requires_grad_() for s in [(64, 32), (32, 96)]]
    bias = torch.zeros(32, device="cuda", requires_grad=True)
    opt = softsign.SoftMuon(
        [dict(params=mats, use_muon=True), dict(params=[bias], use_muon=False)],
        sign_steps=2,
        transition_steps=4,
        soft_map=soft_map,
    )

    def step(k, sync_free):
        for p in mats + [bias]:
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(k)).cuda()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error" if sync_free else 0)
        try:
            opt.step()
        finally:
            torch.cuda.set_sync_debug_mode(0)

    for k in (1, 2):
        step(k, True)  # sign phase
    # The fit step computes the singular values with torch.linalg.eigvalsh, which checks
    # its solver status on the host: the one synchronization of a SoftMuon run.
    step(3, False)
    for k in range(4, 9):
        step(k, True)  # transition and after it
    assert opt.temperature() is not None
    assert all(torch.isfinite(p).all() for p in mats)


# ---- the fused ops on DEVICE against the CPU ops --------------------------------------------

BITS = {
    torch.float64: torch.int64,
    torch.float32: torch.int32,
    torch.bfloat16: torch.int16,
    torch.float16: torch.int16,
    torch.int64: torch.int64,
}
DTYPES = {
    "float32": (torch.float32,),
    "bfloat16": (torch.bfloat16,),
    "float16": (torch.float16,),
    "float64": (torch.float64,),
    "mixed": (torch.float32, torch.bfloat16, torch.float16, torch.float64),
}


def step_kwargs(**over):
    """The op's keyword arguments of conftest, at this file's learning rate of 1e-2."""
    return conftest_step_kwargs(**{"lr": 1e-2, **over})


def storage_of(t):
    """Every element of t's storage, as a flat tensor of t's dtype."""
    n = t.untyped_storage().nbytes() // t.element_size()
    return t.new_empty(0).set_(t.untyped_storage(), 0, (n,), (1,))


def twin(t):
    """t on DEVICE with its sizes, strides and storage offset, over a copy of its whole
    storage: a misaligned or strided view stays one there."""
    whole = storage_of(t).to(DEVICE, copy=True)
    return whole.as_strided(t.shape, t.stride(), t.storage_offset())


def randn(shape, dtype, layout, gen, dist="normal"):
    """Values of `shape` drawn per `dist` ("normal"; "nan": with NaN and +-inf here and
    there; "skewed": 90% zeros; "constant": all 0.75), in a layout: "dense"; "offset",
    dense one element into its storage (misaligned for the kernels' vector loads);
    "strided", every other element of the last dim (not dense: the step copies it to a
    dense stand-in and back); "transposed", dense with reversed strides."""

    def fresh(size):
        x = torch.randn(size, generator=gen, dtype=torch.float64) * 3
        if dist == "nan":
            x.view(-1)[::101] = math.nan
            x.view(-1)[50::103] = math.inf
            x.view(-1)[70::107] = -math.inf
        elif dist == "skewed":
            x *= torch.rand(size, generator=gen) < 0.1
        elif dist == "constant":
            x.fill_(0.75)
        return x.to(dtype)

    n = math.prod(shape)
    if layout == "offset":
        return fresh((n + 1,))[1:].view(shape)
    if layout == "strided":
        return fresh((*shape[:-1], 2 * shape[-1]))[..., ::2]
    if layout == "transposed":
        return fresh(shape[::-1]).permute(*reversed(range(len(shape))))
    return fresh(shape)


def assert_agree(got, want, tol, what):
    """got (from any device) against want (on the CPU): bit for bit when tol is None, else
    within tol (torch.testing.assert_close's rtol and atol). Compared on got's device."""
    got, want = got.reshape(-1), want.to(got.device).reshape(-1)
    if tol is not None:
        torch.testing.assert_close(got, want, **tol, msg=lambda m: f"{what}: {m}")
        return
    assert got.dtype == want.dtype and got.shape == want.shape, what
    differ = got.view(BITS[got.dtype]) != want.view(BITS[want.dtype])
    if differ.any():
        i = int(differ.nonzero()[0])
        raise AssertionError(
            f"{what}: {int(differ.sum())} of {differ.numel()} elements differ, the first at "
            f"{i}: {got[i].item()!r} against {want[i].item()!r}"
        )


# Layouts of (param, grad, buffer): aligned and misaligned tensors side by side, and some
# that the step must run through dense stand-ins (Note [step layouts]).
COMBOS = [
    ("dense", "dense", "dense"),
    ("offset", "dense", "dense"),
    ("dense", "offset", "dense"),
    ("dense", "dense", "offset"),
    ("strided", "dense", "dense"),
    ("dense", "dense", "strided"),
    ("transposed", "dense", "transposed"),  # the grad's strides differ: stand-ins
    ("transposed", "transposed", "transposed"),  # dense alike: stepped in place
]
# Around the vector width (4) and the chunk (65536), several chunks, empty tensors.
SHAPES = [(0,), (1,), (3,), (4,), (5,), (65535,), (65536,), (65537,), (3 * 65536 + 5,)]
SHAPES += [(0, 3), (3, 5), (255, 257)]


def triples(specs, dtypes, gen, first_step=False):
    """CPU lists (params, grads, buffers), one triple per (shape, combo) of `specs`; the
    dtypes are taken in turn, shifted per shape so that every layout meets every dtype."""
    params, grads, bufs = [], [], []
    for i, (shape, combo) in enumerate(specs):
        dtype = dtypes[(i + i // len(COMBOS)) % len(dtypes)]
        p, g, b = (randn(shape, dtype, layout, gen) for layout in combo)
        if first_step:
            b.fill_(math.nan)  # the first step must not read its buffers
        params.append(p)
        grads.append(g)
        bufs.append(b)
    return params, grads, bufs


def every_layout(shapes):
    return [(shape, combo) for shape in shapes for combo in COMBOS]


# Soft phase: u = tanh(tau d) comes from the CPU kernel's own float32 tanh (within 1.37 ulp,
# Note [fast tanh]; Sleef's or libm's tanh for float64, 1 ulp) and from CUDA's tanhf (2 ulp)
# or tanh (1 ulp): the two u may differ by some 3.4 ulp of |u| <= 1, taken as 4 units of
# the math type's epsilon. The update p - lr u scales that by lr (atol). The new p is then
# rounded to its storage dtype, and a difference that small may still round it to either
# side: 1 ulp of the storage dtype, and 1 more where the CPU build contracts
# p * decay - lr * u into an FMA and CUDA rounds the product alone (rtol: 2 eps of the
# storage dtype, ulp(x) <= eps |x|). float16's subnormals are spaced more finely than
# eps |x|: their spacing joins atol.
def soft_tolerance(dtype, lr):
    store = torch.finfo(dtype)
    math_eps = torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32).eps
    return dict(rtol=2 * store.eps, atol=4 * math_eps * lr + store.smallest_normal * store.eps)


def step_both(params, grads, bufs, *, stepped=True, **options):
    """soft_sign_step_ in place on the CPU lists and on their twins on DEVICE (the scalar
    tensors of `options` copied there). The whole storage under every tensor must then
    agree: params bit for bit in the sign phase and within soft_tolerance with a
    temperature, buffers bit for bit in both, grads untouched, and no NaN in any param.
    stepped: some param changed; else the call was a no-op, params and buffers bit for bit
    as before."""
    on_device = {k: v.to(DEVICE) if torch.is_tensor(v) else v for k, v in options.items()}
    dev = [[twin(t) for t in ts] for ts in (params, grads, bufs)]
    before = [[storage_of(t).clone() for t in ts] for ts in (params, grads, bufs)]
    ops.soft_sign_step_(params, grads, bufs, **step_kwargs(**options))
    ops.soft_sign_step_(*dev, **step_kwargs(**on_device))

    kw = step_kwargs(**options)
    lr = kw["lr"] if kw["lr_tensor"] is None else kw["lr_tensor"].item()
    for i, (p, q) in enumerate(zip(params, dev[0])):
        tol = None if kw["temperature"] is None else soft_tolerance(p.dtype, lr)
        assert not p.isnan().any() and not q.isnan().any(), f"NaN in param {i}"
        assert_agree(storage_of(q), storage_of(p), tol, f"param {i} {tuple(p.shape)}")
    for name, cpu, on in (("buffer", bufs, dev[2]), ("grad", grads, dev[1])):
        for i, (t, u) in enumerate(zip(cpu, on)):
            assert_agree(storage_of(u), storage_of(t), None, f"{name} {i} {tuple(t.shape)}")
    for i, (g, old) in enumerate(zip(grads, before[1])):
        assert_agree(storage_of(g), old, None, f"grad {i} written")
    if stepped:
        assert any(not torch.equal(storage_of(p), old) for p, old in zip(params, before[0]))
    else:
        for name, k in (("param", 0), ("buffer", 2)):
            for i, (t, u, old) in enumerate(zip((params, grads, bufs)[k], dev[k], before[k])):
                assert_agree(storage_of(t), old, None, f"{name} {i} changed by a no-op")
                assert_agree(storage_of(u), old, None, f"{name} {i} changed by a no-op on DEVICE")


# tau d on both sides of 0.625, where the CPU kernel's tanh changes branch (Note [fast tanh]).
TAU = torch.tensor(1.7, dtype=torch.float64)


@pytest.mark.parametrize("soft", [False, True], ids=["sign", "soft"])
@pytest.mark.parametrize("dtypes", list(DTYPES))
def test_step_sizes_and_layouts_match_cpu_cuda(dtypes, soft):
    gen = torch.Generator().manual_seed(1)
    params, grads, bufs = triples(every_layout(SHAPES), DTYPES[dtypes], gen)
    step_both(
        params, grads, bufs, nesterov=True, weight_decay=0.05, temperature=TAU if soft else None
    )


OPTIONS = {
    "no_momentum": dict(momentum=0.0),
    "heavy_ball": dict(momentum=0.9),
    "nesterov": dict(momentum=0.9, nesterov=True),
    # 1 - 0.09 rounds differently in float32 and in float64: both must form it alike.
    "dampening": dict(momentum=0.5, dampening=0.09),
    "first_step": dict(first_step=True),
    "first_step_nesterov": dict(first_step=True, nesterov=True),
    "maximize": dict(maximize=True),
    "weight_decay": dict(weight_decay=0.1),
    "no_momentum_weight_decay": dict(momentum=0.0, weight_decay=0.1),
    "grad_scale": dict(grad_scale=torch.tensor(1024.0)),
    "grad_scale_inexact": dict(grad_scale=torch.tensor(3.0, dtype=torch.float64)),
    "lr_tensor": dict(lr=99.0, lr_tensor=torch.tensor(3e-3)),  # the tensor wins
    "found_inf_zero": dict(found_inf=torch.tensor(0.0)),
    "found_inf": dict(found_inf=torch.tensor(1.0)),  # a no-op, buffers included
    "everything": dict(
        momentum=0.8,
        dampening=0.25,
        nesterov=True,
        maximize=True,
        weight_decay=0.05,
        grad_scale=torch.tensor(8.0),
        lr_tensor=torch.tensor(2e-2, dtype=torch.float64),
        found_inf=torch.tensor(0.0),
    ),
}


@pytest.mark.parametrize("soft", [False, True], ids=["sign", "soft"])
@pytest.mark.parametrize("dtypes", list(DTYPES))
@pytest.mark.parametrize("case", list(OPTIONS))
def test_step_options_match_cpu_cuda(case, dtypes, soft):
    options = OPTIONS[case]
    gen = torch.Generator().manual_seed(2)
    specs = every_layout([(5,), (65537,), (3, 5)])
    params, grads, bufs = triples(specs, DTYPES[dtypes], gen, options.get("first_step", False))
    if options.get("momentum", 0.9) == 0.0:
        bufs = []
    temperature = TAU if soft else None
    step_both(params, grads, bufs, stepped=case != "found_inf", temperature=temperature, **options)


TEMPERATURES = {
    "none": None,  # the sign phase
    "finite": TAU,
    "float32_tensor": torch.tensor(1.7),
    "small": torch.tensor(1e-3, dtype=torch.float64),  # tanh(tau d) close to tau d
    "saturating": torch.tensor(1e6, dtype=torch.float64),
    "inf": torch.tensor(math.inf, dtype=torch.float64),  # non-finite: a no-op
    "nan": torch.tensor(math.nan, dtype=torch.float64),
}


@pytest.mark.parametrize("dtypes", list(DTYPES))
@pytest.mark.parametrize("tau", list(TEMPERATURES))
def test_step_temperatures_match_cpu_cuda(tau, dtypes):
    gen = torch.Generator().manual_seed(3)
    params, grads, bufs = triples(every_layout([(5,), (65537,)]), DTYPES[dtypes], gen)
    stepped = tau not in ("inf", "nan")
    step_both(params, grads, bufs, stepped=stepped, temperature=TEMPERATURES[tau])


# Note [temperature range]: a call is judged by the narrowest math type among its tensors.
# If one computes in float32 (float32, bfloat16, float16; an empty one computes nothing) and the
# temperature is not finite once rounded to float32, the whole call is a no-op, float64
# tensors included, as for a non-finite temperature; a call of float64 tensors only steps.
F32, F64 = torch.float32, torch.float64
HALFWAY = (2**25 - 1) * 2.0**103  # halfway between float32's max and 2^128: rounds to inf


@pytest.mark.parametrize(
    "dtypes, tau, stepped, empty_float32",
    [
        pytest.param(DTYPES["mixed"], 1e39, False, False, id="mixed-1e39"),
        pytest.param((F32, F64), 1e39, False, False, id="f32+f64-1e39"),
        pytest.param((torch.float16, F64), 1e39, False, False, id="f16+f64-1e39"),
        pytest.param((torch.bfloat16,), 1e39, False, False, id="bf16-1e39"),
        pytest.param((F32,), 1e39, False, False, id="f32-1e39"),
        pytest.param((F64,), 1e39, True, False, id="f64-1e39"),
        pytest.param((F64,), 1e39, True, True, id="f64+empty-f32-1e39"),
        pytest.param((F32, F64), HALFWAY, False, False, id="f32+f64-halfway"),
        pytest.param((F32, F64), HALFWAY - 2.0**102, True, False, id="f32+f64-below-halfway"),
        pytest.param((F32, F64), torch.finfo(F32).max, True, False, id="f32+f64-f32max"),
    ],
)
def test_step_temperature_beyond_float32_cuda(dtypes, tau, stepped, empty_float32):
    gen = torch.Generator().manual_seed(4)
    params, grads, bufs = triples(every_layout([(5,), (65537,)]), dtypes, gen)
    for g, b in zip(grads, bufs):
        g[..., ::3] = 0.0  # d = 0 there: tanh(inf * 0) would be NaN
        b[..., ::3] = 0.0
    if empty_float32:
        params.append(torch.empty(0))
        grads.append(torch.empty(0))
        bufs.append(torch.empty(0))
    temperature = torch.tensor(tau, dtype=torch.float64)  # a float64 tensor holds them all
    step_both(params, grads, bufs, stepped=stepped, temperature=temperature)


@pytest.mark.parametrize("soft", [False, True], ids=["sign", "soft"])
@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["depth2", "depth3"])
def test_step_more_tensors_than_a_launch_holds_cuda(momentum, soft):
    """130 tensors: a launch holds 64 (params and grads) or 48 (and buffers); the tensors
    around each launch's last slot span several chunks."""
    boundary = {46, 47, 48, 62, 63, 64, 95, 96, 127, 128}
    specs = [
        ((3 * 65536 + 1,) if i in boundary else (i % 37 + 1,), COMBOS[i % 2]) for i in range(130)
    ]
    gen = torch.Generator().manual_seed(5)
    params, grads, bufs = triples(specs, (torch.float32,), gen)
    bufs = bufs if momentum else []
    step_both(params, grads, bufs, momentum=momentum, temperature=TAU if soft else None)


# The biggest cases (21M elements, 'huge' in their names: -k 'not huge' leaves them out):
# one each, float32 only.
HUGE = 21_000_000  # 321 chunks: more than the 320 blocks of one launch


@pytest.mark.parametrize(
    "momentum, combo, soft",
    [(0.0, COMBOS[0], False), (0.9, COMBOS[1], True)],
    ids=["depth2-aligned-sign", "depth3-misaligned-soft"],
)
def test_step_tensor_beyond_one_launch_huge_cuda(momentum, combo, soft):
    """A tensor of more chunks than one launch has blocks, starting mid-launch (after 4
    blocks of smaller tensors): it continues as slot 0 of the next launch."""
    gen = torch.Generator().manual_seed(6)
    shapes = [(5,), (65537,), (3,), (HUGE,), (7,)]
    params, grads, bufs = triples([(s, combo) for s in shapes], (torch.float32,), gen)
    bufs = bufs if momentum else []
    step_both(params, grads, bufs, momentum=momentum, temperature=TAU if soft else None)


# ---- the radix selection on DEVICE against the CPU's ----------------------------------------


def select_kwargs(**over):
    kw = dict(momentum=0.9, dampening=0.0, nesterov=False, maximize=False, first_step=False)
    kw.update(over)
    return kw


def select_both(grads, bufs, *, key_bits, grad_scale=None, **options):
    """Every pass of the radix selection (Note [radix selection]) over the directions of
    grads and bufs, on the CPU and on twins on DEVICE, with 8-bit digits (the CUDA kernel's
    only width): each pass's histogram, the state it advances to and the results must be
    equal. The CPU state drives the CPU passes and the device's the device's."""
    dev_grads, dev_bufs = [twin(t) for t in grads], [twin(t) for t in bufs]
    dev_scale = None if grad_scale is None else grad_scale.to(DEVICE)
    state = torch.zeros(6, dtype=torch.int64)
    dev_state = state.to(DEVICE, copy=True)
    kw = select_kwargs(**options)
    for stage in (0, 1):
        for pass_ in range((key_bits if stage == 0 else 64) // 8):
            spec = dict(stage=stage, pass_=pass_, digit_bits=8, key_bits=key_bits)
            want = ops.radix_select_histogram(
                grads, bufs, state, **spec, **kw, grad_scale=grad_scale
            )
            got = ops.radix_select_histogram(
                dev_grads, dev_bufs, dev_state, **spec, **kw, grad_scale=dev_scale
            )
            assert_agree(got, want, None, f"histogram of stage {stage}, pass {pass_}")
            if stage == pass_ == 0:
                assert int(want.sum()) == sum(g.numel() for g in grads)
            ops.radix_select_advance_(state, want, **spec)
            ops.radix_select_advance_(dev_state, got, **spec)
            assert_agree(dev_state, state, None, f"state after stage {stage}, pass {pass_}")
    want = ops.radix_select_result(state, key_bits=key_bits)
    got = ops.radix_select_result(dev_state, key_bits=key_bits)
    assert_agree(got[0], want[0], None, "median")
    assert_agree(got[1], want[1], None, "MAD")


# The dtypes of the statistic with the key width the driver picks for them, and 64-bit keys
# of float32 math (as under a histogram hook).
KEYS = {
    "narrow-32": ((torch.float32, torch.bfloat16, torch.float16), 32),
    "float32-64": ((torch.float32,), 64),
    "float64-64": ((torch.float64,), 64),
    "mixed-64": (DTYPES["mixed"], 64),
}
SELECT_OPTIONS = {
    "no_momentum": dict(momentum=0.0),  # buffers passed are not read
    "heavy_ball": dict(),
    "nesterov_maximize": dict(momentum=0.8, nesterov=True, maximize=True),
    "dampening": dict(momentum=0.5, dampening=0.09),
    "first_step": dict(first_step=True),  # buffers passed are not read
    "first_step_nesterov": dict(first_step=True, nesterov=True),
    "grad_scale": dict(grad_scale=torch.tensor(3.0)),
}
# (grad, buffer) layouts the histogram takes: dense, buffers strided like their grads.
SELECT_COMBOS = [("dense", "dense"), ("offset", "dense"), ("dense", "offset"), ("offset", "offset")]
SELECT_SHAPES = [(0,), (1,), (5,), (65537,), (2 * 65536 + 3,), (33, 65)]


def statistic(shapes, dtypes, gen, dist, first_step=False):
    """CPU grads and buffers of `shapes` in every SELECT_COMBOS layout (plus a transposed
    pair), dtypes taken in turn."""
    specs = [(s, c) for s in shapes for c in SELECT_COMBOS] + [((9, 65), ("transposed",) * 2)]
    grads, bufs = [], []
    for i, (shape, combo) in enumerate(specs):
        dtype = dtypes[(i + i // len(SELECT_COMBOS)) % len(dtypes)]
        g, b = (randn(shape, dtype, layout, gen, dist) for layout in combo)
        if first_step:
            b.fill_(math.nan)
        grads.append(g)
        bufs.append(b)
    return grads, bufs


@pytest.mark.parametrize("buffers", [True, False], ids=["buffers", "no_buffers"])
@pytest.mark.parametrize("case", list(SELECT_OPTIONS))
@pytest.mark.parametrize("keys", list(KEYS))
def test_selection_histograms_match_cpu_cuda(keys, case, buffers):
    dtypes, key_bits = KEYS[keys]
    options = SELECT_OPTIONS[case]
    gen = torch.Generator().manual_seed(7)
    grads, bufs = statistic(SELECT_SHAPES, dtypes, gen, "nan", options.get("first_step", False))
    select_both(grads, bufs if buffers else [], key_bits=key_bits, **options)


@pytest.mark.parametrize("dist", ["normal", "skewed", "constant"])
@pytest.mark.parametrize("keys", list(KEYS))
def test_selection_histograms_of_skewed_values_match_cpu_cuda(keys, dist):
    dtypes, key_bits = KEYS[keys]
    gen = torch.Generator().manual_seed(8)
    grads, bufs = statistic(SELECT_SHAPES, dtypes, gen, dist)
    select_both(grads, bufs, key_bits=key_bits, nesterov=True)


DIRECTION_OPTIONS = {
    "no_momentum": dict(momentum=0.0),
    "heavy_ball": dict(momentum=0.9),
    "nesterov_maximize": dict(momentum=0.8, nesterov=True, maximize=True),
    "dampening_grad_scale": dict(momentum=0.5, dampening=0.09, grad_scale=torch.tensor(3.0)),
}


@pytest.mark.parametrize(
    "dist, n",
    [
        ("normal", 7000),
        ("nan", 7000),
        ("skewed", 7000),
        ("constant", 7000),
        ("normal", 1_500_000),
        ("skewed", 1_500_000),
    ],
)
@pytest.mark.parametrize("keys", ["narrow-32", "mixed-64"])
@pytest.mark.parametrize("case", list(DIRECTION_OPTIONS))
def test_direction_median_mad_matches_cpu_cuda(case, keys, dist, n):
    """The whole selection (the CPU driver with its 16-bit digits and candidate finish, the
    device's with 8-bit digits) must find the same median and MAD, over skewed values and
    over more than 1M elements too; and so must the public median_mad of the grads."""
    options = select_kwargs(**DIRECTION_OPTIONS[case])
    del options["first_step"]
    scale = options.pop("grad_scale", None)
    gen = torch.Generator().manual_seed(9)
    grads, bufs = statistic([(1,), (5,), (65537,), (n,)], KEYS[keys][0], gen, dist)
    fresh, _ = statistic([(3,), (4099,)], KEYS[keys][0], gen, dist)  # buffers start this step
    bufs = bufs if options["momentum"] else []
    want = ops.direction_median_mad(grads, bufs, fresh, **options, grad_scale=scale)
    got = ops.direction_median_mad(
        [twin(t) for t in grads],
        [twin(t) for t in bufs],
        [twin(t) for t in fresh],
        **options,
        grad_scale=None if scale is None else scale.to(DEVICE),
    )
    assert_agree(got[0], want[0], None, "median")
    assert_agree(got[1], want[1], None, "MAD")
    want = median_mad(grads)
    got = median_mad([twin(t) for t in grads])
    assert_agree(got[0], want[0], None, "median_mad's median")
    assert_agree(got[1], want[1], None, "median_mad's MAD")


def test_selection_beyond_one_launch_huge_cuda():
    """The histograms of a tensor of more chunks than one launch has blocks, with buffers
    (two tensors per slot) and without (one)."""
    gen = torch.Generator().manual_seed(10)
    g = torch.randn(HUGE, generator=gen)
    b = torch.randn(HUGE, generator=gen)
    for bufs in ([b], []):
        select_both([g], bufs, key_bits=32, nesterov=True)
