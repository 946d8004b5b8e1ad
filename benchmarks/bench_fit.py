"""The temperature-fit step's statistic: the exact median and MAD of the post-momentum
directions of every parameter (docs/algorithms.md section 3), computed two ways in one run:

* softsign: torch.ops.softsign.direction_median_mad, radix selection reading the grads
  and momentum buffers in place (no copy of the directions);
* concat: what the authors' code does: materialize every direction, concatenate them,
  then take the median and the median of absolute deviations of the concatenation.

Both must agree exactly. Prints time (median of repeats) and peak extra memory over
what the parameters, grads and buffers already hold (CUDA: the caching allocator's peak;
CPU: the process's peak RSS growth, each method measured in a fresh subprocess).

With --transition: what the length T of the transition costs. The fit step of a SoftSignum
(sign_steps=1, transition_steps=T, the fit at step 2) and a transition step, timed at
T = 1e3, 1e6 and 1e9, beside the full T-entry schedule tensor that the fit computed before
temperatures were computed per step (temperature_schedule, T = 1e3 and 1e6 only).

    python benchmarks/bench_fit.py [--device cuda] [--shapes gpt2|1b] [--repeats 5]
    python benchmarks/bench_fit.py --transition [--device cuda] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys

import torch
from common import GPT_SETS, CudaMemory, add_device_option, device_name, gpt_shapes, sampler

import softsign

ops = torch.ops.softsign


def make_state(shapes, device):
    gen = torch.Generator(device=device).manual_seed(0)
    grads = [torch.randn(s, device=device, generator=gen) * 1e-3 for s in shapes]
    bufs = [torch.randn(s, device=device, generator=gen) * 1e-3 for s in shapes]
    return grads, bufs


KW = dict(momentum=0.9, dampening=0.0, nesterov=False, maximize=False)


def softsign_fit(grads, bufs):
    return ops.direction_median_mad(grads, bufs, [], **KW, grad_scale=None)


def directions(grads, bufs):
    return ops.soft_sign_direction(grads, bufs, **KW, first_step=False, grad_scale=None)


def concat_median_mad(dirs):
    x = torch.cat([d.reshape(-1) for d in dirs])
    mu = x.median()
    return mu, (x - mu).abs().median()


def concat_fit(grads, bufs):
    return concat_median_mad(directions(grads, bufs))


# "concat (d given)": the authors' buffers already hold d when nesterov is off, so their
# fit pays only for the concatenation and the two medians: time that part alone.
METHODS = {"softsign": softsign_fit, "concat": concat_fit, "concat (d given)": concat_median_mad}


def measure(method, shapes_name, device, repeats):
    """Time and peak extra bytes of one method; returns a dict."""
    device = torch.device(device)
    # GPT-2 small (124M, 148 tensors) or the 1B set (24 layers, d = 2048).
    grads, bufs = make_state(gpt_shapes(**GPT_SETS[shapes_name]), device)
    fn = METHODS[method]
    if method == "concat (d given)":
        grads, bufs = directions(grads, bufs), None
        fn = lambda d, _: concat_median_mad(d)  # noqa: E731
    if device.type == "cuda":
        with CudaMemory(device) as memory:
            result = fn(grads, bufs)
        extra = memory.peak
    else:  # the process's peak RSS: a fresh process per method keeps it meaningful
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        result = fn(grads, bufs)
        extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = sampler(device)(lambda: fn(grads, bufs), repeats)
    n = sum(g.numel() for g in grads)
    extra_check = {}
    if method == "concat":
        # The expectation, untimed: the MAD of the directions in float64, as the docs and
        # softsign compute it (the authors' float32 MAD can differ in its last bits).
        x = torch.cat([d.reshape(-1) for d in directions(grads, bufs)]).double()
        extra_check["mad64"] = (x - x.median()).abs().median().item()
        del x
    return dict(
        **extra_check,
        method=method,
        seconds=statistics.median(times),
        extra_bytes=max(extra, 0),
        param_bytes=4 * n,
        params=n,
        median=result[0].item(),
        mad=result[1].item(),
    )


def _fit_step_seconds(device, steps, repeats):
    """Seconds of SoftSignum's fit step (step 2 with sign_steps=1) and of the transition step
    after it, on a small model (4 x 256 x 256), median of `repeats` fresh optimizers."""
    gen = torch.Generator(device=device).manual_seed(0)
    params = [torch.randn(256, 256, device=device, generator=gen) for _ in range(4)]
    for p in params:
        p.grad = torch.randn(p.shape, device=device, generator=gen) * 1e-3
    run = sampler(device)
    fit, after = [], []
    for _ in range(repeats):
        opt = softsign.SoftSignum(params, lr=1e-3, sign_steps=1, transition_steps=steps)
        opt.step()  # the sign phase
        fit += run(opt.step, 1)
        after += run(opt.step, 1)
        assert opt.temperature() is not None
    return statistics.median(fit), statistics.median(after)


def transition_rows(device, repeats):
    """The cost of the transition's length: one row per T."""
    dev = torch.device(device)
    mu = torch.tensor(1e-3, dtype=torch.float64, device=dev)
    s = torch.tensor(2e-3, dtype=torch.float64, device=dev)
    kw = dict(eps=1e-4, newton_iters=10, tmax=1e9, kind="tanh")
    run = sampler(device)
    rows = []
    for steps in (10**3, 10**6, 10**9):
        fit_step, transition_step = _fit_step_seconds(dev, steps, repeats)

        def first_temperature(steps=steps):
            stats, fit = ops.fit_temperature(mu, s, found_inf=None)
            return ops.temperature_at(fit[0], fit[1], 0, steps, **kw)

        row = dict(
            steps=steps,
            temperature=statistics.median(run(first_temperature, repeats)),
            fit_step=fit_step,
            transition_step=transition_step,
            full_schedule=None,
        )
        if steps <= 10**6:  # 8 GB at 1e9
            full = run(lambda steps=steps: ops.temperature_schedule(mu, s, steps, **kw), repeats)
            row["full_schedule"] = statistics.median(full)
        rows.append(row)
    return rows


