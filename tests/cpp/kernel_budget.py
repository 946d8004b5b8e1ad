"""The register budget of the CUDA kernels: reads the ptxas reports the build keeps beside
each CUDA object (cmake/ptxas_report.sh, -Xptxas -v, sm_90), prints registers, spills and
stack per kernel, and fails on any local-memory spill. With --write, puts the table into
benchmarks/README.md between its kernel-budget markers.

    python tests/cpp/kernel_budget.py BUILD/CMakeFiles/softsign.dir/csrc/ops/cuda [--write]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

OPS = ("SoftSignStepOp", "HistogramOp", "CollectOp", "CandidateHistogramOp", "AdvanceOp")
DTYPES = {"N3c104HalfE": "float16", "N3c108BFloat16E": "bfloat16", "f": "float32", "d": "float64"}
BEGIN, END = "<!-- kernel-budget:begin -->", "<!-- kernel-budget:end -->"


def kernel_name(mangled: str) -> str:
    for op in OPS:
        m = re.search(op + r"I(N3c104HalfE|N3c108BFloat16E|f|d)Lb([01])E", mangled)
        if m:
            return f"{op}<{DTYPES[m.group(1)]}, {'buffers' if m.group(2) == '1' else 'no buffers'}>"
        if re.search(r"\d" + op + r"E", mangled) or mangled.endswith(op):
            return op
    return mangled


def parse(text: str, source: str) -> list[dict]:
    kernels, cur = [], None
    for line in text.splitlines():
        m = re.search(r"Compiling entry function '(\S+)' for '(\w+)'", line)
        if m:
            cur = {"kernel": kernel_name(m.group(1)), "arch": m.group(2), "source": source}
            kernels.append(cur)
            continue
        if cur is None:
            continue
        m = re.search(
            r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line
        )
        if m:
            cur["stack"], cur["spill_stores"], cur["spill_loads"] = map(int, m.groups())
        m = re.search(r"Used (\d+) registers", line)
        if m:
            cur["registers"] = int(m.group(1))
    return kernels


def table(kernels: list[dict]) -> str:
    rows = ["| source | kernel | arch | registers | spill stores / loads (bytes) | stack (bytes) |"]
    rows.append("|---|---|---|---:|---:|---:|")
    for k in sorted(kernels, key=lambda k: (k["source"], k["kernel"], k["arch"])):
        rows.append(
            f"| {k['source']} | {k['kernel']} | {k['arch']} | {k.get('registers', '?')} | "
            f"{k.get('spill_stores', '?')} / {k.get('spill_loads', '?')} | {k.get('stack', '?')} |"
        )
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", type=Path, help="folder of the CUDA objects and their .ptxas.txt")
    ap.add_argument("--write", action="store_true", help="update benchmarks/README.md")
    ap.add_argument("--arch", help="only this architecture's kernels, e.g. sm_90")
    args = ap.parse_args()
    reports = sorted(args.logs.rglob("*.ptxas.txt"))
    kernels = []
    for r in reports:
        kernels += parse(r.read_text(), r.name.split(".")[0])
    if args.arch:
        kernels = [k for k in kernels if k["arch"] == args.arch]
    if not kernels:
        print(f"no ptxas report under {args.logs}: was the library built with CUDA?")
        return 1
    text = table(kernels)
    print(text)
    if args.write:
        readme = Path(__file__).resolve().parents[2] / "benchmarks" / "README.md"
        body = readme.read_text()
        start, end = body.index(BEGIN) + len(BEGIN), body.index(END)
        readme.write_text(body[:start] + "\n" + text + "\n" + body[end:])
    bad = [k for k in kernels if k.get("spill_stores", 1) or k.get("spill_loads", 1)]
    for k in bad:
        print(f"SPILL: {k['kernel']} in {k['source']}: {k.get('spill_stores')} bytes stored")
    unknown = [k for k in kernels if "registers" not in k or "stack" not in k]
    for k in unknown:
        print(f"UNREAD: no register or spill line for {k['kernel']}")
    return 1 if bad or unknown else 0


if __name__ == "__main__":
    sys.exit(main())
