"""The ops of torch.ops.softsign: schemas and fake kernels (opcheck), exactness of the
median/MAD, the schedule against the reference, and the fused step's contract."""

import math
import re
import struct

import pytest
import torch

import softsign
from softsign import reference
from softsign._python_step import FOREACH_RULES
from softsign.functional import median_mad, temperature_schedule
from softsign.optim._elementwise import rule_keywords

from conftest import step_kwargs

ops = torch.ops.softsign


def _rules_of_the_classes() -> dict:
    """{rule name: (the first plain element-wise class that steps with it, its op keywords at
    its defaults)} over softsign.elementwise_pairs(), so each rule a class uses is run here
    with the coefficients that class gives it."""
    rules = {}
    for plain, _ in softsign.elementwise_pairs().values():
        kw = rule_keywords(plain)
        rules.setdefault(kw.get("momentum_rule", "heavy_ball"), (plain, kw))
    return rules


# The rules beyond the heavy ball (every op's default rule, which the tests below call with
# their own keywords).
OTHER_RULES = {k: v for k, v in _rules_of_the_classes().items() if k != "heavy_ball"}


def test_opcheck_step(device):
    ps = [torch.randn(5, device=device), torch.randn(3, 4, device=device)]
    gs = [torch.randn_like(p) for p in ps]
    bs = [torch.randn_like(p) for p in ps]
    tau = torch.tensor(3.0, dtype=torch.float64, device=device)
    torch.library.opcheck(ops.soft_sign_step_.default, (ps, gs, bs), step_kwargs(temperature=tau))


def test_opcheck_statistics(device):
    xs = [torch.randn(7, device=device), torch.randn(2, 3, device=device)]
    bufs = [torch.randn_like(x) for x in xs]
    # The direction's options as the ops take them: no momentum, every flag off.
    rule_kw = dict(momentum=0.0, dampening=0.0, nesterov=False, maximize=False, grad_scale=None)
    nesterov_kw = dict(rule_kw, momentum=0.9, nesterov=True, first_step=False)
    torch.library.opcheck(ops.soft_sign_direction.default, (xs, bufs), nesterov_kw)
    for _, kw in OTHER_RULES.values():
        other_kw = dict(rule_kw, first_step=False, **kw)
        torch.library.opcheck(ops.soft_sign_direction.default, (xs, bufs), other_kw)
    torch.library.opcheck(ops.median_mad.default, (xs,))
    direction_kw = dict(rule_kw, momentum=0.9, dampening=0.1, maximize=True)
    torch.library.opcheck(
        ops.direction_median_mad.default, (xs[:1], bufs[:1], xs[1:]), direction_kw
    )
    state = torch.zeros(6, dtype=torch.int64, device=device)
    pass_kw = dict(stage=0, pass_=0, digit_bits=8, key_bits=32)
    histogram_kw = dict(pass_kw, **rule_kw, first_step=False)
    hist = ops.radix_select_histogram(xs, [], state, **histogram_kw)
    torch.library.opcheck(ops.radix_select_histogram.default, (xs, [], state), histogram_kw)
    torch.library.opcheck(ops.radix_select_advance_.default, (state.clone(), hist), pass_kw)
    keys = torch.tensor([float_key(-1.5), 0, double_key(0.25), 0, 0, 0], device=device)
    torch.library.opcheck(ops.radix_select_result.default, (keys,), dict(key_bits=32))
    mu, s = median_mad(xs)
    sched_kw = dict(eps=1e-4, newton_iters=10, tmax=1e9, kind="tanh")
    torch.library.opcheck(ops.temperature_schedule.default, (mu, s, 6), sched_kw)
    torch.library.opcheck(ops.temperature_at.default, (mu, s, 4, 6), sched_kw)
    torch.library.opcheck(ops.fit_temperature.default, (mu, s), dict(found_inf=None))


def float_key(v):
    """Order-preserving key of a float32 (radix_select.h), as an int64."""
    (u,) = struct.unpack("<I", struct.pack("<f", v))
    return (~u & 0xFFFFFFFF) if u & 0x80000000 else u | 0x80000000


def double_key(v):
    """Order-preserving key of a float64, reinterpreted as a (signed) int64."""
    (u,) = struct.unpack("<Q", struct.pack("<d", v))
    key = (~u & (2**64 - 1)) if u >> 63 else u | (1 << 63)
    return key - 2**64 if key >> 63 else key


@pytest.mark.parametrize("value", [-1.5, 0.0, -0.0, 2.0**127, -(2.0**-149), float("inf")])
def test_selection_result_decodes_keys(value, device):
    state = torch.tensor([float_key(value), 0, double_key(value), 0, 0, 0], device=device)
    mu, mad = ops.radix_select_result(state, key_bits=32)
    assert mu.item() == value and math.copysign(1, mu.item()) == math.copysign(1, value)
    assert mad.item() == value
    state[0] = double_key(value)
    assert ops.radix_select_result(state, key_bits=64)[0].item() == value