def print_transition(args):
    rows = transition_rows(args.device, args.repeats)
    print(
        f"# the transition's length T: {args.device} ({device_name(args.device)}, "
        f"{torch.get_num_threads()} threads), torch {torch.__version__}, softsign "
        f"{softsign.__version__}, median of {args.repeats}\n"
    )
    print(
        "| T | fit + first temperature (ms) | SoftSignum fit step (ms) | transition step (ms) "
        "| full schedule tensor (ms) |"
    )
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        full = "-" if r["full_schedule"] is None else f"{r['full_schedule'] * 1e3:.3f}"
        print(
            f"| {r['steps']:.0e} | {r['temperature'] * 1e3:.3f} | {r['fit_step'] * 1e3:.2f} | "
            f"{r['transition_step'] * 1e3:.2f} | {full} |"
        )
    base, big = rows[0], rows[1]
    print(
        f"\nT = 1e6 / T = 1e3: fit step {big['fit_step'] / base['fit_step']:.2f}x, transition "
        f"step {big['transition_step'] / base['transition_step']:.2f}x (a full schedule "
        f"tensor: {big['full_schedule'] / base['full_schedule']:.0f}x)"
    )


def main():
    ap = argparse.ArgumentParser()
    add_device_option(ap)
    ap.add_argument("--shapes", default="gpt2", choices=list(GPT_SETS))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--transition", action="store_true", help="time the transition's length")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one method
    args = ap.parse_args()
    if args.transition:
        print_transition(args)
        return
    if args.one:
        print(json.dumps(measure(args.one, args.shapes, args.device, args.repeats)))
        return
    rows = []
    for method in METHODS:  # a fresh process each: clean peaks, no shared allocator cache
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                method,
                "--device",
                args.device,
                "--shapes",
                args.shapes,
                "--repeats",
                str(args.repeats),
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    ours, theirs = rows[0], rows[1]
    name = device_name(args.device)
    print(
        f"# fit statistic (median + MAD of {ours['params'] / 1e6:.1f}M directions, "
        f"{args.shapes} shapes), {args.device} ({name}, {torch.get_num_threads()} threads), "
        f"torch {torch.__version__}, softsign {softsign.__version__}, median of {args.repeats}"
    )
    float32_mad = "equals it" if theirs["mad"] == ours["mad"] else "differs"
    print(
        f"# exact agreement: median {ours['median'] == theirs['median']}, "
        f"MAD {ours['mad'] == theirs['mad64']} (against the float64 MAD of the concatenation; "
        f"the concat method's float32 MAD {float32_mad})\n"
    )
    print("| method | ms | peak extra memory | % of param bytes |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['method']} | {r['seconds'] * 1e3:.1f} | {r['extra_bytes'] / 2**20:.1f} MiB | "
            f"{100 * r['extra_bytes'] / r['param_bytes']:.2f} |"
        )
    print()
    for r in rows[1:]:
        print(
            f"vs {r['method']}: {r['seconds'] / ours['seconds']:.2f}x faster, "
            f"{r['extra_bytes'] / max(ours['extra_bytes'], 1):.0f}x less extra memory"
        )


if __name__ == "__main__":
    main()
