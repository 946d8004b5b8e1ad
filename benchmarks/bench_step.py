"""optimizer.step() time and peak memory of softsign's optimizers against torch's, on one
device in one run: SoftSignum (sign and soft phase), Signum and the plain optimizer of every
other pair of softsign.elementwise_pairs() (Lion, ...), their pure-PyTorch paths
(fused=False), pytorch-optimizer's SignSGD and Lion where installed, torch's SGD (momentum)
and AdamW (fused and foreach); on the hidden matrices only: softsign's SoftMuon (both soft
maps) and Muon, torch.optim.Muon and a per-matrix pure-PyTorch SoftMuon (common.py's, which
bench_muon.py times too). Prints a markdown table; --json appends one JSON object per
(shape set, tensor count, optimizer); benchmarks/render.py turns those into tables and plots.

    python benchmarks/bench_step.py --device cuda --shapes gpt2    # 148 tensors, 124.4M
    python benchmarks/bench_step.py --device cuda --shapes 1b      # 24 layers, d = 2048
    python benchmarks/bench_step.py --device cuda --shapes sweep   # 10..5000 tensors, 134M
    python benchmarks/bench_step.py --shapes gpt2 --optimizers elementwise --json out.jsonl

Shape sets. gpt2: the 148 tensors of GPT-2 small; 1b: the same layout with d = 2048 and
24 layers (bench_fit.py's set, 1.31B); --scale shrinks every shape's first dimension (the
CPU default is 0.25 for gpt2 and sweep, 0.05 for 1b). The matrix optimizers get the
hidden matrices (common.hidden_matrices): the position embedding and the 4 matrices of
every layer, as bench_muon.py counts them (GPT-2 small: 49 matrices, 85.7M); the token
embedding and the vectors stay out, as they would go to AdamW. sweep: --sweep-counts
tensors (default 10, 100, 1000, 5000) of equal size, 2**27 * scale parameters in all, each
(rows, 64): every optimizer, matrix ones included, does the same work at every count, so
the sweep shows what each tensor costs.

On CUDA every optimizer runs by default; on a CPU only the element-wise ones, because the
matrix optimizers' matmuls take seconds per step at these sizes there: ask for them with
--optimizers matrix (or their keys, see --list) and a smaller --scale.

Timing: --warmup steps first (the first step creates the optimizer state; the soft phase
optimizers fit their temperature at their first step and are timed afterwards, in the
transition), then the median of --repeats steps, each timed alone (CUDA events on GPUs),
fewer (3 at least) where they would take more than --budget seconds.
On a CPU the repeats go in --rounds rounds over all optimizers (3 by default), which
spreads the other work of a shared machine over all of them.

Bandwidth floor: a momentum step reads p, g and the buffer and writes p and the buffer,
5 fp32 passes over the parameters. The floor is the time of those 5 passes at the speed of
a plain copy of the same bytes (one read, one write), measured before and after the
optimizers in the same run; the smaller of the two is used. x floor divides each
element-wise step by it (AdamW too: it is compared with the same yardstick, not with its
own 7 passes). On CPUs a copy pays for reading each destination line before writing it
(write allocate) and an in-place step does not, so steps can run below the copy floor
there: the in-place floor (the 5 passes at the speed of a += b over the same bytes) is
reported next to it. GB/s counts the minimum traffic of each step's math: 5 passes, 7 for
AdamW.

Memory: peak bytes allocated above what existed before the optimizer was built (params
and grads), over its construction and warm-up steps, so the state created at the first
step and the fit are included; "state" is what is still allocated afterwards. CUDA: the
caching allocator's counters. CPU: the tensor allocations that torch.profiler records
(profile_memory); allocations inside BLAS libraries are not seen.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import functools
import gc
import os
import shlex
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass

import common
import step_tables  # the same tables as render.py's reports
import torch
from common import GPT_SETS, gpt_shapes, hidden_matrices, sampler

import softsign

# ---------------------------------------------------------------------------- shapes


SWEEP_TOTAL = 2**27  # close to GPT-2 small's 124M, and divisible by 64
SWEEP_WIDTH = 64


def sweep_shapes(count: int, scale: float) -> list[tuple[int, ...]]:
    """`count` equal (rows, 64) matrices of about 2**27 * scale parameters in all."""
    rows = max(1, int(SWEEP_TOTAL * scale) // (count * SWEEP_WIDTH))
    return [(rows, SWEEP_WIDTH)] * count


CPU_SCALE = {"gpt2": 0.25, "1b": 0.05, "sweep": 0.25}

# ---------------------------------------------------------------------------- floor


def bandwidth_floor(params, run, repeats):
    """(copy floor, in-place floor) in seconds: the 5 float32 passes of a momentum step
    (read p, g, buf; write p, buf) at the bandwidth of a plain copy of the same bytes (one
    read, one write), and at that of an in-place add over them (a += b: two reads, one
    write). On CPUs a copy also reads every destination line before writing it (write
    allocate), which an in-place step never pays, so in-place steps can beat the copy
    floor there; the in-place floor is the tighter one."""
    src = torch.cat([p.detach().reshape(-1) for p in params])
    dst = torch.empty_like(src)
    dst.copy_(src)  # the first copy also pays dst's page faults
    copy = run(lambda: dst.copy_(src), repeats) * 5 / 2
    # Values grow by src each call: a few dozen additions of N(0, 1) stay far from inf.
    inplace = run(lambda: dst.add_(src), repeats) * 5 / 3
    return copy, inplace


# ---------------------------------------------------------------------------- memory


def measure_memory(device, build, steps):
    """(optimizer, peak extra bytes, state bytes) of build() followed by `steps` steps;
    (optimizer, None, None) where nothing can be measured."""

    def build_and_step():
        opt = build()
        for _ in range(steps):
            opt.step()
        return opt

    if device.type != "cpu":
        with common.CudaMemory(device) as mem:  # None, None off CUDA
            opt = build_and_step()
        return opt, mem.peak, mem.now
    # CPU tensors come from c10's allocator, which reports every allocation and free to
    # the profiler: their running sum in time order gives the peak.
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        opt = build_and_step()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    current = peak = 0
    for e in events:
        current += e.nbytes()
        peak = max(peak, current)
    return opt, peak, current


# ---------------------------------------------------------------------------- optimizers


@dataclass
class Method:
    key: str  # for --optimizers
    label: str
    kind: str  # "elementwise" (every tensor) or "matrix" (the hidden matrices)
    build: Callable[[list], object]
    passes: int | None = None  # minimum fp32 passes of the step's math (GB/s)
    flops: str | None = None  # "ns" or "soft_ns": common.ns_flops or common.soft_ns_flops


def methods(device) -> list[Method]:
    # A soft phase from the first step on: step 1 fits, the later ones are transition
    # steps (what the soft phase of a run costs), with a 1000-step schedule.
    soft = dict(sign_steps=0, transition_steps=1000)
    fused_ok = device.type in ("cuda", "cpu")  # torch 2.14 has fused CPU AdamW/SGD too
    out = [
        # Past every timed step of this run: stays in the sign phase.
        Method(
            "softsignum-sign",
            "SoftSignum (sign phase)",
            "elementwise",
            lambda ps: softsign.SoftSignum(ps, total_steps=10**6),
            5,
        ),
        Method(
            "softsignum-soft",
            "SoftSignum (soft phase)",
            "elementwise",
            lambda ps: softsign.SoftSignum(ps, **soft),
            5,
        ),
        Method(
            "softsignum-soft-py",
            "SoftSignum (soft phase, pure PyTorch)",
            "elementwise",
            lambda ps: softsign.SoftSignum(ps, fused=False, **soft),
            5,
        ),
    ]
    # The plain sign optimizers, fused and in plain PyTorch ops (fused=False): every pair
    # of this softsign (Signum, Lion, ...), so a new one is timed with no edit here.
    # Signum's rows come first, next to SoftSignum's, as in earlier results.
    pairs = sorted(softsign.elementwise_pairs().items(), key=lambda item: item[0] != "Signum")
    for name, (cls, _soft) in pairs:
        for fused, key, label in ((None, "", ""), (False, "-py", " (pure PyTorch)")):
            out.append(
                Method(
                    name.lower() + key,
                    name + label,
                    "elementwise",
                    lambda ps, cls=cls, fused=fused: cls(ps, fused=fused),
                    5,
                )
            )
    # The community's implementations of the same updates (pytorch-optimizer), when
    # installed: what a user would otherwise pick.
    try:
        import pytorch_optimizer as pyopt
    except ImportError:
        pyopt = None
    if pyopt is not None:
        out += [
            Method(
                "pyopt-signsgd",
                "pytorch-optimizer SignSGD (momentum, foreach)",
                "elementwise",
                lambda ps: pyopt.SignSGD(ps, lr=1e-3, momentum=0.9, foreach=True),
                5,
            ),
            Method(
                "pyopt-lion",
                "pytorch-optimizer Lion (foreach)",
                "elementwise",
                lambda ps: pyopt.Lion(ps, lr=1e-4, foreach=True),
                5,
            ),
        ]
    for impl in ("fused", "foreach") if fused_ok else ("foreach",):
        flag = {impl: True}
        out += [
            Method(
                f"sgd-{impl}",
                f"torch SGD momentum ({impl})",
                "elementwise",
                lambda ps, flag=flag: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, **flag),
                5,
            ),
            Method(
                f"adamw-{impl}",
                f"torch AdamW ({impl})",
                "elementwise",
                lambda ps, flag=flag: torch.optim.AdamW(ps, lr=1e-3, **flag),
                7,
            ),
        ]

    out += [
        Method("muon", "softsign Muon", "matrix", lambda ps: softsign.Muon(ps), flops="ns"),
        Method(
            "softmuon-ns",
            "SoftMuon newton_schulz (soft phase)",
            "matrix",
            lambda ps: softsign.SoftMuon(ps, soft_map="newton_schulz", **soft),
            flops="soft_ns",
        ),
        Method(
            "softmuon-accurate",
            "SoftMuon accurate (soft phase)",
            "matrix",
            lambda ps: softsign.SoftMuon(ps, soft_map="accurate", **soft),
            flops="ns",  # bench_muon.py's convention: work per update, not the map's FLOPs
        ),
        Method(
            "torch-muon",
            "torch.optim.Muon",
            "matrix",
            lambda ps: torch.optim.Muon(ps, lr=0.02, weight_decay=0.0),
            flops="ns",
        ),
        Method(
            "softmuon-py",
            "SoftMuon per-matrix (pure PyTorch)",
            "matrix",
            lambda ps: common.PerMatrixSoftMuon(ps),
            flops="soft_ns",
        ),
    ]
    return out


def select(all_methods, patterns):
    """Methods whose key matches one of the patterns (fnmatch), or whose kind is one."""
    return [
        m
        for m in all_methods
        if any(p == m.kind or fnmatch.fnmatchcase(m.key, p) for p in patterns)
    ]


def flop_count(kind, shapes):
    if kind is None:
        return None
    return (common.ns_flops if kind == "ns" else common.soft_ns_flops)(shapes)


# ---------------------------------------------------------------------------- run


def bench_set(shapes, chosen, device, args, meta):
    """Times every chosen method on one list of shapes; returns the JSON rows."""
    # Drawn on the device: 2.6B CPU randn values for the 1b set would take a while.
    gen = torch.Generator(device=device).manual_seed(0)
    params = []
    for s in shapes:
        p = torch.randn(s, generator=gen, device=device).requires_grad_()
        p.grad = torch.randn(s, generator=gen, device=device).mul_(1e-3)
        params.append(p)
    matrix_idx = hidden_matrices(shapes) if meta["shapes"] != "sweep" else range(len(shapes))
    matrices = [params[i] for i in matrix_idx]
    n_all = sum(p.numel() for p in params)
    sample, median = sampler(device), common.timer(device)
    # The floors cost milliseconds: more samples than the steps get, for a steadier median.
    floor_repeats = max(args.repeats, 21)
    load_start = common.loadavg()
    floor_start = bandwidth_floor(params, median, floor_repeats)

    # The repeats go in rounds: with more than one, every optimizer stays alive and the
    # rounds go through them in turn, so that a burst of other work on a shared machine
    # slows each optimizer a little rather than one of them a lot. A first timed step sets
    # how many more fit in --budget seconds (slow per-tensor loops at 5000 tensors).
    def split(n):
        parts = [n // args.rounds + (i < n % args.rounds) for i in range(args.rounds)]
        return [c for c in parts if c]

    runs = []
    for m in chosen:
        ps = params if m.kind == "elementwise" else matrices
        opt, peak, state = measure_memory(device, functools.partial(m.build, ps), args.warmup)
        times = sample(opt.step, 1)
        n = min(args.repeats, max(3, int(args.budget / max(times[0], 1e-9))))
        run = dict(method=m, params=ps, opt=opt, peak=peak, state=state, times=times)
        run["chunks"] = split(n - 1)
        runs.append(run)
        if args.rounds == 1:
            run["times"] += sample(opt.step, sum(run["chunks"]))
            run["opt"] = opt = None  # frees the state before the next one is built
            gc.collect()
    for i in range(args.rounds if args.rounds > 1 else 0):
        for run in runs:
            if i < len(run["chunks"]):
                run["times"] += sample(run["opt"].step, run["chunks"][i])
    for run in runs:
        run["opt"] = None
    gc.collect()
    rows = []
    for run in runs:
        m, ps, times = run["method"], run["params"], run["times"]
        peak, state = run["peak"], run["state"]
        seconds = statistics.median(times)
        n = sum(p.numel() for p in ps)
        flops = flop_count(m.flops, [tuple(p.shape) for p in ps])
        rows.append(
            dict(
                meta,
                set_n_tensors=len(params),
                set_n_params=n_all,
                optimizer=m.label,
                key=m.key,
                kind=m.kind,
                n_tensors=len(ps),
                n_params=n,
                ms_per_step=seconds * 1e3,
                samples=len(times),
                ms_samples=[round(t * 1e3, 4) for t in times],
                gbps=m.passes * 4 * n / seconds / 1e9 if m.passes else None,
                tflops=flops / seconds / 1e12 if flops else None,
                peak_mem_bytes=peak,
                state_bytes=state,
            )
        )
        print(f"  {len(params):>5} tensors  {m.label}: {seconds * 1e3:.2f} ms", flush=True)
    floor_end = bandwidth_floor(params, median, floor_repeats)
    floor = min(floor_start[0], floor_end[0])
    inplace = min(floor_start[1], floor_end[1])
    ref = {r["key"]: r["ms_per_step"] for r in rows}
    adamw, torch_muon = ref.get("adamw-fused"), ref.get("torch-muon")
    for r in rows:
        elementwise = r["kind"] == "elementwise"
        r.update(
            floor_ms=floor * 1e3,
            floor_ms_start=floor_start[0] * 1e3,
            floor_ms_end=floor_end[0] * 1e3,
            inplace_floor_ms=inplace * 1e3,
            load_start=load_start,
            load_end=common.loadavg(),
            copy_gbps=2 * 4 * n_all / (floor * 2 / 5) / 1e9,
            inplace_gbps=3 * 4 * n_all / (inplace * 3 / 5) / 1e9,
            x_floor=r["ms_per_step"] / (floor * 1e3) if elementwise else None,
            x_inplace_floor=r["ms_per_step"] / (inplace * 1e3) if elementwise else None,
            x_adamw=r["ms_per_step"] / adamw if elementwise and adamw else None,
            x_torch_muon=r["ms_per_step"] / torch_muon if not elementwise and torch_muon else None,
        )
    return rows


def print_table(rows):
    print()
    print(step_tables.markdown(step_tables.runs_of(rows), {}))


def main(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common.add_device_option(ap)
    ap.add_argument("--shapes", choices=(*GPT_SETS, "sweep"), default="gpt2")
    ap.add_argument("--scale", type=float, help="first-dim scale (default: 1, on CPU 0.05-0.25)")
    ap.add_argument("--sweep-counts", type=int, nargs="+", default=[10, 100, 1000, 5000])
    ap.add_argument("--repeats", type=int, help="timed steps (default: 50 on CUDA, 9 on CPU)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (at least 2)")
    ap.add_argument(
        "--budget",
        type=float,
        default=30.0,
        help="seconds of timed steps per optimizer and tensor count at most (3 steps at "
        "least; default 30)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        help="split the repeats into rounds over all optimizers (default: 1 on CUDA, 3 on "
        "CPU; more than 1 keeps every optimizer's state allocated at once)",
    )
    ap.add_argument(
        "--optimizers",
        nargs="+",
        metavar="KEY",
        help="keys (shell patterns) or kinds (elementwise, matrix); --list shows the keys "
        "(default: all on CUDA, elementwise on CPU)",
    )
    ap.add_argument("--list", action="store_true", help="list the optimizer keys and exit")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--json", metavar="PATH", help="append one JSON object per row to PATH")
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    all_methods = methods(device)
    if args.list:
        for m in all_methods:
            print(f"{m.key:<20} {m.kind:<12} {m.label}")
        return []
    # On a CPU the matrix optimizers' matmuls take seconds per step at these sizes: they
    # run when asked for (--optimizers matrix, with a smaller --scale).
    patterns = args.optimizers or (["*"] if device.type == "cuda" else ["elementwise"])
    chosen = select(all_methods, patterns)
    if not chosen:
        ap.error(f"no optimizer matches {patterns}; see --list")
    # Two steps at least: the soft phase's first step is its fit, not a soft step.
    args.warmup = max(args.warmup, 2)
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = device.type == "cuda"
    scale = args.scale if args.scale is not None else (1.0 if cuda else CPU_SCALE[args.shapes])
    args.repeats = args.repeats or (50 if cuda else 9)
    args.rounds = max(1, min(args.rounds or (1 if cuda else 3), args.repeats))
    meta = dict(
        bench="step",
        run=datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ"),
        device=device.type,
        device_name=common.device_name(device),
        torch=torch.__version__,
        cuda=torch.version.cuda if cuda else None,
        softsign=softsign.__version__,
        commit=common.git_commit(),
        threads=torch.get_num_threads(),
        shapes=args.shapes,
        scale=scale,
        repeats=args.repeats,
        rounds=args.rounds,
        warmup=args.warmup,
        memory="cuda allocator" if cuda else "torch.profiler (CPU tensors)",
        command=shlex.join([os.path.basename(sys.executable), *sys.argv]),
    )
    if args.shapes == "sweep":
        sets = [sweep_shapes(c, scale) for c in args.sweep_counts]
    else:
        sets = [gpt_shapes(**GPT_SETS[args.shapes], scale=scale)]
    rows = []
    for shapes in sets:
        rows += bench_set(shapes, chosen, device, args, meta)
        if args.json:
            common.append_jsonl(args.json, rows[-len(chosen) :])
    print_table(rows)
    return rows


if __name__ == "__main__":
    main()