def concat_median_mad(tensors):
    x = torch.cat([t.reshape(-1).double() for t in tensors])
    mu = x.median()
    return mu, (x - mu).abs().median()


@pytest.mark.parametrize(
    "make",
    [
        lambda: [torch.randn(1001), torch.randn(0), torch.randn(7, 3)],
        lambda: [torch.tensor([1.0, 1.0, 1.0, 2.0, 2.0])],  # ties
        lambda: [torch.tensor([0.0, -0.0, 0.0, -0.0, 1e-45, -1e-45])],  # signed zeros, subnormals
        lambda: [torch.tensor([3e38, -3e38, 1e-38, 7.0])],  # huge and tiny magnitudes
        lambda: [torch.randn(3) for _ in range(2000)],  # thousands of tiny tensors
        lambda: [torch.randn(64, 33).bfloat16(), torch.randn(17).half().float()],
        lambda: [torch.randn(8).half()],
        # float64 values that float32 keys could not tell apart: 64-bit keys
        lambda: [1.0 + torch.arange(9, dtype=torch.float64) * 1e-12],
        lambda: [torch.randn(30, dtype=torch.float64), torch.randn(31)],  # mixed widths
        lambda: [torch.tensor([float("inf"), 1.0, 2.0, float("-inf"), 3.0])],
        # 3M values 1 ulp apart: every pass keeps more candidates than the CPU driver
        # collects (Note [candidate finish]), so all passes run.
        lambda: [1.0 + torch.arange(3_000_000, dtype=torch.float64) * 2.0**-52],
    ],
)
def test_median_mad_is_exact(make, device):
    tensors = [t.to(device) for t in make()]
    mu, s = median_mad(tensors)
    emu, es = concat_median_mad(tensors)
    assert mu.dtype == s.dtype == torch.float64 and mu.device.type == device.type
    assert mu.item() == emu.item() and s.item() == es.item()


DIRECTION_CASES = {
    "plain": dict(momentum=0.9, dampening=0.0, nesterov=False, maximize=False),
    "nesterov_maximize": dict(momentum=0.8, dampening=0.0, nesterov=True, maximize=True),
    # 1 - 0.09 rounds differently in float32 and in float64: the ops must agree on one.
    "dampening": dict(momentum=0.5, dampening=0.09, nesterov=False, maximize=False),
    "dampening_nesterov": dict(momentum=0.9, dampening=0.09, nesterov=True, maximize=False),
}


