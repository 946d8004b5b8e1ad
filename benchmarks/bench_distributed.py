"""optimizer.step() with FSDP2-sharded parameters (DTensors from fully_shard) next to the same
step on plain tensors, in one process on a single-rank mesh: what the distributed path
(local-shard kernels, all-reduced selection histograms, whole-matrix owners with
all_to_all) costs when there is nothing to communicate. NCCL on CUDA, gloo on the CPU.

    python benchmarks/bench_distributed.py [--device cuda] [--scale 1.0] [--repeats 20]

Shapes: GPT-2 small (148 tensors; --scale shrinks first dimensions, 0.25 by default on the
CPU). SoftSignum runs on every tensor, SoftMuon on muon_param_groups-like groups (hidden
matrices on the matrix path, the rest on AdamW). The soft phases are timed after the fit.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
import torch.distributed as dist
from common import GPT_SETS, add_device_option, device_name, gpt_shapes, timer
from torch import nn

import softsign


class Params(nn.Module):
    """A module that only holds parameters of the given shapes (fully_shard needs a module)."""

    def __init__(self, shapes, device):
        super().__init__()
        self.params = nn.ParameterList(torch.randn(s, device=device) * 0.02 for s in shapes)


def make_optimizer(name, module, hidden):
    params = list(module.parameters())
    # The soft phase from step 3 on: the 3 warm-up steps include the fit.
    schedule = dict(sign_steps=2 if "soft phase" in name else 10**6, transition_steps=1000)
    if name.startswith("SoftSignum"):
        return softsign.SoftSignum(params, lr=1e-4, **schedule)
    matrices = [p for p, h in zip(params, hidden) if h]
    others = [p for p, h in zip(params, hidden) if not h]
    groups = [dict(params=matrices, use_muon=True), dict(params=others, use_muon=False)]
    return softsign.SoftMuon(groups, lr=0.02, **schedule)


CASES = ["SoftSignum (sign phase)", "SoftSignum (soft phase)"]
CASES += ["SoftMuon (sign phase)", "SoftMuon (soft phase)"]


def main():
    ap = argparse.ArgumentParser()
    add_device_option(ap)
    ap.add_argument("--scale", type=float, default=None)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args()
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    scale = args.scale if args.scale is not None else (1.0 if cuda else 0.25)
    repeats = args.repeats or (20 if cuda else 3)
    backend = "nccl" if cuda else "gloo"
    store = os.path.join(tempfile.mkdtemp(), "store")
    dist.init_process_group(backend, init_method=f"file://{store}", rank=0, world_size=1)
    from torch.distributed.fsdp import fully_shard

    shapes = gpt_shapes(**GPT_SETS["gpt2"], scale=scale)
    # Hidden matrices: 2-D and not the two embeddings (the first two shapes).
    hidden = [len(s) == 2 and i >= 2 for i, s in enumerate(shapes)]
    run = timer(device)
    name = device_name(device)
    n = sum(torch.Size(s).numel() for s in shapes)
    print(
        f"# optimizer.step(), GPT-2-small shapes x{scale} ({len(shapes)} tensors, {n / 1e6:.1f}M "
        f"params), {device.type} ({name}, {torch.get_num_threads()} threads), torch "
        f"{torch.__version__}, {backend} single-rank mesh, median of {repeats}\n"
    )
    print("| optimizer | plain ms | FSDP2 (1 rank) ms | FSDP2 / plain |")
    print("|---|---:|---:|---:|")
    for label in CASES:
        times = []
        for sharded in (False, True):
            torch.manual_seed(0)
            module = Params(shapes, device)
            if sharded:
                fully_shard(module)
            for p in module.parameters():
                p.grad = torch.randn_like(p) * 1e-3
            opt = make_optimizer(label, module, hidden)
            for _ in range(3):
                opt.step()
            times.append(run(opt.step, repeats))
            del opt, module
        print(
            f"| {label} | {times[0] * 1e3:.2f} | {times[1] * 1e3:.2f} | {times[1] / times[0]:.2f} |"
        )
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
