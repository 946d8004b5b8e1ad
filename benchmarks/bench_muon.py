"""optimizer.step() time of softsign's Muon and SoftMuon (both soft maps) against
torch.optim.Muon and a pure-PyTorch per-matrix SoftMuon, on the hidden matrices of a GPT-2
style model, measured in one run on one device. Prints a markdown table with ratios to
torch.optim.Muon and the achieved TFLOP/s of the Newton-Schulz work.

    python benchmarks/bench_muon.py --device cuda --shapes gpt2   # 49 matrices, 85.7M
    python benchmarks/bench_muon.py --device cuda --shapes 1b     # 24 layers, d = 2048
    python benchmarks/bench_muon.py --shapes small                # CPU-sized: 4 layers, d = 256

TFLOP/s count the Newton-Schulz work (multiply-add = 2 FLOPs) with the formulas of
common.py's ns_flops (Muon, torch.optim.Muon) and soft_ns_flops (the public soft map,
"newton_schulz", 5 steps); the "accurate" map is reported with the Newton-Schulz count of
the same matrices (as work done per update, not as the map's own FLOPs).
"""

from __future__ import annotations

import argparse

import torch
from common import (
    CudaMemory,
    PerMatrixSoftMuon,
    add_device_option,
    append_jsonl,
    device_name,
    gpt_shapes,
    hidden_matrices,
    ns_flops,
    soft_ns_flops,
    timer,
)

import softsign


def transformer_matrices(width: int, layers: int, ctx: int) -> list[tuple[int, int]]:
    """(out, in) shapes of the hidden matrices of a GPT-2 style model: per layer the fused
    QKV, the attention output, the MLP up and down projections; plus the position
    embedding, which GPT-2-small Muon benchmarks count (49 matrices, 85.7M)."""
    shapes = gpt_shapes(width, layers, ctx=ctx)
    return [shapes[i] for i in hidden_matrices(shapes)]


SHAPES = {
    "gpt2": dict(width=768, layers=12, ctx=1024),
    "1b": dict(width=2048, layers=24, ctx=2048),
    "small": dict(width=256, layers=4, ctx=256),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_device_option(parser, "cpu")
    parser.add_argument("--shapes", choices=sorted(SHAPES), default="small")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", help="also append one JSON line per method to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    shapes = transformer_matrices(**SHAPES[args.shapes])
    numel = sum(r * c for r, c in shapes)
    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(s, generator=gen) * 0.02 for s in shapes]
    grads = [torch.randn(s, generator=gen).mul_(1e-3).to(device) for s in shapes]
    run = timer(device)

    def fresh():
        params = [b.to(device).requires_grad_() for b in base]
        for p, g in zip(params, grads):
            p.grad = g
        return params

    def soft(soft_map):
        # The transition from the first step on; the fit happens in the warm-up.
        return lambda ps: softsign.SoftMuon(
            ps, sign_steps=0, transition_steps=10**6, soft_map=soft_map
        )

    methods = {
        "softsign Muon": (lambda ps: softsign.Muon(ps), ns_flops(shapes)),
        "softsign SoftMuon (newton_schulz)": (soft("newton_schulz"), soft_ns_flops(shapes)),
        "softsign SoftMuon (accurate)": (soft("accurate"), ns_flops(shapes)),
        "torch.optim.Muon": (
            lambda ps: torch.optim.Muon(ps, lr=0.02, weight_decay=0.0),
            ns_flops(shapes),
        ),
        "per-matrix SoftMuon (PyTorch)": (lambda ps: PerMatrixSoftMuon(ps), soft_ns_flops(shapes)),
    }
    results = {}
    for name, (make, flops) in methods.items():
        params = fresh()
        opt = make(params)
        for _ in range(args.warmup):
            opt.step()
        with CudaMemory(device) as memory:  # the steps' peak above the state (CUDA only)
            seconds = run(opt.step, args.repeats)
        results[name] = (seconds, flops, memory.peak)
        del opt, params

    what = device_name(device)
    print(
        f"# Muon/SoftMuon step, {args.shapes} shapes: {len(shapes)} matrices, "
        f"{numel / 1e6:.1f}M params; {what}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}"
    )
    print("| method | ms | x torch.optim.Muon | TFLOP/s | peak extra MiB |")
    print("|---|---:|---:|---:|---:|")
    ref = results["torch.optim.Muon"][0]
    for name, (seconds, flops, peak) in results.items():
        mib = "-" if peak is None else f"{peak / 2**20:.0f}"
        print(
            f"| {name} | {seconds * 1e3:.1f} | {seconds / ref:.2f} | "
            f"{flops / seconds / 1e12:.2f} | {mib} |"
        )
        if args.json:
            record = dict(
                bench="muon_step",
                shapes=args.shapes,
                method=name,
                ms=seconds * 1e3,
                tflops=flops / seconds / 1e12,
                device=what,
                torch=torch.__version__,
            )
            append_jsonl(args.json, [record])


if __name__ == "__main__":
    main()
