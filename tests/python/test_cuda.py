"""CUDA-only contracts: no host synchronization in any phase of step(), agreement of the
CUDA and CPU kernels, and the asynchronous report of a failed temperature fit. Skipped
without a GPU (conftest marks every test whose name holds 'cuda')."""

import pytest
import torch

import softsign

from conftest import TOLERANCES


def grads(params, k):
    gen = torch.Generator().manual_seed(k)
    return [torch.randn(p.shape, generator=gen).to(p.dtype).to(p.device) for p in params]


def make(device, dtypes=(torch.float32, torch.bfloat16, torch.float16)):
    gen = torch.Generator().manual_seed(0)
    shapes = [(1,), (333,), (65536 * 3 + 7,), (48, 64)]
    return [
        torch.randn(s, generator=gen).to(dt).to(device).requires_grad_()
        for s in shapes
        for dt in dtypes
    ]


@pytest.mark.parametrize("amp", [False, True])
def test_no_host_sync_in_any_phase_cuda(amp):
    params = make("cuda")
    opt = softsign.SoftSignum(
        params, lr=1e-2, nesterov=True, weight_decay=0.1, total_steps=20, alpha_sign=0.5
    )
    all_grads = [grads(params, k) for k in range(1, 25)]
    if amp:
        opt.grad_scale = torch.tensor(1.0, device="cuda")
        opt.found_inf = torch.tensor(0.0, device="cuda")
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for gs in all_grads:  # sign phase, fit step, transition, after it
            for p, g in zip(params, gs):
                p.grad = g
            opt.step()
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert opt.temperature() is not None
    assert all(torch.isfinite(p).all() for p in params)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_kernel_matches_cpu_kernel_cuda(dtype):
    cpu = make("cpu", (dtype,))
    gpu = [p.detach().cuda().requires_grad_() for p in cpu]
    kw = dict(
        lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.05, sign_steps=5, transition_steps=5
    )
    a, b = softsign.SoftSignum(cpu, **kw), softsign.SoftSignum(gpu, **kw)
    for k in range(1, 14):
        for x, y, g in zip(cpu, gpu, grads(cpu, k)):
            x.grad, y.grad = g, g.cuda()
        a.step()
        b.step()
    for x, y in zip(cpu, gpu):
        torch.testing.assert_close(y.cpu(), x, **TOLERANCES[dtype])
    assert b.temperature() == pytest.approx(a.temperature(), rel=1e-6)


def test_non_finite_fit_is_reported_at_the_next_step_cuda():
    w = torch.nn.Parameter(torch.ones(8, device="cuda"))
    opt = softsign.SoftSignum([w], momentum=0.0, sign_steps=1, transition_steps=4)
    w.grad = torch.ones(8, device="cuda")
    opt.step()
    before = w.detach().clone()
    w.grad = torch.full((8,), float("nan"), device="cuda")
    opt.step()  # the fit step: no host read, and the NaN schedule makes it a no-op
    torch.cuda.synchronize()
    assert torch.equal(w.detach(), before)
    w.grad = torch.ones(8, device="cuda")
    with pytest.raises(ValueError, match="non-finite"):
        opt.step()
    assert torch.equal(w.detach(), before)


def test_group_spanning_cpu_and_cuda_cuda():
    a = torch.nn.Parameter(torch.randn(10))
    b = torch.nn.Parameter(torch.randn(10, device="cuda"))
    opt = softsign.SoftSignum([a, b], sign_steps=1, transition_steps=3)
    for _ in range(4):
        a.grad, b.grad = torch.randn(10), torch.randn(10, device="cuda")
        opt.step()
    assert opt.temperature() is not None


@pytest.mark.parametrize("soft_map", ["newton_schulz", "accurate"])
def test_cuda_soft_muon_steps_do_not_synchronize(soft_map):
    gen = torch.Generator().manual_seed(0)
    mats = [torch.randn(s, generator=gen).cuda().requires_grad_() for s in [(64, 32), (32, 96)]]
    bias = torch.zeros(32, device="cuda", requires_grad=True)
    opt = softsign.SoftMuon(
        [dict(params=mats, use_muon=True), dict(params=[bias], use_muon=False)],
        sign_steps=2,
        transition_steps=4,
        soft_map=soft_map,
    )

    def step(k, sync_free):
        for p in mats + [bias]:
            p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(k)).cuda()
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error" if sync_free else 0)
        try:
            opt.step()
        finally:
            torch.cuda.set_sync_debug_mode(0)

    for k in (1, 2):
        step(k, True)  # sign phase
    # The fit step computes the singular values with torch.linalg.eigvalsh, which checks
    # its solver status on the host: the one synchronization of a SoftMuon run.
    step(3, False)
    for k in range(4, 9):
        step(k, True)  # transition and after it
    assert opt.temperature() is not None
    assert all(torch.isfinite(p).all() for p in mats)
