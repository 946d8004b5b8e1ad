"""The fused step op alone, without the optimizer's Python: torch.ops.softsign.soft_sign_step_
(sign and soft phase) against torch._fused_sgd_ (heavy-ball momentum, the same memory
traffic), on 2 fp32 tensors of each size, in ns per element. Small sizes stay in cache and
show the kernel's arithmetic and per-call cost; large ones its memory traffic.

    python benchmarks/bench_step_kernel.py                 # 1 thread, CPU
    python benchmarks/bench_step_kernel.py --threads 2 --sizes 262144 4194304
    python benchmarks/bench_step_kernel.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch
from common import add_device_option, sync

import softsign  # noqa: F401  (registers torch.ops.softsign)


def timed(fn, device, min_seconds=0.3):
    """Best per-call seconds of 5 rounds, each long enough to time. Calls of a few
    microseconds: each round times a loop of them (CUDA events around one call would time
    the launch, not the loop's throughput)."""
    for _ in range(5):
        fn()
    sync(device)
    reps, elapsed = 1, 0.0
    while elapsed < min_seconds / 5:
        reps *= 2
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(device)
        elapsed = time.perf_counter() - start
    best = elapsed / reps
    for _ in range(4):
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        sync(device)
        best = min(best, (time.perf_counter() - start) / reps)
    return best


def measure(n, device):
    """Seconds per call of the sign step, the soft step and torch's fused SGD."""
    gen = torch.Generator().manual_seed(0)
    ps, gs, bs = ([torch.randn(n, generator=gen).to(device) for _ in range(2)] for _ in "pgb")
    tau = torch.tensor(3.0, dtype=torch.float64, device=device)
    # The same heavy-ball step for both ops, each with its own names for the rest.
    sgd = dict(lr=1e-9, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)
    ours = dict(sgd, maximize=False, first_step=False, lr_tensor=None, grad_scale=None)
    step = torch.ops.softsign.soft_sign_step_
    sign = timed(lambda: step(ps, gs, bs, temperature=None, found_inf=None, **ours), device)
    soft = timed(lambda: step(ps, gs, bs, temperature=tau, found_inf=None, **ours), device)
    torch_sgd = dict(sgd, maximize=False, is_first_step=False)
    fused = timed(lambda: torch._fused_sgd_(ps, gs, bs, **torch_sgd), device)
    return sign, soft, fused


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_device_option(ap, "cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--sizes", nargs="+", type=int, default=[4096, 32768, 262144, 2097152])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"{torch.__version__}, {device}, {torch.get_num_threads()} threads; 2 fp32 tensors")
    print(
        f"{'elements':>10} {'sign ns/el':>11} {'soft ns/el':>11} {'SGD ns/el':>10} "
        f"{'sign/SGD':>9} {'soft/SGD':>9}"
    )
    for n in args.sizes:
        sign, soft, sgd = measure(n, device)
        per = 1e9 / (2 * n)
        print(
            f"{n:>10} {sign * per:>11.3f} {soft * per:>11.3f} {sgd * per:>10.3f} "
            f"{sign / sgd:>9.2f} {soft / sgd:>9.2f}"
        )


if __name__ == "__main__":
    main()
