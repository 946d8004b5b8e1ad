"""The temperature-fit step's statistic: the exact median and MAD of the post-momentum
directions of every parameter (docs/algorithms.md section 3), computed two ways in one run:

* softsign: torch.ops.softsign.direction_median_mad, radix selection reading the grads
  and momentum buffers in place (no copy of the directions);
* concat: what the authors' code does: materialize every direction, concatenate them,
  then take the median and the median of absolute deviations of the concatenation.

Both must agree exactly. Prints time (median of repeats) and peak extra memory over
what the parameters, grads and buffers already hold (CUDA: the caching allocator's peak;
CPU: the process's peak RSS growth, each method measured in a fresh subprocess).

    python benchmarks/bench_fit.py [--device cuda] [--shapes gpt2|1b] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

import softsign

ops = torch.ops.softsign


def shapes_of(name: str) -> list[tuple[int, ...]]:
    """GPT-2 small (124M, 148 tensors) or the 1B set (24 layers, d = 2048)."""
    d, layers = (768, 12) if name == "gpt2" else (2048, 24)
    vocab, ctx = 50257, 1024
    out = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        out += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,)]
        out += [(d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return out + [(d,), (d,)]


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


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(method, shapes_name, device, repeats):
    """Time and peak extra bytes of one method; returns a dict."""
    device = torch.device(device)
    grads, bufs = make_state(shapes_of(shapes_name), device)
    fn = METHODS[method]
    if method == "concat (d given)":
        grads, bufs = directions(grads, bufs), None
        fn = lambda d, _: concat_median_mad(d)  # noqa: E731
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result = fn(grads, bufs)
    sync(device)
    if device.type == "cuda":
        extra = torch.cuda.max_memory_allocated() - base
    else:
        extra = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
            start.record()
            fn(grads, bufs)
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn(grads, bufs)
            times.append(time.perf_counter() - t0)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--shapes", default="gpt2", choices=["gpt2", "1b"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one method
    args = ap.parse_args()
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
    name = torch.cuda.get_device_name() if args.device == "cuda" else platform.machine()
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
