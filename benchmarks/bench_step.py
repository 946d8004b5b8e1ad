"""optimizer.step() time of SoftSignum (sign and soft phase), Signum and the pure-PyTorch
path against torch's SGD (momentum) and AdamW, on GPT-2-small parameter shapes, measured
in one run on one device. Prints a markdown table with ratios to torch's AdamW and the
copy bandwidth floor measured in the same run.

    python benchmarks/bench_step.py [--device cuda] [--scale 1.0] [--repeats 20]

--scale shrinks every shape's first dimension (CPU runs use 0.25 by default).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

import softsign


def gpt2_small_shapes(scale: float) -> list[tuple[int, ...]]:
    """The 148 parameter tensors of GPT-2 small (124M), first dims scaled by `scale`."""
    d, vocab, ctx, layers = 768, 50257, 1024, 12
    s = lambda n: max(1, int(n * scale))  # noqa: E731
    shapes = [(s(vocab), d), (s(ctx), d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (s(3 * d), d), (3 * d,), (s(d), d), (d,)]
        shapes += [(d,), (d,), (s(4 * d), d), (4 * d,), (s(d), 4 * d), (d,)]
    return shapes + [(d,), (d,)]


def timer(device):
    if device.type == "cuda":

        def run(fn, repeats):
            times = []
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            return statistics.median(times)

        return run

    def run(fn, repeats):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    return run


def bandwidth_floor(params, run, repeats):
    """The 5 float32 passes of a momentum step (read p, g, buf; write p, buf) at the
    bandwidth of a plain copy of the same bytes (one read, one write), in seconds."""
    src = torch.cat([p.detach().reshape(-1) for p in params])
    dst = torch.empty_like(src)
    return run(lambda: dst.copy_(src), repeats) * 5 / 2


def make_optimizers(params, device):
    cuda = device.type == "cuda"
    total = 1000
    yield "SoftSignum (sign phase)", softsign.SoftSignum(params, total_steps=total), 0
    # Started past the fit step, so the timed steps are transition steps.
    yield "SoftSignum (soft phase)", softsign.SoftSignum(params, total_steps=total), 901
    yield "Signum", softsign.Signum(params), 0
    yield "Signum (pure PyTorch)", softsign.Signum(params, fused=False), 0
    yield (
        "torch SGD momentum" + (" fused" if cuda else " foreach"),
        torch.optim.SGD(params, lr=1e-3, momentum=0.9, **({"fused": True} if cuda else {})),
        0,
    )
    yield (
        "torch AdamW" + (" fused" if cuda else " foreach"),
        torch.optim.AdamW(params, lr=1e-3, **({"fused": True} if cuda else {})),
        0,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--scale", type=float, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    scale = args.scale if args.scale is not None else (1.0 if device.type == "cuda" else 0.25)
    repeats = args.repeats or (50 if device.type == "cuda" else 5)
    shapes = gpt2_small_shapes(scale)
    params = [torch.randn(s, device=device).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    n = sum(p.numel() for p in params)
    run = timer(device)

    floor_s = bandwidth_floor(params, run, repeats)

    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    print(
        f"# optimizer.step(), GPT-2-small shapes x{scale} ({len(shapes)} tensors, "
        f"{n / 1e6:.1f}M fp32 params), {device.type} ({name or platform.machine()}, "
        f"{torch.get_num_threads()} threads), torch {torch.__version__}, median of {repeats}"
    )
    print(f"# bandwidth floor (5 passes at copy speed): {floor_s * 1e3:.2f} ms\n")
    rows = []
    for label, opt, warm_steps in make_optimizers(params, device):
        for _ in range(max(warm_steps, 3)):  # warm-up, and into the phase to time
            opt.step()
        rows.append((label, run(opt.step, repeats)))
        del opt
    adamw = rows[-1][1]
    print("| optimizer | ms/step | GB/s (5 passes) | x floor | x torch AdamW |")
    print("|---|---:|---:|---:|---:|")
    for label, t in rows:
        gbs = 5 * 4 * n / t / 1e9
        print(f"| {label} | {t * 1e3:.2f} | {gbs:.1f} | {t / floor_s:.2f} | {t / adamw:.2f} |")


if __name__ == "__main__":
    main()
