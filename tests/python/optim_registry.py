"""The optimizers of the contract tests (test_contract.py), one OptimInfo each, in the
style of torch's OptimizerInfo (torch/testing/_internal/common_optimizers.py).

An optimizer joins every contract by ONE entry in OPTIMIZERS. Its fields:

    name        the optimizer: the class softsign.<name>, the float64 reference
                softsign.reference.<name>Reference and the C++ binding softsign._C.<name>;
                the test id.
    options     constructor keywords of a short run that crosses every phase. With a
                schedule: total_steps and alpha_sign (or sign_steps and transition_steps)
                that put the fit at step S + 1 <= ~8 and give a transition of T >= 3 steps.
                The reference and the C++ binding get the same keywords: only options all
                of them take (never `fused`: the fused contract passes it).
    steps       the length of the run: more than S + T, so that it ends after the
                transition (checked); ~14 at most.
    params      params(dtype, device, seed) -> param-group dicts ({"params": [small
                leaf tensors], other group keys such as use_muon}); make it with shaped().
                cpp_flat needs a single group.
    reference   how the reference runs, reference(cls, groups, dtype, options) -> a
                Reference, float64: per_group(extra) for a class of one param list
                (SoftSignumReference's interface: Cls(params, **options), .step(grads),
                .params, .tau (None in the sign phase), its options in the dict .options (the
                LR-scheduler contract sets .options["lr"]), .last_directions to forgive sign
                flips in the sign phase), or grouped(extra) for one of group dicts
                (SoftMuonReference's). extra(dtype) -> keywords the reference needs for that
                dtype: storage(dtype), bf16_newton_schulz(dtype).
    compare     compare(opt, ref, k, dtype) holds the optimizer to the reference after step
                k: `elementwise` (updates that are a function of each element: sign, tanh;
                conftest.TOLERANCES) or `spectral` (of whole matrices, through bf16
                Newton-Schulz).
    dtypes      the parameter dtypes it claims (default: float32, float64, bf16, fp16).
    fused       the values its `fused=` option takes; () when it has none.
    cpp         how the binding is called, cpp(binding, groups, options) -> the C++ optimizer
                over those tensors, or None: cpp_flat for a binding of one param list,
                cpp_groups for one of (params, use_muon) pairs. It must step bit for bit as
                the Python class and resume bit for bit through save/load.
    invalid     Bad(options, match, group=0, cpp=True) cases: option values the constructor
                refuses with ValueError("Invalid ...<match>..."), as does add_param_group for
                params() group `group` (None: a constructor option only) and, with cpp, the
                C++ binding (RuntimeError "Invalid").
    group_options  per-group overrides zipped with a second params() call's groups (the
                param-groups contract): another lr, momentum, schedule...
    variants    {name: option overrides} run by the parity (float32, float64) and C++
                contracts as well.
    plain       a soft optimizer's plain entry (SOFT_SIGNUM's is SIGNUM): with its transition
                beyond the run the soft one steps bit for bit as the plain one; None for
                the plain optimizers.
    skips       {contract: reason}: contracts (names in CONTRACTS) known not to hold, each
                with why; those tests are skipped with that reason.

The property unfused_exact is read off the optimizer, not written in its entry: False where
its unfused momentum rule registers with exact=False (Lion's lerp), whose fused=False path
is then equal to the kernel's up to rounding rather than bit for bit, so the fused contract
allows a rare sign flip where a direction is within rounding of 0.

The element-wise optimizers other than Signum have no hand-written entry: derived(name)
builds theirs from their option table (the end of this file).

An entry with a schedule (total_steps and alpha_sign, or sign_steps and transition_steps,
in its options) fits a temperature at step S + 1: opt.temperature(group) is compared with
the reference's. A soft optimizer is soft(PLAIN, schedule, steps=..., group_schedule=...):
its plain one's entry with a schedule, as SOFT_SIGNUM is SIGNUM's below. All go into OPTIMIZERS.
Everything is small (the file runs in seconds on two
cores): a few tensors, the largest of 70001 elements (several CPU chunks of the fused
kernels).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import pytest
import torch

import softsign
from softsign import reference as ref_lib
from softsign._python_step import FOREACH_RULES
from softsign.optim._elementwise import ElementwiseOptimizer, rule_keywords
from softsign.reference.options import Pair, Range

from conftest import TOLERANCES

CONTRACTS = (
    "parity",
    "param_groups",
    "lr_scheduler",
    "resume",
    "invalid",
    "sparse",
    "complex",
    "non_finite",
    "dtypes",
    "fused",
    "cpp",
    "plain",
    "grad_scaler",
    "lr_tensor",
    "bare_tensor",
)
LOW_PRECISION = (torch.bfloat16, torch.float16)
ALL_DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
ULP = {torch.bfloat16: 2**-7, torch.float16: 2**-10}  # spacing of [1, 2)


class Bad(NamedTuple):
    """Options that must be refused. `group`: index of the params() group the options are
    added to as a new group through add_param_group (None: a constructor option only).
    `cpp`: the C++ binding takes these options and must refuse them too."""

    options: dict
    match: str
    group: int | None = 0
    cpp: bool = True


@dataclass(frozen=True)
class OptimInfo:
    name: str
    options: dict
    steps: int
    params: Callable
    reference: Callable
    compare: Callable
    dtypes: tuple = ALL_DTYPES
    fused: tuple = ()
    cpp: Callable | None = None
    invalid: tuple = ()
    group_options: tuple = ()
    variants: dict = field(default_factory=dict)
    plain: OptimInfo | None = None
    skips: dict = field(default_factory=dict)

    def __post_init__(self):
        unknown = set(self.skips) - set(CONTRACTS)
        assert not unknown, f"{self.name}: skips name unknown contracts {unknown}"
        S, T = self.phases()
        assert not self.schedule or S + T < self.steps, f"{self.name}: the run ends too soon"

    def __repr__(self) -> str:  # the test id
        return self.name

    @property
    def cls(self) -> type:
        return getattr(softsign, self.name)

    @property
    def unfused_exact(self) -> bool:
        """Whether its fused=False path rounds as the kernels do: its unfused momentum rule's
        registration says so; an optimizer that is not element-wise has no such rule."""
        if not issubclass(self.cls, ElementwiseOptimizer):
            return True
        return FOREACH_RULES[rule_keywords(self.cls).get("momentum_rule", "heavy_ball")].exact

    @property
    def schedule(self) -> bool:
        """Whether it fits a temperature (at step S + 1): its options hold a schedule."""
        return self.phases()[0] != math.inf

    def make_reference(self, groups, dtype, options) -> Reference:
        return self.reference(getattr(ref_lib, f"{self.name}Reference"), groups, dtype, options)

    def make_cpp(self, groups, options):
        from softsign import _C

        return self.cpp(getattr(_C, self.name), groups, options)

    def phases(self, options=None) -> tuple[float, int]:
        """(S, T) of a group with these options (the entry's): S is inf without a schedule."""
        return phases(self.options if options is None else options)


def phases(options) -> tuple[float, int]:
    """(S, T) of a group with these options: S is inf without a schedule."""
    if options.get("total_steps") is None and options.get("sign_steps") is None:
        return math.inf, 1
    return ref_lib.resolve_phases(
        options.get("total_steps"),
        options.get("alpha_sign", 0.9),
        options.get("sign_steps"),
        options.get("transition_steps"),
    )


def cases(predicate=lambda info: True, contract=None, expand=lambda info: [()]):
    """pytest.params of the entries that take part (predicate), one per tuple of
    expand(info), skipped with the entry's reason where `contract` is in its skips."""
    out = []
    for info in OPTIMIZERS:
        if not predicate(info):
            continue
        reason = info.skips.get(contract)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        for extra in expand(info):
            ids = "-".join([info.name, *(_id(x) for x in extra)])
            out.append(pytest.param(info, *extra, marks=marks, id=ids))
    return out


def _id(x) -> str:
    return str(x).removeprefix("torch.") if isinstance(x, torch.dtype) else str(x)


# ---- params and gradients -----------------------------------------------------------------


def randn_params(shapes, dtype=torch.float32, device="cpu", seed=0) -> list:
    """Leaf tensors of these shapes with N(0, 1) entries (drawn in float32, then cast)."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=gen).to(dtype).to(device).requires_grad_() for s in shapes]


def shaped(*groups):
    """A params factory: one group per (shapes, group keys) pair, N(0, 1) entries."""

    def make(dtype=torch.float32, device="cpu", seed=0):
        tensors = randn_params([s for shapes, _ in groups for s in shapes], dtype, device, seed)
        out = []
        for shapes, keys in groups:
            out.append(dict(keys, params=tensors[: len(shapes)]))
            tensors = tensors[len(shapes) :]
        return out

    return make


def flat(groups) -> list:
    return [p for g in groups for p in g["params"]]


def clone_params(params, dtype=None) -> list:
    """Copies of the params (cast to `dtype` if given), leaves with requires_grad."""
    return [p.detach().to(dtype, copy=True).requires_grad_() for p in params]


def clone_groups(groups, dtype=None) -> list:
    """The groups over copies of their params (cast to `dtype` if given)."""
    return [dict(g, params=clone_params(g["params"], dtype)) for g in groups]


def grads_for(params, k, seed=1) -> list:
    """The gradients of step k: N(0, 1) scaled per tensor by 1, 0.1 or 0.01 (the spread of
    magnitudes of a real model), in each parameter's dtype and on its device."""
    gen = torch.Generator().manual_seed(seed * 1000 + k)
    return [
        (torch.randn(p.shape, generator=gen) * 10.0 ** (-(i % 3))).to(p.dtype).to(p.device)
        for i, p in enumerate(params)
    ]


def train(runs, steps, *, start=1, ref=None, each=None):
    """Steps start..start+steps-1 of every (optimizer, params) pair in `runs`, all on the
    gradients of the first pair's params (cast to each param's dtype); `ref` steps on them
    too; each(k) runs after every step. No step may change a gradient: that is checked."""
    for k in range(start, start + steps):
        gs = grads_for(runs[0][1], k)
        for opt, params in runs:
            mine = [g.to(p.dtype, copy=True) for p, g in zip(params, gs)]
            for p, g in zip(params, mine):
                p.grad = g
            opt.step()
            assert all(torch.equal(p.grad, g.to(p.dtype)) for p, g in zip(params, gs)), k
            del mine
        if ref is not None:
            ref.step(gs)
        if each is not None:
            each(k)


def doubled(info, dtype=torch.float32, device="cpu") -> list:
    """info.params() twice over (seeds 0 and 1): the second set of groups comes after the
    first in every step, so a refusal it causes must leave the first as it was too."""
    return info.params(dtype, device) + info.params(dtype, device, seed=1)


# ---- references -----------------------------------------------------------------------------


class Reference:
    """The float64 reference of a run over param groups, flat over their params: .params,
    .step(grads), .temperature(gi), .set_lr(gi, lr), .group_of[i] (param i's group),
    .options[gi] (group gi's options), .last_directions[i] (None where unknown)."""

    def __init__(self, groups, options):
        self.group_of = [gi for gi, g in enumerate(groups) for _ in g["params"]]
        self.options = [
            dict(options, **{k: v for k, v in g.items() if k != "params"}) for g in groups
        ]
        self.last_directions = [None] * len(self.group_of)


class _PerGroup(Reference):
    def __init__(self, cls, groups, options):
        super().__init__(groups, options)
        self.refs = [
            cls([p.detach().cpu() for p in g["params"]], **o) for g, o in zip(groups, self.options)
        ]
        self.sizes = [len(g["params"]) for g in groups]

    @property
    def params(self):
        return [p for r in self.refs for p in r.params]

    def step(self, grads):
        grads = [None if g is None else g.cpu() for g in grads]
        for r, n in zip(self.refs, self.sizes):
            r.step(grads[:n])
            grads = grads[n:]
        self.last_directions = [
            d
            for r, n in zip(self.refs, self.sizes)
            for d in getattr(r, "last_directions", [None] * n)
        ]

    def temperature(self, gi):
        return self.refs[gi].tau

    def set_lr(self, gi, lr):
        self.refs[gi].options["lr"] = lr


class _Grouped(Reference):
    def __init__(self, cls, groups, options):
        super().__init__(groups, options)
        cpu = [dict(g, params=[p.detach().cpu() for p in g["params"]]) for g in groups]
        self.ref = cls(cpu, **options)

    @property
    def params(self):
        return self.ref.params

    def step(self, grads):
        self.ref.step([None if g is None else g.cpu() for g in grads])

    def temperature(self, gi):
        return self.ref.temperature(gi)

    def set_lr(self, gi, lr):
        group = self.ref.groups[gi]
        (group if group["use_muon"] else group["adamw"])["lr"] = lr


def per_group(extra=lambda dtype: {}):
    """One reference `cls` per param group (SoftSignumReference's interface)."""
    return lambda cls, groups, dtype, options: _PerGroup(cls, groups, dict(options, **extra(dtype)))


def grouped(extra=lambda dtype: {}):
    """One reference `cls` over all groups (SoftMuonReference's interface)."""
    return lambda cls, groups, dtype, options: _Grouped(cls, groups, dict(options, **extra(dtype)))


def storage(dtype) -> dict:
    """The reference rounds its parameters and state to a low-precision dtype after each
    step, as the optimizer stores them; float32 and float64 runs stay float64 throughout."""
    return dict(storage_dtype=dtype) if dtype in LOW_PRECISION else {}


def bf16_newton_schulz(dtype) -> dict:
    """Newton-Schulz runs in bfloat16 for every parameter dtype but float64 (muon_step_)."""
    return dict(
        storage(dtype), ns_dtype=torch.float64 if dtype == torch.float64 else torch.bfloat16
    )


# ---- comparisons ----------------------------------------------------------------------------


def check_temperatures(opt, ref, rel):
    for gi in range(len(ref.options)):
        got, want = opt.temperature(gi), ref.temperature(gi)
        assert (got is None) == (want is None), (gi, got, want)
        if want is not None:
            assert got == pytest.approx(want, rel=rel), gi


def elementwise(opt, ref, k, dtype):
    """conftest.TOLERANCES per element; the temperatures to 1e-5 (the fit reads float32
    directions, the reference float64 ones), 1e-12 in float64."""
    for i, p in enumerate(flat(opt.param_groups)):
        got, want = p.detach().double().cpu(), ref.params[i]
        if ref.temperature(ref.group_of[i]) is None and ref.last_directions[i] is not None:
            _forgive_sign_flips(got, want, ref.last_directions[i], dtype)
        torch.testing.assert_close(
            got, want, **TOLERANCES[dtype], msg=lambda m, i=i: f"step {k}, param {i}: {m}"
        )
    check_temperatures(opt, ref, rel=1e-12 if dtype == torch.float64 else 1e-5)


def _forgive_sign_flips(got, want, d, dtype):
    """In the sign phase a direction within rounding of zero may take the other sign in
    float32 than in float64: a 2 * lr jump that is not an error. Such elements, and only
    those, are copied into the reference so the comparison goes on. Within rounding: 1e-5
    of the largest |d|, or an ulp of a bf16/fp16 storage format (the buffers d comes from
    are rounded to it every step)."""
    near_zero = d.abs() <= max(1e-5, ULP.get(dtype, 0.0)) * d.abs().max()
    flips = ~torch.isclose(got, want, **TOLERANCES[dtype]) & near_zero
    assert flips.sum() <= max(1, d.numel() // 10000), "too many sign flips for rounding"
    want[flips] = got[flips]


def spectral(opt, ref, k, dtype):
    """float64 parameters run every op in float64: the sign phase agrees to 1e-10, the
    "newton_schulz" soft map to 1e-6 (the schedule statistic comes from Gram eigenvalues,
    whose small sigmas carry ~1e-8 relative error), the "accurate" one within its 1e-2
    bound per transition step. Other dtypes orthogonalize in bf16 as the reference
    emulates: elements of O (~0.3-1) agree to a few bf16 ulps, so the parameters to ~5% of
    lr per step; in bf16/fp16 storage each step may also round a parameter to the other
    neighbour than the reference does (the decay and the update round one after the
    other): an ulp of |p| per step. Temperatures to 1e-5."""
    lr = max(o["lr"] for o in ref.options)
    for i, p in enumerate(flat(opt.param_groups)):
        got, want = p.detach().double().cpu(), ref.params[i]
        options = ref.options[ref.group_of[i]]
        S, _ = phases(options)
        if dtype != torch.float64:
            tol = dict(rtol=k * ULP.get(dtype, 0.0), atol=0.05 * lr * k)
        elif k <= S:
            tol = dict(rtol=0, atol=1e-10)
        elif options.get("soft_map") == "accurate":
            tol = dict(rtol=0, atol=1e-2 * lr * (k - S))
        else:
            tol = dict(rtol=0, atol=1e-6)
        torch.testing.assert_close(got, want, **tol, msg=lambda m, i=i: f"step {k}, param {i}: {m}")
    check_temperatures(opt, ref, rel=1e-5)


# ---- C++ bindings ------------------------------------------------------------------------------


def cpp_flat(binding, groups, options):
    """binding(params, **options): one param list, one group."""
    assert len(groups) == 1, f"{binding.__name__} takes one param group"
    return binding(groups[0]["params"], **options)


def cpp_groups(binding, groups, options):
    """binding([(params, use_muon), ...], **options)."""
    return binding([(g["params"], g.get("use_muon", True)) for g in groups], **options)


# ---- bad options --------------------------------------------------------------------------------

SGD_INVALID = (
    Bad(dict(lr=-1.0), "learning rate"),
    Bad(dict(lr=torch.tensor(float("nan"))), "learning rate", cpp=False),
    Bad(dict(momentum=-0.1), "momentum"),
    Bad(dict(momentum=2.0), "momentum"),
    Bad(dict(dampening=1.5), "dampening"),
    Bad(dict(weight_decay=-1.0), "weight_decay"),
    Bad(dict(nesterov=True, momentum=0.0), "nesterov"),
)
SCHEDULE_INVALID = (
    Bad(dict(alpha_sign=-0.1), "alpha_sign"),
    Bad(dict(alpha_sign=1.5), "alpha_sign"),
    Bad(dict(eps=0.0), "eps"),
    Bad(dict(eps=1.0), "eps"),
    Bad(dict(newton_iters=-1), "newton_iters"),
    Bad(dict(newton_iters=2.5), "newton_iters", cpp=False),
    Bad(dict(tmax=0.5), "tmax"),
    Bad(dict(tmax=1e300), "tmax"),  # tau beyond float32 would write NaN
    Bad(dict(total_steps=0), "total_steps"),
    Bad(dict(total_steps=None, sign_steps=None, transition_steps=None), "total_steps"),
    Bad(dict(total_steps=None, sign_steps=5, transition_steps=None), "transition_steps"),
    Bad(dict(sign_steps=-1), "sign_steps"),
    Bad(dict(transition_steps=0), "transition_steps"),
    Bad(dict(sign_steps=3, sign_iters=4), "sign_iters", cpp=False),
)
MUON_INVALID = (
    Bad(dict(lr=-1.0), "learning rate"),
    Bad(dict(lr=torch.tensor(float("nan"))), "learning rate", cpp=False),
    # torch.optim's text, which users and tests match; in a matrix and an AdamW group.
    Bad(dict(lr=torch.tensor([0.02, 0.01])), "Tensor lr must be 1-element", cpp=False),
    Bad(dict(lr=torch.zeros(2, 1)), "Tensor lr must be 1-element", group=1, cpp=False),
    Bad(dict(momentum=1.0), "momentum"),
    Bad(dict(weight_decay=-0.1), "weight_decay"),
    Bad(dict(ns_steps=-1), "ns_steps"),
    Bad(dict(adjust_lr="spectral"), "adjust_lr"),
    Bad(dict(adamw_lr=-1.0), "AdamW learning rate", group=None),
    Bad(dict(adamw_lr=torch.ones(2)), "Tensor lr must be 1-element", group=None, cpp=False),
    Bad(dict(adamw_betas=(0.9, 1.5)), "AdamW beta", group=None),
    Bad(dict(adamw_eps=-1.0), "AdamW eps", group=None),
    Bad(dict(adamw_weight_decay=-1.0), "AdamW weight_decay", group=None),
)
SOFT_MUON_INVALID = (
    Bad(dict(soft_map="svd"), "soft_map"),
    Bad(dict(soft_steps=-1), "soft_steps"),
)

# ---- the registry ---------------------------------------------------------------------------


SIGN_SHAPES = [(1,), (7,), (33, 5), (3, 4, 5), (70001,)]  # tiny to several CPU chunks
SIGN_PARAMS = shaped((SIGN_SHAPES, {}))
# (out, in) matrices (square, wide, tall, one shape twice for batching) and a conv weight on
# the matrix path; a vector and an embedding-like table in the AdamW group.
MUON_PARAMS = shaped(
    ([(16, 8), (16, 8), (8, 24), (12, 12), (6, 4, 3, 3)], dict(use_muon=True)),
    ([(10,), (5, 3)], dict(use_muon=False)),
)
SIGN_OPTIONS = dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.05)
MUON_OPTIONS = dict(lr=0.02, weight_decay=0.05, adamw_lr=1e-3, adamw_weight_decay=0.01)
# S = 6, T = 6 (SoftSignum) / S = 4, T = 6 (SoftMuon): the fit at step S + 1, the run two
# steps past the transition.
SOFT_SIGN_SCHEDULE = dict(total_steps=12, alpha_sign=0.5)
SOFT_MUON_SCHEDULE = dict(total_steps=10, alpha_sign=0.4)
SIGN_GROUP_SCHEDULE = dict(sign_steps=3, transition_steps=5)
SIGN_VARIANTS = {
    "no_momentum": dict(momentum=0.0, nesterov=False),
    "dampening_maximize": dict(momentum=0.8, dampening=0.5, nesterov=False, maximize=True),
}
SIGN_GROUP = dict(lr=3e-3, momentum=0.5, weight_decay=0.01, maximize=True)
MUON_GROUPS = (
    dict(lr=0.03, momentum=0.9, nesterov=False, weight_decay=0.1, adjust_lr="match_rms_adamw"),
    dict(lr=3e-3, betas=(0.8, 0.9), eps=1e-8, weight_decay=0.02),
)

SIGNUM = OptimInfo(
    name="Signum",
    options=SIGN_OPTIONS,
    steps=8,
    params=SIGN_PARAMS,
    reference=per_group(storage),
    compare=elementwise,
    fused=(None, True, False),
    cpp=cpp_flat,
    invalid=SGD_INVALID,
    group_options=(SIGN_GROUP,),
    variants=SIGN_VARIANTS,
)
MUON = OptimInfo(
    name="Muon",
    options=MUON_OPTIONS,
    steps=6,
    params=MUON_PARAMS,
    reference=grouped(bf16_newton_schulz),
    compare=spectral,
    cpp=cpp_groups,
    invalid=MUON_INVALID,
    group_options=MUON_GROUPS,
)


def soft(plain, schedule, *, steps, group_schedule, invalid=(), **over):
    """The entry of plain's soft optimizer, Soft<plain.name>: plain's options with `schedule`,
    plain's bad options with the schedule's (and `invalid`), and its first group of its own
    options with a schedule of its own too (`group_schedule`)."""
    first, *rest = plain.group_options
    # alpha_sign = 0: the transition from the first step, the fit at step 1 (the paper's
    # unigram experiment).
    # transition_steps = 1e12: the temperature of each step is computed alone (a schedule of
    # every step would be 8 TB). Its first temperatures are tmax: 1e3 keeps the map soft
    # (at 1e9 it is the sign, whose float32 flips near 0 the parity forgives only in the
    # sign phase).
    variants = dict(
        plain.variants or {},
        fit_at_first_step=dict(alpha_sign=0.0),
        long_transition=dict(total_steps=None, sign_steps=3, transition_steps=10**12, tmax=1e3),
    )
    variants.update(over.pop("variants", {}))
    return replace(
        plain,
        name="Soft" + plain.name,
        variants=variants,
        options=dict(plain.options, **schedule),
        steps=steps,
        invalid=plain.invalid + SCHEDULE_INVALID + invalid,
        group_options=(dict(first, **group_schedule), *rest),
        plain=plain,
        **over,
    )


SOFT_SIGNUM = soft(SIGNUM, SOFT_SIGN_SCHEDULE, steps=14, group_schedule=SIGN_GROUP_SCHEDULE)
SOFT_MUON = soft(
    MUON,
    SOFT_MUON_SCHEDULE,
    steps=12,
    group_schedule=dict(sign_steps=2, transition_steps=5),
    invalid=SOFT_MUON_INVALID,
    variants={"accurate": dict(soft_map="accurate")},
)

# ---- the element-wise optimizers without an entry of their own ------------------------------
# Every other pair of softsign.elementwise_pairs() (Lion, SoftLion) gets SIGNUM's entry with
# the run's options, the bad options, a second group and the variants derived from its option
# table (python/softsign/reference/<module>.py): a new element-wise optimizer joins every
# contract with no edit here.


def _numbers(option) -> list:
    """The (Range, value) pairs of an option that is a float within a Range, or a Pair of
    them; [] for flags, choices and integers."""
    check, value = option.check, option.default
    if isinstance(check, Pair) and isinstance(value, tuple):
        return [(check.item, v) for v in value]
    if isinstance(check, Range) and not check.integer and isinstance(value, float):
        return [(check, value)]
    return []


def _with(option, values):
    """`values` as the option takes them: a tuple for a Pair, else the one value."""
    return tuple(values) if isinstance(option.check, Pair) else values[0]


def derived_invalid(table) -> tuple:
    """A value beyond each bound of each number (and a one-tuple for each pair, which
    the binding's pair cast refuses before any check), refused with the option's label."""
    bad = [Bad(dict(lr=torch.tensor(float("nan"))), "learning rate", cpp=False)]
    for o in table.options:
        numbers = _numbers(o)
        if isinstance(o.check, Pair):
            bad.append(Bad({o.name: o.default[:1]}, o.check.item_label, cpp=False))
        for i, (rng, _) in enumerate(numbers):
            match = o.check.item_label if isinstance(o.check, Pair) else (o.label or o.name)
            for edge, beyond in ((rng.low, -1.0), (rng.high, 0.5)):
                if edge is not None:
                    values = [v for _, v in numbers]
                    values[i] = edge + beyond
                    bad.append(Bad({o.name: _with(o, values)}, match))
    return tuple(bad)


def derived_group(table) -> dict:
    """A second group's options: another lr and weight decay, maximize, and each other number
    moved a tenth of the way to its lower bound (Lion's betas (0.9, 0.99) -> (0.81, 0.891))."""
    group = dict(lr=3e-3)
    for o in table.options:
        numbers = _numbers(o)
        if o.name == "weight_decay":
            group[o.name] = 0.01
        elif o.name == "maximize":
            group[o.name] = True
        elif o.name != "lr" and numbers:
            low = [0.0 if r.low is None else r.low for r, _ in numbers]
            group[o.name] = _with(o, [lo + 0.9 * (v - lo) for lo, (_, v) in zip(low, numbers)])
    table.check(group)
    return group


def derived_variants(table) -> dict:
    """maximize, and every number but lr at its closed lower bound (Lion's betas (0, 0):
    c = g and a buffer of g, signSGD's step)."""
    variants = {"maximize": dict(maximize=True)} if "maximize" in table else {}
    edges = {}
    for o in table.options:
        numbers = _numbers(o)
        if (
            o.name != "lr"
            and numbers
            and all(r.low is not None and not r.low_open for r, _ in numbers)
        ):
            edges[o.name] = _with(o, [r.low for r, _ in numbers])
    if edges:
        table.check(edges)
        variants["lower_bounds"] = edges
    return variants


def derived(name: str) -> OptimInfo:
    """The entry of the plain element-wise optimizer `name`."""
    table = ref_lib.options.OPTIONS[name]
    options = dict(lr=1e-2, weight_decay=0.05) if "weight_decay" in table else dict(lr=1e-2)
    return replace(
        SIGNUM,
        name=name,
        options=options,
        invalid=derived_invalid(table),
        group_options=(derived_group(table),),
        variants=derived_variants(table),
    )


DERIVED = []
for _name in softsign.elementwise_pairs():
    if _name != SIGNUM.name:
        _plain = derived(_name)
        DERIVED += [
            _plain,
            soft(_plain, SOFT_SIGN_SCHEDULE, steps=14, group_schedule=SIGN_GROUP_SCHEDULE),
        ]

OPTIMIZERS = (SIGNUM, SOFT_SIGNUM, *DERIVED, MUON, SOFT_MUON)
