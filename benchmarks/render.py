"""Renders bench_step.py's JSON lines as a markdown report and PNG plots.

    python benchmarks/render.py results/cpu_step_2core.jsonl [more.jsonl ...] \\
        [--out results/cpu_step_2core.md] [--png-dir results]

One section per bench_step.py run (the rows that share a "run" id), in file order: the
device, torch, the command that produced it, the bandwidth floor and a table. A sweep run
gets two pivot tables (ms/step and x floor, one column per tensor count). With --png-dir,
one plot per run: ms/step per optimizer (gpt2, 1b), or x floor and ms/step against the
tensor count (sweep). Lines of other benchmarks (bench_muon.py's) are skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict

from step_tables import heading, markdown, runs_of


def load(paths):
    rows, skipped = [], 0
    for path in paths:
        with open(path) as f:
            for line in f:
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("bench") == "step":
                    rows.append(row)
                else:
                    skipped += 1
    if skipped:
        print(f"render: skipped {skipped} lines of other benchmarks", file=sys.stderr)
    return rows


def plain_log_axis(axis):
    """Log-scale tick labels as plain numbers (20, 50, 100), not 2 x 10^1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def plot_sweep(plt, rows):
    if any(r["kind"] == "elementwise" for r in rows):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 6))
    else:  # matrix optimizers only: no floor to compare with
        fig, ax2 = plt.subplots(figsize=(6.5, 6))
        ax1 = None
    by_opt = defaultdict(list)
    for r in rows:
        by_opt[(r["optimizer"], r["kind"])].append(r)
    # tab10 colors within each kind; the kinds differ by line style and marker.
    seen = defaultdict(int)
    for (label, kind), rs in by_opt.items():
        rs.sort(key=lambda r: r["set_n_tensors"])
        counts = [r["set_n_tensors"] for r in rs]
        elementwise = kind == "elementwise"
        style = dict(color=f"C{seen[kind] % 10}", ms=4, marker="o" if elementwise else "s")
        style["ls"] = "-" if elementwise else "--"
        seen[kind] += 1
        if ax1 is not None and elementwise:
            ax1.plot(counts, [r["x_floor"] for r in rs], **style)
        ax2.plot(counts, [r["ms_per_step"] for r in rs], label=label, **style)
    if ax1 is not None:
        ax1.axhline(1.0, color="gray", lw=1, ls=":")
        ax1.text(counts[0], 1.03, "copy floor", fontsize=7, color="gray")
        # Measured once per tensor count, like the copy floor: drawn as measured.
        floors = sorted({r["set_n_tensors"]: r for r in rows}.items())
        inplace = [r["inplace_floor_ms"] / r["floor_ms"] for _, r in floors]
        ax1.plot([n for n, _ in floors], inplace, color="gray", lw=1, ls="-.")
        ax1.text(counts[0], inplace[0] * 1.03, "in-place floor", fontsize=7, color="gray")
        ax1.set_ylabel("step time / copy floor (element-wise optimizers)")
    for ax in (ax1, ax2) if ax1 is not None else (ax2,):
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log_axis(ax.yaxis)
        ax.set_xlabel("tensors (same total size)")
        ax.grid(True, which="major", alpha=0.3)
    ax2.set_ylabel("ms per step")
    ncol = 3 if ax1 is not None else 2
    fig.legend(loc="lower center", ncol=ncol, fontsize=7, frameon=False)
    r0 = rows[0]
    fig.suptitle(
        f"optimizer.step() vs tensor count, {r0['set_n_params'] / 1e6:.1f}M params,\n"
        f"{r0['device_name']} ({r0['threads']} threads), torch {r0['torch']}",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.17, 1, 1))
    return fig


def plot_bars(plt, rows):
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(rows) + 1.9))
    rows = rows[::-1]  # barh draws bottom-up
    labels = [f"{r['optimizer']} ({r['n_tensors']} tensors)" for r in rows]
    values = [r["ms_per_step"] for r in rows]
    colors = ["C0" if r["kind"] == "elementwise" else "C1" for r in rows]
    ax.barh(labels, values, color=colors)
    for y, v in enumerate(values):
        ax.text(v, y, f" {v:.1f}", va="center", fontsize=7)
    if any(r["kind"] == "elementwise" for r in rows):
        # The floors are those of every tensor: only the element-wise rows step them all.
        ax.axvline(rows[0]["floor_ms"], color="gray", ls="--", lw=1, label="copy floor")
        ax.axvline(rows[0]["inplace_floor_ms"], color="gray", ls=":", lw=1, label="in-place floor")
        ax.legend(fontsize=8, loc="lower right")
    ax.set_xscale("log")
    plain_log_axis(ax.xaxis)
    ax.set_xlim(right=max(values) * 2)  # room for the value labels
    ax.set_xlabel("ms per step (log scale)")
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title(f"optimizer.step(), {heading(rows)}\ntorch {rows[0]['torch']}", fontsize=9)
    fig.tight_layout()
    return fig


def plot_runs(runs, png_dir, link_dir, png_prefix=None):
    """Writes one PNG per run; returns {run: path relative to link_dir}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(png_dir, exist_ok=True)
    written, out = set(), {}
    for run, rows in runs.items():
        r0 = rows[0]
        prefix = f"step_{r0['device']}_" if png_prefix is None else png_prefix
        stem = name = f"{prefix}{r0['shapes']}_x{r0['scale']:g}"
        i = 1
        while name in written:
            i += 1
            name = f"{stem}_{i}"
        written.add(name)
        path = os.path.join(png_dir, name + ".png")
        fig = plot_sweep(plt, rows) if r0["shapes"] == "sweep" else plot_bars(plt, rows)
        fig.savefig(path, dpi=90)
        plt.close(fig)
        out[run] = os.path.relpath(path, link_dir)
        print(f"render: wrote {path}", file=sys.stderr)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("jsonl", nargs="+", help="bench_step.py --json files")
    ap.add_argument("--out", help="write the markdown here (default: stdout)")
    ap.add_argument("--png-dir", help="write one PNG per run into this folder")
    ap.add_argument(
        "--png-prefix", help="PNG names: PREFIX<shapes>_x<scale>.png (default step_<device>_)"
    )
    ap.add_argument("--title", help="a heading for the markdown")
    ap.add_argument(
        "--note", action="append", default=[], help="a paragraph after the heading (repeatable)"
    )
    args = ap.parse_args(argv)
    runs = runs_of(load(args.jsonl))
    if not runs:
        sys.exit("render: no bench_step.py rows found")
    link_dir = os.path.dirname(os.path.abspath(args.out)) if args.out else os.getcwd()
    pngs = plot_runs(runs, args.png_dir, link_dir, args.png_prefix) if args.png_dir else {}
    text = markdown(runs, pngs)
    head = ([f"# {args.title}"] if args.title else []) + args.note
    if head:
        text = "\n\n".join(head) + "\n\n" + text
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        print(f"render: wrote {args.out}", file=sys.stderr)
    else:
        print(text)


if __name__ == "__main__":
    main()
