"""The fused step op alone, without the optimizer's Python: torch.ops.softsign.soft_sign_step_
(sign and soft phase) against torch._fused_sgd_ (heavy-ball momentum, the same memory
traffic), on 2 fp32 tensors of each size, in ns per element. Small sizes stay in cache and
show the kernel's arithmetic and per-call cost; large ones its memory traffic. --rules times
each momentum rule of the kernels (Note [momentum rules]), and the fit's selection over the
same directions (direction_median_mad) beside the step: none, heavy_ball and nesterov, and
the rule of every element-wise optimizer of softsign.elementwise_pairs() that has its own
(lion for Lion), with that class's defaults.

    python benchmarks/bench_step_kernel.py                 # 1 thread, CPU
    python benchmarks/bench_step_kernel.py --threads 2 --sizes 262144 4194304
    python benchmarks/bench_step_kernel.py --rules none heavy_ball nesterov lion
    python benchmarks/bench_step_kernel.py --device cuda
"""

from __future__ import annotations

import argparse
import time

import torch
from common import add_device_option, sync

import softsign  # registers torch.ops.softsign
from softsign.optim._elementwise import rule_keywords


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


def elementwise_rules() -> dict:
    """{rule name: op keywords} of each element-wise optimizer of this softsign whose momentum
    rule is its own (Lion's "lion"), with its class's defaults; the heavy-ball ones (Signum)
    are left to RULES' fixed entries."""
    rules = {}
    for plain, _soft in softsign.elementwise_pairs().values():
        keywords = rule_keywords(plain)
        rule = keywords.get("momentum_rule", "heavy_ball")
        if rule != "heavy_ball":
            rules.setdefault(rule, keywords)
    return rules


# The ops' momentum arguments of each rule: the heavy ball without momentum, plain and
# Nesterov, then the rules of softsign's element-wise optimizers (Lion's: b2 = 0.99 as
# momentum and dampening, b1 = 0.9 as its coefficient), so a new pair's rule is timed with
# no edit here.
RULES = {
    "none": dict(momentum=0.0, dampening=0.0, nesterov=False),
    "heavy_ball": dict(momentum=0.9, dampening=0.0, nesterov=False),
    "nesterov": dict(momentum=0.9, dampening=0.0, nesterov=True),
    **elementwise_rules(),
}


def measure(n, device, rule="heavy_ball", fit=False):
    """Seconds per call of the sign step, the soft step, torch's fused SGD and (fit) the
    selection of the directions' median and MAD (else NaN)."""
    gen = torch.Generator().manual_seed(0)
    ps, gs, bs = ([torch.randn(n, generator=gen).to(device) for _ in range(2)] for _ in "pgb")
    tau = torch.tensor(3.0, dtype=torch.float64, device=device)
    momentum = RULES[rule]
    bufs = bs if momentum["momentum"] != 0.0 or "momentum_rule" in momentum else []
    ours = dict(momentum, lr=1e-9, weight_decay=0.0, maximize=False, first_step=False)
    ours.update(lr_tensor=None, grad_scale=None)
    step = torch.ops.softsign.soft_sign_step_
    sign = timed(lambda: step(ps, gs, bufs, temperature=None, found_inf=None, **ours), device)
    soft = timed(lambda: step(ps, gs, bufs, temperature=tau, found_inf=None, **ours), device)
    # torch's heavy-ball step: the same memory traffic as ours with a buffer.
    torch_sgd = dict(lr=1e-9, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False)
    torch_sgd.update(maximize=False, is_first_step=False)
    fused = timed(lambda: torch._fused_sgd_(ps, gs, bs, **torch_sgd), device)
    select = float("nan")
    if fit:
        select_args = dict(momentum, maximize=False, grad_scale=None)
        select = timed(
            lambda: torch.ops.softsign.direction_median_mad(gs, bufs, [], **select_args), device
        )
    return sign, soft, fused, select


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_device_option(ap, "cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    ap.add_argument("--sizes", nargs="+", type=int, default=[4096, 32768, 262144, 2097152])
    ap.add_argument(
        "--rules",
        nargs="+",
        choices=sorted(RULES),
        help="time these momentum rules, and the fit's selection (default: heavy_ball alone)",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"{torch.__version__}, {device}, {torch.get_num_threads()} threads; 2 fp32 tensors")
    rules = args.rules or ["heavy_ball"]
    fit = args.rules is not None
    print(
        f"{'rule':>10} {'elements':>10} {'sign ns/el':>11} {'soft ns/el':>11} {'SGD ns/el':>10} "
        f"{'sign/SGD':>9} {'soft/SGD':>9}" + (f" {'fit ns/el':>10}" if fit else "")
    )
    for rule in rules:
        for n in args.sizes:
            sign, soft, sgd, select = measure(n, device, rule, fit)
            per = 1e9 / (2 * n)
            print(
                f"{rule:>10} {n:>10} {sign * per:>11.3f} {soft * per:>11.3f} {sgd * per:>10.3f} "
                f"{sign / sgd:>9.2f} {soft / sgd:>9.2f}"
                + (f" {select * per:>10.3f}" if fit else "")
            )


if __name__ == "__main__":
    main()