@pytest.mark.parametrize("case", list(DIRECTION_CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize("scaled", [False, True])
def test_direction_statistic_read_in_place(case, dtype, scaled, device):
    """The fit's statistic equals the median/MAD of the directions materialized by
    soft_sign_direction, including params whose buffers start this step."""
    gen = torch.Generator().manual_seed(3)
    mk = lambda n: (torch.randn(n, generator=gen) * 3).to(dtype).to(device)  # noqa: E731
    grads, bufs, fresh = [mk(1000), mk(7)], [mk(1000), mk(7)], [mk(300)]
    kw = DIRECTION_CASES[case]
    scale = torch.tensor(4.0, device=device) if scaled else None
    got = ops.direction_median_mad(grads, bufs, fresh, **kw, grad_scale=scale)
    dirs = ops.soft_sign_direction(grads, bufs, **kw, first_step=False, grad_scale=scale)
    dirs += ops.soft_sign_direction(fresh, [], **kw, first_step=True, grad_scale=scale)
    want = concat_median_mad(dirs)
    assert got[0].item() == want[0].item() and got[1].item() == want[1].item()


@pytest.mark.parametrize("case", list(DIRECTION_CASES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_step_applies_the_directions_the_fit_reads(case, dtype, device):
    """The step kernel forms d exactly as soft_sign_direction (and so the fit) does: no
    fused multiply-add in one and not the other. With p = 0, lr = 1 and tau = 2^-60 the
    step writes p = -tanh(tau d) = -tau d exactly, which gives d back."""
    gen = torch.Generator().manual_seed(5)
    g, b = (torch.randn(20000, generator=gen, dtype=dtype).to(device) for _ in range(2))
    kw = DIRECTION_CASES[case]
    (want,) = ops.soft_sign_direction([g], [b], **kw, first_step=False, grad_scale=None)
    p, buf = torch.zeros_like(g), b.clone()
    tau = torch.tensor(2.0**-60, dtype=torch.float64, device=device)
    ops.soft_sign_step_([p], [g], [buf], **step_kwargs(lr=1.0, temperature=tau, **kw))
    assert torch.equal(-p * 2.0**60, want)
    # 1 - dampening formed in the opmath type, as the kernels form it.
    undamped = torch.tensor(1.0, dtype=dtype) - torch.tensor(kw["dampening"], dtype=dtype)
    signed = -g if kw["maximize"] else g
    assert torch.equal(buf, kw["momentum"] * b + undamped.to(device) * signed)


def test_median_mad_of_nothing_is_an_error():
    with pytest.raises(ValueError, match="at least one element"):
        median_mad([torch.empty(0)])


def test_median_mad_propagates_nan():
    mu, s = median_mad([torch.tensor([1.0, float("nan"), 2.0])])
    assert math.isnan(mu.item()) and math.isnan(s.item())


def test_histogram_hook_sees_every_pass():
    x = torch.randn(1000)
    seen = []
    got = median_mad([x], histogram_hook=lambda h: seen.append(int(h.sum())))
    assert got[0].item() == x.median().item()
    # 16-bit digits over 64-bit keys in both stages: under a hook every rank runs the same
    # passes whatever its dtypes.
    assert seen[0] == 1000 and len(seen) == 4 + 4


@pytest.mark.parametrize("dev", ["cpu", "cuda"], ids=["cpu", "accelerator"])
@pytest.mark.parametrize("wide", [False, True])
def test_radix_select_plan(dev, wide):
    """The plan the Python driver reads (softsign/_select.py) is the C++ driver's: 16-bit
    digits on the CPU, 8 on a device; 64-bit stage-0 keys when asked (float64 or a hook)."""
    state, digit, key, p0, p1, size = ops.radix_select_plan(torch.device(dev), wide_keys=wide)
    assert (state, digit, key) == (6, 16 if dev == "cpu" else 8, 64 if wide else 32)
    assert (p0, p1, size) == (key // digit, 64 // digit, (1 << digit) + 1)


def test_the_python_driver_runs_the_plan():
    *_, p0, p1, size = ops.radix_select_plan(torch.device("cpu"), wide_keys=True)
    x = torch.randn(300)
    sizes = []
    got = median_mad([x], histogram_hook=lambda h: sizes.append(h.numel()))
    assert sizes == [size] * (p0 + p1)
    assert got[0].item() == x.median().item()


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_an_infinite_median_is_not_nan(sign, device):
    """|x - mu| is inf - inf = NaN where x = mu = inf: the MAD is NaN, as for torch.median,
    and the median keeps its value."""
    for x in (torch.tensor([sign * math.inf] * 2 + [1.0]), torch.full((5,), sign * math.inf)):
        mu, mad = median_mad([x.to(device)])
        assert mu.item() == x.median().item() == sign * math.inf
        assert math.isnan(mad.item()) and math.isnan((x - x.median()).abs().median().item())


def _sharded_median_mad(rank, world, path, shards, out):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    mu, s = median_mad([shards[rank]], histogram_hook=lambda h: dist.all_reduce(h))
    out[rank] = (mu.item(), s.item())
    dist.destroy_process_group()


def test_histogram_hook_all_reduce_selects_over_every_rank(tmp_path):
    """Each rank holds a shard (one holds none, one float64 values); all-reducing the
    histograms gives every rank the exact median/MAD of the whole, gathering no value."""
    import torch.multiprocessing as mp

    x = torch.randn(2001)
    # One rank holds float64: every rank must still run the same passes.
    shards = [x[:1500], x[1500:].double(), x[:0]]
    with mp.Manager() as manager:
        out = manager.dict()
        mp.spawn(_sharded_median_mad, args=(3, str(tmp_path / "store"), shards, out), nprocs=3)
        results = dict(out)
    want = concat_median_mad([x])
    assert all(r == (want[0].item(), want[1].item()) for r in results.values())


@pytest.mark.parametrize("kind", ["tanh", "algebraic"])
@pytest.mark.parametrize("mu,s", [(1e-3, 2e-3), (-0.3, 0.01), (0.0, 1e-6), (0.25, 0.0)])
def test_schedule_matches_reference(kind, mu, s, device):
    median = torch.tensor(mu, dtype=torch.float64, device=device)
    got = temperature_schedule(median, s, 40, kind=kind, tmax=1e6)
    want = reference.temperature_schedule(mu, s, 40, kind=kind, tmax=1e6)
    torch.testing.assert_close(got.cpu(), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["tanh", "algebraic"])
@pytest.mark.parametrize("mu,s", [(1e-3, 2e-3), (0.25, 0.0), (0.0, 0.0)])
def test_temperature_at_is_its_schedule_entry(kind, mu, s, device):
    """A step's temperature, computed alone, has the bits of its entry in the schedule."""
    median = torch.tensor(mu, dtype=torch.float64, device=device)
    mad = torch.tensor(s, dtype=torch.float64, device=device)
    kw = dict(eps=1e-4, newton_iters=10, tmax=1e9, kind=kind)
    schedule = ops.temperature_schedule(median, mad, 50, **kw)
    for j in [0, 1, 17, 49]:
        tau = ops.temperature_at(median, mad, j, 50, **kw)
        assert tau.shape == () and tau.device == median.device
        assert torch.equal(tau, schedule[j])
    # Past the end of the transition: its last temperature.
    assert torch.equal(ops.temperature_at(median, mad, 10**6, 50, **kw), schedule[49])
    with pytest.raises(RuntimeError, match="index"):
        ops.temperature_at(median, mad, -1, 50, **kw)


@pytest.mark.parametrize("kind", ["tanh", "algebraic"])
def test_temperature_at_any_transition_length(kind, device):
    """T = 1e12 (8 TB as a schedule tensor): each temperature is computed alone, and matches
    the float64 reference at the same index."""
    median = torch.tensor(1e-3, dtype=torch.float64, device=device)
    mad = torch.tensor(2e-3, dtype=torch.float64, device=device)
    steps = 10**12
    for j in [0, 10**6, steps // 2, steps - 1]:
        got = ops.temperature_at(
            median, mad, j, steps, eps=1e-4, newton_iters=10, tmax=1e9, kind=kind
        )
        want = reference.temperature_at(1e-3, 2e-3, j, steps, kind=kind)
        assert got.item() == pytest.approx(want, rel=1e-12)


def test_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        temperature_schedule(0.0, 1.0, 3, kind="cubic")
    with pytest.raises(ValueError, match="steps"):
        temperature_schedule(0.0, 1.0, 0)
    with pytest.raises(RuntimeError, match="eps"):
        temperature_schedule(0.0, 1.0, 3, eps=2.0)
    with pytest.raises(ValueError, match="steps"):
        temperature_schedule(0.0, 1.0, 2.5)
    with pytest.raises(ValueError, match="mad"):
        temperature_schedule(0.0, -1.0, 3)


@pytest.mark.parametrize("tau", [0.0, -2.0, float("inf"), float("nan")])
def test_soft_spectral_map_rejects_a_bad_tau(tau):
    with pytest.raises(ValueError, match="tau"):
        softsign.functional.soft_spectral_map(torch.randn(4, 3), tau)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("soft", [False, True])
def test_one_step_closed_form(dtype, soft, device):
    # Sizes around the CPU block/chunk and CUDA vector widths, and an empty tensor.
    sizes = [1, 3, 4, 255, 257, 65536 + 5, 0]
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn(n, generator=gen).to(dtype).to(device) for n in sizes]
    gs = [torch.randn(n, generator=gen).to(dtype).to(device) for n in sizes]
    bs = [torch.randn(n, generator=gen).to(dtype).to(device) for n in sizes]
    m, damp, wd, lr, tau = 0.8, 0.25, 0.05, 0.01, 2.5
    want, sure = [], []
    for p, g, b in zip(ps, gs, bs):
        buf = m * b.double() + (1 - damp) * g.double()
        d = g.double() + m * buf  # nesterov (dampening is allowed by the op itself)
        u = torch.tanh(tau * d) if soft else torch.sign(d)
        want.append(((p.double() * (1 - lr * wd) - lr * u).to(dtype), buf.to(dtype)))
        # sign(d) is only defined up to rounding when d is within float32 error of 0.
        scale = g.double().abs() + m * buf.abs() + m * m * b.double().abs()
        sure.append(soft | (d.abs() > 1e-6 * scale))
    temp = torch.tensor([tau], dtype=torch.float64, device=device) if soft else None
    ops.soft_sign_step_(
        ps,
        gs,
        bs,
        **step_kwargs(
            lr=lr, momentum=m, dampening=damp, weight_decay=wd, nesterov=True, temperature=temp
        ),
    )
    ulp = {torch.float32: 2e-6, torch.float64: 1e-12, torch.bfloat16: 2**-7, torch.float16: 2**-10}
    for p, b, (wp, wb), ok in zip(ps, bs, want, sure):
        ok = ok.to(device)
        assert (~ok).sum() <= max(1, ok.numel() // 1000)
        torch.testing.assert_close(p[ok], wp.to(device)[ok], rtol=ulp[dtype], atol=ulp[dtype])
        torch.testing.assert_close(b, wb.to(device), rtol=ulp[dtype], atol=ulp[dtype])


def test_first_step_maximize_grad_scale_and_lr_tensor(device):
    p = torch.zeros(10, device=device)
    g = torch.linspace(-1, 1, 10, device=device) * 8
    b = torch.full_like(p, 123.0)  # must be ignored on the first step
    ops.soft_sign_step_(
        [p],
        [g],
        [b],
        **step_kwargs(
            lr=99.0,
            lr_tensor=torch.tensor(0.5, device=device),
            first_step=True,
            maximize=True,
            grad_scale=torch.tensor(8.0, device=device),
        ),
    )
    gu = -g / 8
    torch.testing.assert_close(b, gu)
    torch.testing.assert_close(p, -0.5 * torch.sign(gu))


@pytest.mark.parametrize("reason", ["found_inf", "nan_tau", "inf_tau"])
def test_noop_rule(reason, device):
    p = torch.randn(100, device=device)
    b = torch.randn(100, device=device)
    p0, b0 = p.clone(), b.clone()
    kw = dict(found_inf=torch.ones(1, device=device)) if reason == "found_inf" else {}
    tau = {"found_inf": 1.0, "nan_tau": math.nan, "inf_tau": math.inf}[reason]
    kw["temperature"] = torch.tensor(tau, dtype=torch.float64, device=device)
    ops.soft_sign_step_([p], [torch.randn_like(p)], [b], **step_kwargs(**kw))
    assert torch.equal(p, p0) and torch.equal(b, b0)


@pytest.mark.parametrize("path", ["fused", "python"])
@pytest.mark.parametrize("dtypes", [(torch.float32, torch.float64), (torch.bfloat16,)])
def test_a_temperature_beyond_float32_is_one_no_op_per_call(path, dtypes, device):
    """tau = 1e39 is finite in float64 and inf in float32: a call with any float32-math
    tensor leaves every tensor unchanged (Note [temperature range]); never NaN."""
    from softsign._python_step import soft_sign_step_ as python_step

    step = ops.soft_sign_step_ if path == "fused" else python_step
    ps = [torch.randn(70, device=device).to(t) for t in dtypes]
    bs = [torch.randn_like(p) for p in ps]
    before = [(p.clone(), b.clone()) for p, b in zip(ps, bs)]
    tau = torch.tensor(1e39, dtype=torch.float64, device=device)
    step(ps, [torch.randn_like(p) for p in ps], bs, **step_kwargs(temperature=tau))
    for (p0, b0), p, b in zip(before, ps, bs):
        assert torch.equal(p, p0) and torch.equal(b, b0), p.dtype


@pytest.mark.parametrize("path", ["fused", "python"])
def test_a_temperature_beyond_float32_steps_float64_only_calls(path, device):
    from softsign._python_step import soft_sign_step_ as python_step

    step = ops.soft_sign_step_ if path == "fused" else python_step
    p = torch.randn(70, dtype=torch.float64, device=device)
    g, b = torch.randn_like(p), torch.randn_like(p)
    want_buf = 0.9 * b + g
    want = p - 0.1 * torch.tanh(1e39 * want_buf)
    tau = torch.tensor(1e39, dtype=torch.float64, device=device)
    step([p], [g], [b], **step_kwargs(temperature=tau))
    torch.testing.assert_close(b, want_buf, rtol=0, atol=1e-15)
    torch.testing.assert_close(p, want, rtol=0, atol=1e-15)


def test_step_rejects_bad_calls(device):
    p = torch.zeros(4, device=device)
    with pytest.raises(RuntimeError, match="as many grads"):
        ops.soft_sign_step_([p], [], [], **step_kwargs(momentum=0.0))
    with pytest.raises(RuntimeError, match="one momentum buffer"):
        ops.soft_sign_step_([p], [p.clone()], [], **step_kwargs())
    with pytest.raises(RuntimeError, match="shape"):
        ops.soft_sign_step_([p], [torch.zeros(5, device=device)], [], **step_kwargs(momentum=0.0))
    with pytest.raises(RuntimeError, match="dtype"):
        ops.soft_sign_step_([p], [p.double()], [], **step_kwargs(momentum=0.0))
    with pytest.raises(RuntimeError, match="complex"):
        c = torch.zeros(4, dtype=torch.complex64, device=device)
        ops.soft_sign_step_([c], [c.clone()], [], **step_kwargs(momentum=0.0))


UNKNOWN_RULE = "unknown momentum_rule 'adam', expected one of "


def _bad_rules() -> list:
    """(keywords, the message's regex) of each bad rule: an unknown name, coefficients the
    heavy ball does not take, and for every other rule of a class: too many coefficients,
    none where it takes some, and Nesterov where its class offers no nesterov option."""
    bad = [
        (dict(momentum_rule="adam"), re.escape(UNKNOWN_RULE)),
        (dict(momentum_rule="heavy_ball", rule_coeffs=[0.5]), "'heavy_ball' takes 0 rule_coeffs"),
    ]
    for rule, (cls, kw) in OTHER_RULES.items():
        n = len(kw["rule_coeffs"])
        takes = f"'{rule}' takes {n} rule_coeffs, got "
        bad.append(
            (dict(momentum_rule=rule, rule_coeffs=[0.5] * (n + 1)), re.escape(f"{takes}{n + 1}"))
        )
        if n:
            bad.append((dict(momentum_rule=rule), re.escape(f"{takes}0")))
        if "nesterov" not in cls._table:
            bad.append((dict(kw, nesterov=True), re.escape(f"'{rule}' has no Nesterov form")))
    return bad


@pytest.mark.parametrize("bad, match", _bad_rules())
def test_every_direction_op_refuses_a_bad_rule_before_any_change(bad, match, device):
    # The rule is checked where the ops form their scalars, so every op that forms a
    # direction (the step, the directions, the fused selection, one selection pass) refuses
    # it alike, with the params and buffers untouched.
    p, g, b = (torch.randn(6, device=device) for _ in range(3))
    before = (p.clone(), b.clone())
    rule = dict(momentum=0.9, dampening=0.0, nesterov=False, maximize=False, grad_scale=None)
    rule.update(bad)
    state = torch.zeros(6, dtype=torch.int64, device=device)
    pass_kw = dict(stage=0, pass_=0, digit_bits=8, key_bits=32, first_step=False)
    calls = [
        lambda: ops.soft_sign_step_([p], [g], [b], **step_kwargs(**rule)),
        lambda: ops.soft_sign_direction([g], [b], first_step=False, **rule),
        lambda: ops.direction_median_mad([g], [b], [], **rule),
        lambda: ops.radix_select_histogram([g], [b], state, **pass_kw, **rule),
    ]
    for call in calls:
        with pytest.raises(RuntimeError, match=match) as caught:
            call()
        if match == re.escape(UNKNOWN_RULE):
            # The kernels' rules (kRuleSpecs) are the unfused step's, each named once.
            listed = str(caught.value).split(UNKNOWN_RULE)[1].splitlines()[0].strip()
            assert sorted(listed.split(", ")) == sorted(FOREACH_RULES)
    assert torch.equal(p, before[0]) and torch.equal(b, before[1])


def test_the_unfused_step_refuses_an_unknown_rule():
    from softsign import _python_step

    p = torch.zeros(3)
    kw = step_kwargs(momentum_rule="adam", rule_coeffs=[])
    with pytest.raises(ValueError, match="unknown momentum_rule 'adam'"):
        _python_step.soft_sign_step_([p], [p.clone()], [p.clone()], **kw)


def test_mixed_devices_in_one_call_is_an_error_cuda():
    p = torch.zeros(4, device="cuda")
    q = torch.zeros(4)
    before = p.clone()
    with pytest.raises(RuntimeError, match="on one device|every tensor"):
        ops.soft_sign_step_([p, q], [p.clone(), q.clone()], [], **step_kwargs(momentum=0.0))
    assert torch.equal(p, before)


def test_version():
    assert softsign.__version__


PORTABLE_RUN = """
import sys, torch, softsign
gen = torch.Generator().manual_seed(0)
out = []
# Every loop of the kernel: no momentum, first step (plain and Nesterov), heavy ball with
# dampening, Nesterov; maximize and an AMP grad_scale on some of them.
cases = [dict(momentum=0.0, first_step=False, nesterov=False, dampening=0.0),
         dict(momentum=0.9, first_step=True, nesterov=False, dampening=0.0),
         dict(momentum=0.9, first_step=True, nesterov=True, dampening=0.0),
         dict(momentum=0.8, first_step=False, nesterov=False, dampening=0.3),
         dict(momentum=0.9, first_step=False, nesterov=True, dampening=0.0)]
for i, case in enumerate(cases):
    for extra in (dict(maximize=False, grad_scale=None),
                  dict(maximize=True, grad_scale=torch.tensor(4.0))):
        for dtype in (torch.float32, torch.bfloat16, torch.float16, torch.float64):
            for soft in (False, True):
                p, g, b = (torch.randn(1000 + 3, generator=gen).to(dtype) for _ in range(3))
                tau = torch.tensor(3.0, dtype=torch.float64) if soft else None
                torch.ops.softsign.soft_sign_step_(
                    [p], [g], [b] if case["momentum"] else [], lr=0.01, lr_tensor=None,
                    weight_decay=0.1, temperature=tau, found_inf=None, **case, **extra)
                out += [p, b]
torch.save(out, sys.argv[1])
"""


def test_portable_and_simd_cpu_kernels_agree(tmp_path):
    """The CPU kernel is built per capability (DEFAULT, AVX2, AVX512); all compute the same
    step (to one rounding: FMA contraction and Sleef vs libm tanh), in each of its loops. The
    other tests hold the best build to the reference."""
    import os
    import subprocess
    import sys

    results = {}
    for cap in ("default", "avx2", "best"):
        env = dict(os.environ, SOFTSIGN_CPU_CAPABILITY=cap)
        path = tmp_path / f"{cap}.pt"
        subprocess.run([sys.executable, "-c", PORTABLE_RUN, str(path)], env=env, check=True)
        results[cap] = torch.load(path)
    for other in ("avx2", "best"):
        for a, b in zip(results["default"], results[other]):
            tol = {torch.bfloat16: 2**-7, torch.float16: 2**-10}.get(a.dtype, 1e-6)
            torch.testing.assert_close(a, b, rtol=tol, atol=tol)


SELECTION_RUN = """
import torch, softsign
ops = torch.ops.softsign
gen = torch.Generator().manual_seed(5)
cases = [dict(momentum=0.9, dampening=0.0, nesterov=False, maximize=False),
         dict(momentum=0.8, dampening=0.0, nesterov=True, maximize=True),
         dict(momentum=0.5, dampening=0.3, nesterov=False, maximize=False)]
for kw in cases:
    for dtype in (torch.float32, torch.bfloat16, torch.float64):
        for scale in (None, torch.tensor(4.0)):
            mk = lambda n: (torch.randn(n, generator=gen) * 3).to(dtype)
            grads, bufs, fresh = [mk(5000), mk(7)], [mk(5000), mk(7)], [mk(300)]
            got = ops.direction_median_mad(grads, bufs, fresh, **kw, grad_scale=scale)
            dirs = ops.soft_sign_direction(grads, bufs, **kw, first_step=False, grad_scale=scale)
            dirs += ops.soft_sign_direction(fresh, [], **kw, first_step=True, grad_scale=scale)
            x = torch.cat([d.reshape(-1).double() for d in dirs])
            mu = x.median()
            assert got[0].item() == mu.item(), (kw, dtype)
            assert got[1].item() == (x - mu).abs().median().item(), (kw, dtype)
"""


def test_portable_cpu_selection_is_exact():
    """The selection's CPU kernel is built per capability too; the lesser builds must be
    exact as well (the tests above run the best one)."""
    import os
    import subprocess
    import sys

    for cap in ("default", "avx2"):  # "avx2" runs the best build up to AVX2
        env = dict(os.environ, SOFTSIGN_CPU_CAPABILITY=cap)
        subprocess.run([sys.executable, "-c", SELECTION_RUN], env=env, check=True)


def test_soft_phase_tanh_is_accurate(device):
    """With lr 1, no momentum and no decay the soft step writes -tanh(tau * g): within 2 ulp
    of float64 tanh over 1e-30..30 of either sign (Note [fast tanh] on the CPU)."""
    import numpy as np

    mag = torch.logspace(-30, 1.5, 400_000, dtype=torch.float64)
    g = torch.cat([mag, -mag, torch.tensor([0.0, -0.0, 0.625, -0.625, 0.62499994])]).float()
    p = torch.zeros_like(g, device=device)
    tau = torch.tensor(1.0, dtype=torch.float64, device=device)
    ops.soft_sign_step_(
        [p], [g.to(device)], [], **step_kwargs(lr=1.0, momentum=0.0, temperature=tau)
    )
    got = -p.cpu().double()
    want = torch.tanh(g.double())
    ulp = torch.from_numpy(np.spacing(want.float().abs().numpy())).double()
    assert ((got - want).abs() / ulp).max().item() <= 2.0


def test_params_whose_elements_overlap_are_refused_before_any_change():
    a = torch.ones(3)
    buf = torch.zeros(3)
    overlapping = torch.zeros(1).expand(3)  # one element seen three times
    with pytest.raises(RuntimeError, match="overlap"):
        ops.soft_sign_step_(
            [a, overlapping],
            [torch.ones(3), torch.ones(3)],
            [buf, torch.zeros(3)],
            **step_kwargs(),
        )
    assert torch.equal(a, torch.ones(3)) and torch.equal(buf, torch.zeros(3))


# ---- Muon's stages -----------------------------------------------------------------------

MUON_SHAPES = [(6, 4), (6, 4), (4, 9), (3, 2, 5), (0, 3), (7, 7)]


def _muon_lists(dtype, device, shapes=MUON_SHAPES, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=gen).to(device, dtype) for s in shapes] for _ in range(3)]


def _muon_kwargs(temperature, found_inf, soft_map, device, **over):
    tau = None if temperature is None else torch.tensor(temperature, dtype=torch.float64)
    found = None if found_inf is None else torch.tensor(found_inf)
    kw = dict(lr=0.02, momentum=0.95, nesterov=True, weight_decay=0.1, ns_steps=5)
    kw.update(adjust_lr="original", soft_map=soft_map, soft_steps=5)
    kw.update(temperature=tau and tau.to(device), found_inf=found and found.to(device))
    return dict(kw, **over)


def _muon_stages(params, grads, bufs, kw, matrix_dims=None, gather=None):
    """muon_step_ by its stage ops; `gather` (shards -> whole matrices -> shards) stands
    between the momentum and the map as the sharded path's exchange does."""
    # muon_step_ guards its stages with found_inf and, when given, a failed fit too.
    guard = kw["found_inf"]
    if guard is not None and kw["temperature"] is not None:
        guard = ((guard != 0) | ~torch.isfinite(kw["temperature"])).float()
    dirs = [torch.empty_like(g) for g in grads]
    ops.muon_momentum_(
        grads, bufs, dirs, momentum=kw["momentum"], nesterov=kw["nesterov"], found_inf=guard
    )
    whole, back = gather(dirs) if gather else (dirs, lambda x: x)
    mapped = ops.muon_orthogonalize(
        whole,
        ns_steps=kw["ns_steps"],
        temperature=kw["temperature"],
        soft_map=kw["soft_map"],
        soft_steps=kw["soft_steps"],
    )
    ops.muon_apply_(
        params,
        back(mapped),
        lr=kw["lr"],
        weight_decay=kw["weight_decay"],
        adjust_lr=kw["adjust_lr"],
        matrix_dims=matrix_dims,
        found_inf=guard,
    )


def _bits_equal(a, b):
    return all(
        x.dtype == y.dtype and torch.equal(x.view(torch.int8), y.view(torch.int8))
        for x, y in zip(a, b)
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize(
    "temperature, found_inf, soft_map",
    [
        (None, None, "newton_schulz"),
        (None, 1.0, "newton_schulz"),
        (30.0, None, "newton_schulz"),
        (30.0, 0.0, "accurate"),
        (math.nan, None, "accurate"),
        (math.nan, 0.0, "newton_schulz"),
        (math.inf, 1.0, "accurate"),
    ],
)
@pytest.mark.parametrize("nesterov", [True, False])
def test_muon_stages_compose_to_muon_step(
    dtype, temperature, found_inf, soft_map, nesterov, device
):
    """muon_momentum_, muon_orthogonalize and muon_apply_ in turn step bit for bit as
    muon_step_ (which runs them per same-shape bucket), buffers included, through the
    no-op rules: a failed fit or a nonzero found_inf."""
    kw = _muon_kwargs(temperature, found_inf, soft_map, device, nesterov=nesterov)
    fused = _muon_lists(dtype, device)
    staged = [[t.clone() for t in ts] for ts in fused]
    for adjust_lr in ("original", "match_rms_adamw"):
        kw["adjust_lr"] = adjust_lr
        ops.muon_step_(*fused, **kw)
        _muon_stages(*staged, kw)
        assert _bits_equal(fused[0] + fused[2], staged[0] + staged[2])


@pytest.mark.parametrize("temperature", [None, 30.0])
def test_muon_stages_on_shards_step_as_the_whole(temperature, device):
    """The sharded path's order: the momentum and the apply on row shards, the map of the
    gathered whole matrices, the update scale of the whole (matrix_dims). Shards of whole
    SIMD vectors step bit for bit as the whole matrix does in muon_step_."""
    shapes = [(128, 64), (64, 128), (32, 4, 16)]
    whole = _muon_lists(torch.float32, device, shapes)
    shards = [[s for t in ts for s in t.chunk(2)] for ts in [[t.clone() for t in x] for x in whole]]
    kw = _muon_kwargs(temperature, None, "accurate", device)
    ops.muon_step_(*whole, **kw)

    def gather(dirs):
        mats = [torch.cat(dirs[i : i + 2]) for i in range(0, len(dirs), 2)]
        return mats, lambda out: [s for m in out for s in m.chunk(2)]

    dims = [n for s in shapes for _ in range(2) for n in (s[0], math.prod(s[1:]))]
    _muon_stages(*shards, kw, matrix_dims=dims, gather=gather)
    for got, want in zip((shards[0], shards[2]), (whole[0], whole[2])):
        assert _bits_equal([torch.cat(got[i : i + 2]) for i in range(0, len(got), 2)], want)


def test_muon_stage_ops_check_their_inputs():
    p = torch.zeros(4, 4)
    with pytest.raises(RuntimeError, match="shape"):
        ops.muon_momentum_([p], [torch.zeros(4, 5)], [p.clone()], momentum=0.9, nesterov=True)
    with pytest.raises(RuntimeError, match="momentum"):
        ops.muon_momentum_([p], [torch.zeros(4, 4)], [p.clone()], momentum=1.0, nesterov=True)
    with pytest.raises(RuntimeError, match="matrix"):
        ops.muon_orthogonalize(
            [torch.zeros(4)], ns_steps=5, temperature=None, soft_map="newton_schulz", soft_steps=5
        )
    apply_kw = dict(lr=0.1, weight_decay=0.0, adjust_lr="original")
    with pytest.raises(RuntimeError, match="matrix_dims"):
        ops.muon_apply_([p], [torch.ones(4, 4)], **apply_kw, matrix_dims=[4])
    with pytest.raises(RuntimeError, match="adjust_lr"):
        ops.muon_apply_([p], [torch.ones(4, 4)], **dict(apply_kw, adjust_lr="rms"))
    assert torch.equal(p, torch.zeros(4, 4))


def test_opcheck_muon_stages(device):
    ps, gs, bs = _muon_lists(torch.float32, device, [(6, 4), (3, 2, 5)])
    tau = torch.tensor(30.0, dtype=torch.float64, device=device)
    torch.library.opcheck(
        ops.muon_momentum_.default,
        (gs, bs, [torch.empty_like(g) for g in gs]),
        dict(momentum=0.9, nesterov=False, found_inf=None),
    )
    map_kw = dict(ns_steps=5, temperature=tau, soft_map="accurate", soft_steps=5)
    torch.library.opcheck(ops.muon_orthogonalize.default, (gs,), map_kw)
    apply_kw = dict(lr=0.1, weight_decay=0.1, adjust_lr="original", matrix_dims=None)
    torch.library.opcheck(ops.muon_apply_.default, (ps, gs), dict(apply_kw, found_inf=None))
