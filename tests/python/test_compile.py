"""torch.compile(opt.step) runs and steps exactly as the eager optimizer, in every phase.

Our ops have fake kernels, so torch.compile traces through them; the Python bookkeeping
(phases, the fit's status) breaks the graph where it must and runs eagerly. The aux AdamW of
Muon/SoftMuon goes through torch's functional AdamW, which dynamo runs eagerly (a graph
break); a bare call of torch._fused_adamw_ inside a graph would hit a functionalization assert.
A second, inductor-free run checks that our fused ops are really captured in a graph, so the
test cannot pass by falling back to eager everywhere.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from optim_registry import OPTIMIZERS

import softsign

# Every optimizer of the contract registry, with its options less the schedule (each run
# below sets its own).
_SCHEDULE = {"total_steps", "alpha_sign", "sign_steps", "transition_steps"}
CASES = {
    info.name: (
        getattr(softsign, info.name),
        {k: v for k, v in info.options.items() if k not in _SCHEDULE},
    )
    for info in OPTIMIZERS
}


def groups(params, name):
    if "Muon" not in name:
        return params
    return [
        dict(params=[p for p in params if p.ndim >= 2], use_muon=True),
        dict(params=[p for p in params if p.ndim < 2], use_muon=False),
    ]


@pytest.mark.parametrize("name", list(CASES))
def test_compiled_step_equals_eager(name, device):
    cls, kw = CASES[name]
    if name.startswith("Soft"):
        kw = dict(kw, sign_steps=4, transition_steps=5)  # 10 steps: sign, fit, soft, after
    gen = torch.Generator().manual_seed(0)
    shapes = [(48, 32), (16, 8, 3, 3), (32,)]
    eager = [torch.randn(s, generator=gen).to(device).requires_grad_() for s in shapes]
    compiled = [p.detach().clone().requires_grad_() for p in eager]
    a, b = cls(groups(eager, name), **kw), cls(groups(compiled, name), **kw)
    step = torch.compile(b.step)
    torch._dynamo.reset()
    for k in range(10):
        for p, q in zip(eager, compiled):
            p.grad = torch.randn(p.shape, generator=gen).to(device)
            q.grad = p.grad.clone()
        a.step()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # dynamo's notes on the profiler ranges
            step()
        for p, q in zip(eager, compiled):
            torch.testing.assert_close(q, p, rtol=0, atol=0, msg=f"step {k + 1}")
    if name.startswith("Soft"):
        assert b.temperature() == a.temperature() is not None

    captured = []

    def recording_backend(gm, example_inputs):
        captured.extend(str(node.target) for node in gm.graph.nodes)
        return gm.forward

    c = cls(groups(compiled, name), **kw)
    torch._dynamo.reset()
    step = torch.compile(c.step, backend=recording_backend)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(6 if name.startswith("Soft") else 2):  # into the transition
            step()
    op = "muon_step_" if "Muon" in name else "soft_sign_step_"
    assert any(op in target for target in captured), sorted(set(captured))
