"""What the benchmarks share, so that none of them imports another: the machine's
description, the GPT-2 style shape sets, timing (CUDA events on GPUs), peak memory on CUDA,
the Newton-Schulz FLOP counts and a per-matrix pure-PyTorch SoftMuon, JSON lines and the
--device option. bench_step.py's rows as markdown are in step_tables.py, which render.py
shares without needing torch.

The benchmarks run as scripts (`python benchmarks/bench_step.py`), so Python finds this
module in the script's own folder.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import torch

from softsign.reference.spectral import soft_newton_schulz

# ---------------------------------------------------------------------------- the machine


def device_name(device) -> str:
    """The GPU's name, or the CPU's model name (platform.processor() is empty on Linux)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg():
    """The 1-minute load average: other processes on the machine make timings noisy, and
    the rows record how busy it was."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def git_commit():
    """The checkout's short commit, or None outside a git checkout."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=os.path.dirname(os.path.abspath(__file__)),
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def add_device_option(ap: argparse.ArgumentParser, default: str | None = None) -> None:
    """--device, by default cuda where torch sees a GPU and cpu elsewhere."""
    ap.add_argument("--device", default=default or ("cuda" if torch.cuda.is_available() else "cpu"))


def append_jsonl(path, rows) -> None:
    """Appends one JSON object per row to the file at `path`."""
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------------- shapes

# bench_step.py's and bench_fit.py's sets: GPT-2 small (124.4M) and the same layout with
# d = 2048 and 24 layers (1.31B).
GPT_SETS = {"gpt2": dict(width=768, layers=12), "1b": dict(width=2048, layers=24)}


def gpt_shapes(width: int, layers: int, scale: float = 1.0, vocab=50257, ctx=1024):
    """The parameter tensors of a GPT-2 style model (token and position embeddings; per
    layer two norms, fused QKV, attention output, MLP up and down with biases; a final
    norm), first dims scaled by `scale`."""
    d = width
    s = lambda n: max(1, int(n * scale))  # noqa: E731
    shapes = [(s(vocab), d), (s(ctx), d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (s(3 * d), d), (3 * d,), (s(d), d), (d,)]
        shapes += [(d,), (d,), (s(4 * d), d), (4 * d,), (s(d), 4 * d), (d,)]
    return shapes + [(d,), (d,)]


def hidden_matrices(shapes) -> list[int]:
    """Indices of the matrices a Muon-style optimizer gets in a gpt_shapes() list: every
    2-D shape but the first (the token embedding, tied to the output head). The position
    embedding stays in, as GPT-2-small Muon benchmarks count it (49 matrices, 85.7M)."""
    return [i for i, s in enumerate(shapes) if len(s) == 2 and i > 0]


# ---------------------------------------------------------------------------- timing


def sync(device) -> None:
    """Waits for the device's queued work (nothing to wait for on a CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def sampler(device) -> Callable[[Callable[[], object], int], list[float]]:
    """fn, repeats -> the seconds of each call, each timed alone: CUDA events on GPUs
    (the host does not wait between steps otherwise), perf_counter elsewhere."""
    if torch.device(device).type == "cuda":

        def run(fn, repeats):
            times = []
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1e3)
            return times

        return run

    def run(fn, repeats):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return times

    return run


def timer(device) -> Callable[[Callable[[], object], int], float]:
    """fn, repeats -> median seconds per call, timed as sampler() does."""
    sample = sampler(device)
    return lambda fn, repeats: statistics.median(sample(fn, repeats))


class CudaMemory:
    """Bytes a block allocates on a CUDA device above what was allocated when it started:
    `peak` (the caching allocator's peak) and `now` (still allocated at its end), set when
    the block ends; both stay None on other devices."""

    def __init__(self, device):
        self.device = torch.device(device)
        self.peak = self.now = None
        self._base = 0

    def __enter__(self):
        if self.device.type == "cuda":
            gc.collect()  # garbage of an earlier measurement must not count
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device) - self._base
            self.now = torch.cuda.memory_allocated(self.device) - self._base
        return False


# ---------------------------------------------------------------------------- matrix work


def ns_flops(shapes, steps=5):
    """FLOPs of Newton-Schulz (multiply-add = 2) over matrices of the given shapes, per
    matrix with m <= n (the Gram side is m): per step A = X X^T (2 m^2 n), A A (2 m^3) and
    B X (2 m^2 n), so 4 m^2 n + 2 m^3."""
    total = 0
    for r, c in shapes:
        m, n = min(r, c), max(r, c)
        total += steps * (4 * m * m * n + 2 * m**3)
    return total


def soft_ns_flops(shapes, steps=5):
    """FLOPs of the public soft map ("newton_schulz", `steps` steps), counted as ns_flops()
    does: X X^T (2 m^2 n), a first step Y T (2 m^3), later steps Z Y, Y T, T Z (6 m^3
    each), Z X (2 m^2 n)."""
    total = 0
    for r, c in shapes:
        m, n = min(r, c), max(r, c)
        total += 4 * m * m * n + 2 * m**3 + max(steps - 1, 0) * 6 * m**3
    return total


class PerMatrixSoftMuon:
    """SoftMuon the way a user would write it in plain PyTorch: one matrix at a time, the
    public coupled iteration in bf16 (softsign.reference.spectral), no batching."""

    def __init__(self, params, lr=0.02, momentum=0.95, tau=100.0):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.bufs = [torch.zeros_like(p) for p in params]
        self.tau = torch.tensor(tau, dtype=torch.float64, device=params[0].device)

    @torch.no_grad()
    def step(self):
        for p, buf in zip(self.params, self.bufs):
            buf.lerp_(p.grad, 1 - self.momentum)
            d = p.grad.lerp(buf, self.momentum)
            o = soft_newton_schulz(d, self.tau, 5, dtype=torch.bfloat16)
            p.add_(o.to(p.dtype), alpha=-self.lr * max(1.0, p.shape[0] / p.shape[1]) ** 0.5)
