"""CUDA-graph capture and replay of softsign's fused steps, compared with eager steps.

step() never synchronizes with the host (tests/python/test_cuda.py), which is what a CUDA
graph needs: the step is captured once and replayed with new gradients copied into the
same (static) .grad tensors. Each case builds two identical optimizers on identical
parameters, warms both up eagerly into the phase under test, captures one optimizer's
step() and then feeds both the same gradients: the eager one steps, the graph replays.
Parameters and momentum buffers must stay bit-identical (the same kernels run on the same
inputs).

Cases: Signum; Signum with a device lr tensor changed between replays (the capturable
schedule the README promises: the graph reads the tensor, not a captured number);
SoftSignum in its sign phase; SoftSignum after the transition (a constant tau). A graph
holds the schedule entry tau_j of the step it captured, because the optimizer picks j on
the host; replays during the transition therefore repeat that tau. The last case shows
that (reported, not a failure).

    python scripts/gpu_graph_check.py                 # CUDA: capture and replay
    python scripts/gpu_graph_check.py --device cpu    # eager comparison only (no graphs)

Exits nonzero when a required case differs or a capture fails.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import torch

import softsign

SHAPES = [(1,), (333,), (65536 + 5,), (48, 64), (7, 3, 3)]


@dataclass
class Case:
    name: str
    build: Callable  # (params, lr) -> optimizer
    warmup: int  # eager steps before the capture
    lr_tensor: bool = False  # lr is a device tensor, changed before every step
    required: bool = True  # False: the outcome is reported, not checked


CASES = [
    Case("Signum", lambda ps, lr: softsign.Signum(ps, lr=lr, nesterov=True, weight_decay=0.1), 3),
    Case(
        "Signum, device lr tensor changed between replays",
        lambda ps, lr: softsign.Signum(ps, lr=lr, momentum=0.9),
        3,
        lr_tensor=True,
    ),
    Case(
        "SoftSignum, sign phase",
        lambda ps, lr: softsign.SoftSignum(
            ps, lr=lr, weight_decay=0.1, sign_steps=100, transition_steps=10
        ),
        3,
    ),
    Case(
        "SoftSignum, after the transition (constant tau)",
        lambda ps, lr: softsign.SoftSignum(
            ps, lr=lr, nesterov=True, sign_steps=2, transition_steps=3
        ),
        6,  # steps 1-2 sign, 3 fit, 4-5 soft: step 6 on uses tau_2 for good
    ),
    Case(
        "SoftSignum, captured inside the transition",
        lambda ps, lr: softsign.SoftSignum(ps, lr=lr, sign_steps=2, transition_steps=20),
        4,
        required=False,
    ),
]


def grads(k, device):
    gen = torch.Generator().manual_seed(1000 + k)
    return [torch.randn(s, generator=gen).to(device) for s in SHAPES]


def lr_at(k):
    return 1e-2 / (1 + 0.3 * k)  # any schedule that changes every step


def state_of(opt, params):
    """Parameters and momentum buffers, for comparison."""
    out = [p.detach() for p in params]
    out += [opt.state[p]["momentum_buffer"] for p in params if "momentum_buffer" in opt.state[p]]
    return out


def run_case(case: Case, device, capture: bool, replays: int) -> tuple[bool, str]:
    gen = torch.Generator().manual_seed(0)
    base = [torch.randn(s, generator=gen) for s in SHAPES]
    eager = [b.to(device).requires_grad_() for b in base]
    graphed = [b.to(device).requires_grad_() for b in base]
    lrs = [torch.tensor(lr_at(0), device=device) for _ in range(2)] if case.lr_tensor else None
    opt_e = case.build(eager, lrs[0] if lrs else 1e-2)
    opt_g = case.build(graphed, lrs[1] if lrs else 1e-2)
    # The graph reads these tensors on every replay: new gradients are copied into them.
    for p in graphed:
        p.grad = torch.zeros_like(p)

    def feed(k):
        for p, q, g in zip(eager, graphed, grads(k, device)):
            p.grad = g.clone()
            q.grad.copy_(g)
        if lrs:
            for lr in lrs:
                lr.fill_(lr_at(k))

    # Warm-up on a side stream, as torch's graph documentation asks (lazy initializations
    # happen outside the capture); on the CPU it is a plain loop.
    side = torch.cuda.Stream() if capture else None
    if side is not None:
        side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side) if side is not None else contextlib.nullcontext():
        for k in range(1, case.warmup + 1):
            feed(k)
            opt_e.step()
            opt_g.step()
    if side is not None:
        torch.cuda.current_stream().wait_stream(side)
    # A fit launched in the warm-up reports its status through an event; reading it now
    # keeps event queries out of the capture.
    tau_before = opt_e.temperature(), opt_g.temperature()

    if capture:
        graph = torch.cuda.CUDAGraph()
        torch.cuda.synchronize()
        with torch.cuda.graph(graph):
            opt_g.step()
        step_g = graph.replay
    else:
        step_g = opt_g.step
    worst = 0.0
    first_diff = None
    for k in range(case.warmup + 1, case.warmup + 1 + replays):
        feed(k)
        opt_e.step()
        step_g()
        for a, b in zip(state_of(opt_e, eager), state_of(opt_g, graphed)):
            if not torch.equal(a, b):
                diff = (a.double() - b.double()).abs().max().item()
                worst = max(worst, diff)
                first_diff = first_diff or k
    if device.type == "cuda":
        torch.cuda.synchronize()
    taus = f"tau {tau_before[0]} before; eager now {opt_e.temperature()}"
    if first_diff is None:
        return True, f"{replays} steps bit-identical ({taus})"
    return False, f"differs from step {first_diff} on, max |diff| {worst:.3g} ({taus})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--replays", type=int, default=5)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    capture = device.type == "cuda"
    print(f"graph check on {device} (torch {torch.__version__}, {softsign.__file__})")
    if not capture:
        print("graph capture skipped: no CUDA device; eager-vs-eager comparison only")
    failed = 0
    for case in CASES:
        try:
            same, what = run_case(case, device, capture, args.replays)
        except Exception:
            traceback.print_exc()
            same, what = False, "raised (traceback above)"
            failed += 1  # a capture that fails is a failure, required case or not
        else:
            if case.required and not same:
                failed += 1
        if case.required:
            verdict = "ok" if same else "FAILED"
        else:  # expected to differ on a GPU: the graph keeps its capture step's tau
            verdict = "info"
        mode = "graph vs eager" if capture else "eager vs eager"
        print(f"[{verdict}] {case.name} ({mode}): {what}", flush=True)
    print(f"graph check: {'ok' if not failed else f'{failed} case(s) failed'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
