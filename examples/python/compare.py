"""Compares optimizers on the train_gpt.py task: a small LR sweep per optimizer at a short
budget, then every seed at the full budget with the chosen LR; prints one table of final
validation loss (mean and spread over seeds).

Procedure, for each optimizer:
  1. sweep: train with each LR of its grid for --sweep-steps steps (seed 0; the LR
     schedule is scaled to that shorter budget, and the soft optimizers get
     total_steps = --sweep-steps), and pick the LR with the lowest final validation loss;
  2. full: train every seed in --seeds for --steps steps with that LR.
Every run uses the same model, data, batches (per seed) and LR schedule: linear warm-up
over 5% of the steps, then cosine to 10% of the peak (see train_gpt.py).

LR grids (peak LR; override with --lrs-<optimizer> V [V ...]), chosen so that the cpu
preset's best LR at 250 steps lies inside (measured, seed 0: adamw 1e-3 of 3e-4..1e-2,
signum 3e-4 of 1e-4..3e-3, muon 0.04 of 0.01..0.04):
    adamw:               3e-4, 1e-3, 3e-3
    element-wise:        1e-4, 3e-4, 1e-3 (signum, softsignum and every other pair of
                         softsign.elementwise_pairs(), such as lion and softlion: each
                         steps by +-lr per element, so they share signum's grid; measured
                         for signum only)
    muon, softmuon(-accurate): 0.02, 0.04, 0.08 (hidden matrices; the AdamW group of
                         embeddings, head, norms and biases keeps --adamw-lr 1e-3)
--quick uses two values each, larger ones (the tiny model at 100 steps prefers them):
    adamw 3e-3, 1e-2; element-wise 1e-3, 3e-3; muon, softmuon 0.02, 0.04.

The default rows are the five optimizers adamw, signum, softsignum, muon and softmuon; the
other element-wise optimizers of the installed softsign (train_gpt.py's --optimizer
choices, such as lion and softlion) join with --optimizers.

Budgets: --preset cpu (default): --steps 1000, --sweep-steps 250, one seed: 8750 steps of
about 0.13 s, some 20-25 minutes on 2 idle CPU cores for all five optimizers; --quick:
the tiny preset (0.14M parameters), --steps 400, --sweep-steps 100, one seed: about a
minute. On a loaded machine --threads 1 can be several times faster than torch's default.

    python examples/python/compare.py --quick
    python examples/python/compare.py --seeds 0 1 2
    python examples/python/compare.py --preset gpu --seeds 0 1 2 --optimizers adamw softmuon
    python examples/python/compare.py --seeds 0 1 2 --optimizers softmuon softmuon-accurate
    python examples/python/compare.py --seeds 0 1 2 --optimizers lion softlion signum

Writes <out>/compare.md (the tables), <out>/compare.json (every run's summary),
<out>/val_loss.png (validation curves, mean over seeds) and each run's log.json/loss.png
under <out>/sweep/ and <out>/full/.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train_gpt  # noqa: E402

# Rows of the table: train_gpt's optimizers, plus SoftMuon with the accurate soft map as a row
# of its own, so that one run compares both maps at equal steps. "softmuon" uses --soft-map.
VARIANTS = {name: (name, None) for name in train_gpt.OPTIMIZERS}
VARIANTS["softmuon-accurate"] = ("softmuon", "accurate")
DEFAULT_ROWS = ("adamw", "signum", "softsignum", "muon", "softmuon")

# Every element-wise optimizer steps by +-lr per element: they share one grid (signum's).
ELEMENTWISE_GRID = [1e-4, 3e-4, 1e-3]
ELEMENTWISE_QUICK_GRID = [1e-3, 3e-3]
LR_GRIDS = {
    "adamw": [3e-4, 1e-3, 3e-3],
    **{name: ELEMENTWISE_GRID for name in train_gpt.ELEMENTWISE},
    "muon": [0.02, 0.04, 0.08],
    "softmuon": [0.02, 0.04, 0.08],
    "softmuon-accurate": [0.02, 0.04, 0.08],
}
QUICK_GRIDS = {  # the tiny model at 100 steps prefers larger LRs
    "adamw": [3e-3, 1e-2],
    **{name: ELEMENTWISE_QUICK_GRID for name in train_gpt.ELEMENTWISE},
    "muon": [0.02, 0.04],
    "softmuon": [0.02, 0.04],
    "softmuon-accurate": [0.02, 0.04],
}
BUDGETS = {  # preset: (steps, sweep_steps)
    "cpu": (1000, 250),
    "gpu": (3000, 750),
    "tiny": (400, 100),
}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--optimizers",
        nargs="+",
        choices=list(VARIANTS),
        help="rows of the table (default: adamw signum softsignum muon softmuon); "
        "softmuon-accurate is SoftMuon with soft_map='accurate'",
    )
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--steps", type=int, help="full budget (default: per preset)")
    ap.add_argument("--sweep-steps", type=int, help="sweep budget (default: per preset)")
    for name in VARIANTS:
        ap.add_argument(f"--lrs-{name}", nargs="+", type=float, metavar="LR")
    ap.add_argument("--preset", choices=sorted(train_gpt.PRESETS))
    ap.add_argument("--quick", action="store_true", help="tiny preset, short budgets, 2 LRs")
    ap.add_argument("--adamw-lr", type=float, default=1e-3, help="muon/softmuon aux group LR")
    ap.add_argument("--alpha-sign", type=float, default=0.9)
    ap.add_argument(
        "--soft-map",
        choices=("newton_schulz", "accurate"),
        default="newton_schulz",
        help="the soft map of the softmuon row",
    )
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--out", default=os.path.join("runs", "compare"))
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="take the runs already finished under --out with the same settings from their "
        "log.json instead of training them again",
    )
    args = ap.parse_args(argv)
    args.optimizers = args.optimizers or list(DEFAULT_ROWS)
    for name in args.optimizers:  # before the first run, not after the others trained
        train_gpt.require_optimizer(VARIANTS[name][0])
    if args.preset is None:
        args.preset = "tiny" if args.quick else "cpu"
    steps, sweep_steps = BUDGETS[args.preset]
    args.steps = args.steps or steps
    args.sweep_steps = args.sweep_steps or sweep_steps
    args.grids = {}
    for name in args.optimizers:
        grids = QUICK_GRIDS if args.quick else LR_GRIDS
        args.grids[name] = getattr(args, f"lrs_{name.replace('-', '_')}") or grids[name]
    return args


def train(args, name, lr, steps, seed, out):
    optimizer, soft_map = VARIANTS[name]
    argv = [
        f"--optimizer={optimizer}",
        f"--lr={lr}",
        f"--adamw-lr={args.adamw_lr}",
        f"--soft-map={soft_map or args.soft_map}",
        f"--alpha-sign={args.alpha_sign}",
        f"--preset={args.preset}",
        f"--steps={steps}",
        f"--seed={seed}",
        f"--device={args.device}",
        f"--out={out}",
        "--quiet",
    ]
    if args.threads:
        argv.append(f"--threads={args.threads}")
    if args.no_progress:
        argv.append("--no-progress")
    log = finished_run(out, optimizer, lr, steps, seed, soft_map or args.soft_map, args)
    reused = log is not None
    if not reused:
        log = train_gpt.run(argv)
    loss = log["final_val_loss"]
    print(
        f"  {name:<17} lr {lr:<8g} seed {seed} {steps:>5} steps: val {loss:.4f} "
        f"({log['wall_time_s']:.0f} s{', reused' if reused else ''})",
        flush=True,
    )
    return log


def finished_run(out, optimizer, lr, steps, seed, soft_map, args):
    """With --reuse, the log of a run that already finished in `out` with these settings
    (an interrupted comparison continues where it stopped); else None."""
    path = Path(out) / "log.json"
    if not args.reuse or not path.exists():
        return None
    log = json.loads(path.read_text())
    c = log["config"]
    same = (c["optimizer"], c["lr"], c["steps"], c["seed"], c["preset"], c["device"]) == (
        optimizer,
        lr,
        steps,
        seed,
        args.preset,
        args.device,
    ) and (optimizer != "softmuon" or c["soft_map"] == soft_map)
    same = same and c["adamw_lr"] == args.adamw_lr and c["alpha_sign"] == args.alpha_sign
    return log if same and len(log["train_loss"]) == steps else None


# (soft optimizer, its hard counterpart): the paper's comparisons, and the two soft maps.
# The element-wise pairs are those of the installed softsign, Signum's first.
PAIRS = [
    *((soft, plain) for plain, soft in train_gpt.ELEMENTWISE_PAIRS),
    ("softmuon", "muon"),
    ("softmuon-accurate", "muon"),
    ("softmuon-accurate", "softmuon"),
]


def paired_differences(results):
    """Per-seed differences of final validation loss for each pair in PAIRS that ran. Runs
    of one seed share the initialization and the batches, so the difference of a pair is
    far less noisy than the spread over seeds."""
    rows = []
    for a, b in PAIRS:
        if a not in results or b not in results:
            continue
        la = {r["seed"]: r["final_val_loss"] for r in results[a]["runs"]}
        lb = {r["seed"]: r["final_val_loss"] for r in results[b]["runs"]}
        diffs = [la[s] - lb[s] for s in sorted(la) if s in lb]
        if not diffs:
            continue
        per_seed = ", ".join(f"{d:+.4f}" for d in diffs)
        lower = sum(d < 0 for d in diffs)
        rows.append(f"| {a} - {b} | {fmt_loss(diffs)} | {per_seed} | {lower} of {len(diffs)} |")
    if not rows:
        return []
    return [
        "",
        "Paired by seed (same initialization and batches), final val loss of the first minus "
        "the second:",
        "",
        "| pair | mean ± std | per seed | seeds where the first is lower |",
        "|------|-----------:|----------|-------------------------------:|",
        *rows,
    ]


def finite_or_inf(x):
    return x if math.isfinite(x) else math.inf


def fmt_loss(values):
    mean = statistics.fmean(values)
    if len(values) < 2:
        return f"{mean:.4f}"
    return f"{mean:.4f} ± {statistics.stdev(values):.4f}"


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    cfg = train_gpt.PRESETS[args.preset]
    print(
        f"compare: {', '.join(args.optimizers)} on the {args.preset} preset "
        f"(d {cfg['d_model']}, {cfg['n_layer']} layers, block {cfg['block_size']}, "
        f"batch {cfg['batch_size']}); sweep {args.sweep_steps} steps (seed 0), "
        f"full {args.steps} steps (seeds {' '.join(map(str, args.seeds))}), device {args.device}"
    )
    results = {}
    for name in args.optimizers:
        sweep = []
        for lr in args.grids[name]:
            log = train(args, name, lr, args.sweep_steps, 0, out / "sweep" / f"{name}_lr{lr:g}")
            sweep.append(
                dict(lr=lr, final_val_loss=log["final_val_loss"], wall_time_s=log["wall_time_s"])
            )
        best = min(sweep, key=lambda r: finite_or_inf(r["final_val_loss"]))
        runs = []
        for seed in args.seeds:
            run_dir = out / "full" / f"{name}_seed{seed}"
            log = train(args, name, best["lr"], args.steps, seed, run_dir)
            runs.append(
                dict(
                    seed=seed,
                    final_val_loss=log["final_val_loss"],
                    eval_steps=log["eval_steps"],
                    val_loss=log["val_loss"],
                    wall_time_s=log["wall_time_s"],
                    param_count=log["param_count"],
                )
            )
        results[name] = dict(lr=best["lr"], sweep=sweep, runs=runs)
    wall = time.perf_counter() - start

    lines = [
        f"Preset {args.preset} ({runs[0]['param_count'] / 1e6:.2f}M parameters), "
        f"{args.steps} steps, seeds {', '.join(map(str, args.seeds))}; LR chosen by a "
        f"{args.sweep_steps}-step sweep (seed 0); warm-up + cosine LR schedule for all.",
        "",
        "| optimizer | chosen lr | final val loss (mean ± std) | runs |",
        "|-----------|----------:|----------------------------:|-----:|",
    ]
    for name, r in results.items():
        losses = [run["final_val_loss"] for run in r["runs"]]
        lines.append(f"| {name} | {r['lr']:g} | {fmt_loss(losses)} | {len(losses)} |")
    lines += ["", "LR sweep (final val loss at the sweep budget):", ""]
    lines += ["| optimizer | lr: final val loss |", "|-----------|--------------------|"]
    for name, r in results.items():
        cells = ", ".join(f"{s['lr']:g}: {s['final_val_loss']:.4f}" for s in r["sweep"])
        lines.append(f"| {name} | {cells} |")
    lines += paired_differences(results)
    train_s = sum(r["wall_time_s"] for v in results.values() for r in v["sweep"] + v["runs"])
    lines += [
        "",
        f"Training time of all runs {train_s:.0f} s on {args.device} (this invocation "
        f"{wall:.0f} s; --reuse takes finished runs from their logs).",
    ]
    table = "\n".join(lines)
    print()
    print(table)
    (out / "compare.md").write_text(table + "\n")
    summary = dict(
        config={k: v for k, v in vars(args).items() if not k.startswith("lrs_")},
        results=results,
        wall_time_s=wall,
    )
    (out / "compare.json").write_text(json.dumps(summary, indent=1))
    plot(results, out / "val_loss.png", args)
    print(f"\nwrote {out}/compare.md, compare.json and val_loss.png")
    return summary


def plot(results, path, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results.items():
        steps = r["runs"][0]["eval_steps"]
        curves = [run["val_loss"] for run in r["runs"]]
        mean = [statistics.fmean(v) for v in zip(*curves)]
        style = "o--" if name.startswith("soft") else "o-"
        ax.plot(steps[1:], mean[1:], style, ms=3, label=f"{name} (lr {r['lr']:g})")
        if len(curves) > 1:
            lo = [min(v) for v in zip(*curves)]
            hi = [max(v) for v in zip(*curves)]
            ax.fill_between(steps[1:], lo[1:], hi[1:], alpha=0.15)
    sign_steps = math.floor(args.alpha_sign * args.steps + 0.5)
    if any(n.startswith("soft") for n in results):
        ax.axvline(sign_steps, color="gray", ls="--", lw=1, label="soft transition start")
    ax.set_xlabel("step")
    ax.set_ylabel("validation loss (nats/byte)")
    ax.set_title(f"train_gpt, {args.preset} preset, seeds {args.seeds}", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
