"""bench_step.py's JSON rows as markdown: one section per run (the rows that share a "run"
id) with its device, torch, command and bandwidth floor, then a table, or pivot tables (one
column per tensor count) for the sweep. bench_step.py prints these tables and render.py
writes them; plain Python, so that render.py runs where torch is not installed.
"""

from __future__ import annotations

from collections import defaultdict


def runs_of(rows):
    """{run id: rows}, in the order the runs first appear."""
    runs = defaultdict(list)
    for r in rows:
        runs[r["run"]].append(r)
    return runs


def fmt(x, spec):
    return "-" if x is None else format(x, spec)


def mib(b):
    return None if b is None else b / 2**20


def heading(rows):
    r = rows[0]
    return (
        f"{r['shapes']} shapes x{r['scale']:g}, {r['device']} ({r['device_name']}, "
        f"{r['threads']} threads)"
    )


def rounds_note(r):
    rounds = r.get("rounds", 1)
    return f", in {rounds} rounds over all optimizers" if rounds > 1 else ""


def run_header(rows):
    r = rows[0]
    cuda = f", CUDA {r['cuda']}" if r.get("cuda") else ""
    lines = [
        f"### {heading(rows)}",
        "",
        f"`{r['command']}`",
        "",
        f"torch {r['torch']}{cuda}, softsign {r['softsign']} (checkout at {r.get('commit')}), "
        f"run {r['run']}; median of {r['repeats']} steps after {r['warmup']} warm-up"
        f"{rounds_note(r)}; "
        f"memory: {r['memory']}.",
        "",
    ]
    loads = [x.get("load_start") for x in rows] + [x.get("load_end") for x in rows]
    loads = [x for x in loads if x is not None]
    if loads:
        lines += [
            f"1-minute load average during the run: {min(loads):.2f} to {max(loads):.2f} "
            f"(this run's own {r['threads']} threads included).",
            "",
        ]
    floors = {x["set_n_tensors"]: x for x in rows}
    lines.append(
        "Bandwidth floor, 5 fp32 passes at the speed of a copy (in-place add): "
        + "; ".join(
            f"{n} tensors {x['floor_ms']:.2f} ms at {x['copy_gbps']:.1f} GB/s "
            f"({x['inplace_floor_ms']:.2f} ms at {x['inplace_gbps']:.1f} GB/s)"
            for n, x in floors.items()
        )
        + "."
    )
    return lines + [""]


def label(r):
    """The optimizer, with its sample count where --budget cut the repeats."""
    samples = r.get("samples", r["repeats"])
    return r["optimizer"] + (f" (median of {samples})" if samples < r["repeats"] else "")


def table(rows):
    lines = [
        "| optimizer | tensors | params | ms/step | GB/s | x floor | x in-place floor "
        "| x AdamW fused | x torch Muon | TFLOP/s | peak MiB | state MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {label(r)} | {r['n_tensors']} | {r['n_params'] / 1e6:.1f}M | "
            f"{r['ms_per_step']:.2f} | {fmt(r['gbps'], '.1f')} | {fmt(r['x_floor'], '.2f')} | "
            f"{fmt(r['x_inplace_floor'], '.2f')} | "
            f"{fmt(r['x_adamw'], '.2f')} | {fmt(r['x_torch_muon'], '.2f')} | "
            f"{fmt(r['tflops'], '.3f')} | {fmt(mib(r['peak_mem_bytes']), '.1f')} | "
            f"{fmt(mib(r['state_bytes']), '.1f')} |"
        )
    return lines


def pivot(rows, field, spec, title):
    """One row per optimizer, one column per tensor count."""
    counts = sorted({r["set_n_tensors"] for r in rows})
    cells = defaultdict(dict)
    for r in rows:
        value = fmt(r[field], spec)
        if value != "-" and r.get("samples", r["repeats"]) < r["repeats"]:
            value += f" ({r['samples']})"  # fewer samples: the --budget cut the repeats
        cells[r["optimizer"]][r["set_n_tensors"]] = value
    names = [n for n in dict.fromkeys(r["optimizer"] for r in rows)]
    names = [n for n in names if any(v != "-" for v in cells[n].values())]
    if not names:
        return []
    lines = [
        f"{title}:",
        "",
        "| optimizer | " + " | ".join(f"{c} tensors" for c in counts) + " |",
        "|---|" + "---:|" * len(counts),
    ]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(cells[n].get(c, "-") for c in counts) + " |")
    return lines + [""]


def markdown(runs, pngs):
    """The report of runs_of()'s runs; `pngs` maps a run to the path of its plot."""
    lines = []
    for run, rows in runs.items():
        lines += run_header(rows)
        if rows[0]["shapes"] == "sweep":
            per = rows[0]["set_n_params"] / rows[0]["set_n_tensors"]
            lines.append(
                f"{rows[0]['set_n_params'] / 1e6:.1f}M parameters in every column, "
                f"(rows, 64) matrices ({per:.0f} parameters each at {rows[0]['set_n_tensors']} "
                "tensors)."
            )
            lines.append("")
            lines += pivot(rows, "ms_per_step", ".2f", "ms/step")
            lines += pivot(rows, "x_floor", ".2f", "x floor (element-wise optimizers)")
            lines += pivot(rows, "x_inplace_floor", ".2f", "x in-place floor")
            lines += pivot(rows, "x_adamw", ".2f", "x torch AdamW (fused)")
            lines += pivot(rows, "x_torch_muon", ".2f", "x torch.optim.Muon")
        else:
            lines += table(rows)
            lines.append("")
        if run in pngs:
            lines += [f"![{heading(rows)}]({pngs[run]})", ""]
    return "\n".join(lines)
