"""The C++ optimizers (softsign::optim, bound as softsign._C) against the Python ones:
both run the same ops in the same order, so they must agree bit for bit, in every phase;
and against the float64 reference."""

import pytest
import torch

import softsign
from softsign import _C
from softsign.reference import SoftSignumReference

KW = dict(lr=1e-2, momentum=0.9, nesterov=True, weight_decay=0.05, total_steps=24, alpha_sign=0.5)


def grads(params, k):
    gen = torch.Generator().manual_seed(k)
    return [torch.randn(p.shape, generator=gen).to(p.device) for p in params]


def test_cpp_equals_python_bit_for_bit(device):
    gen = torch.Generator().manual_seed(0)
    py_params = [
        torch.randn(s, generator=gen).to(device).requires_grad_() for s in [(17,), (40, 9), (3,)]
    ]
    cpp_params = [p.detach().clone().requires_grad_() for p in py_params]
    py_opt = softsign.SoftSignum(py_params, **KW)
    cpp_opt = _C.SoftSignum(cpp_params, **KW)
    ref = SoftSignumReference(py_params, **KW)
    for k in range(1, 31):  # S = 12, T = 12, then 6 steps after
        gs = grads(py_params, k)
        for a, b, g in zip(py_params, cpp_params, gs):
            a.grad, b.grad = g.clone(), g.clone()
        py_opt.step()
        cpp_opt.step()
        ref.step(gs)
        assert all(torch.equal(a, b) for a, b in zip(py_params, cpp_params)), f"step {k}"
        assert py_opt.temperature() == cpp_opt.temperature()
    for p, want in zip(cpp_params, ref.params):
        torch.testing.assert_close(p.detach().double().cpu(), want, rtol=1e-5, atol=1e-5)


def test_cpp_signum_and_errors():
    w = torch.zeros(4, requires_grad=True)
    opt = _C.Signum([w], lr=0.5, momentum=0.0)
    w.grad = torch.tensor([1.0, -2.0, 0.0, 3.0])
    opt.step()
    assert w.tolist() == [-0.5, 0.5, 0.0, -0.5]
    with pytest.raises(RuntimeError, match="Invalid"):
        _C.SoftSignum([w], lr=-1.0, total_steps=10)
    with pytest.raises(RuntimeError, match="total_steps"):
        _C.SoftSignum([w])


MUON_KW = dict(lr=0.02, weight_decay=0.05, adamw_lr=1e-3, adamw_weight_decay=0.01)


@pytest.mark.parametrize("soft_map", ["newton_schulz", "accurate"])
def test_cpp_soft_muon_equals_python_bit_for_bit(device, soft_map, tmp_path):
    gen = torch.Generator().manual_seed(0)
    shapes = [(16, 8), (16, 8), (8, 24), (6, 2, 3, 3), (7,)]
    py_params = [torch.randn(s, generator=gen).to(device).requires_grad_() for s in shapes]
    cpp_params = [p.detach().clone().requires_grad_() for p in py_params]
    kw = dict(MUON_KW, sign_steps=4, transition_steps=5, soft_map=soft_map)
    py_opt = softsign.SoftMuon(
        [dict(params=py_params[:4], use_muon=True), dict(params=py_params[4:], use_muon=False)],
        **kw,
    )
    cpp_opt = _C.SoftMuon([(cpp_params[:4], True), (cpp_params[4:], False)], **kw)
    for k in range(1, 13):  # sign phase, transition, after
        gs = grads(py_params, k)
        for a, b, g in zip(py_params, cpp_params, gs):
            a.grad, b.grad = g.clone(), g.clone()
        py_opt.step()
        cpp_opt.step()
        assert all(torch.equal(a, b) for a, b in zip(py_params, cpp_params)), f"step {k}"
        assert py_opt.temperature() == cpp_opt.temperature()
        assert cpp_opt.temperature(1) is None
        if k == 6:  # save and reload in the middle of the transition
            cpp_opt.save(str(tmp_path / "opt.pt"))
            cpp_opt = _C.SoftMuon([(cpp_params[:4], True), (cpp_params[4:], False)], **kw)
            cpp_opt.load(str(tmp_path / "opt.pt"))


def test_cpp_muon_and_errors():
    w = torch.zeros(4, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match="use_muon"):
        _C.Muon([([torch.zeros(3, requires_grad=True)], True)])
    with pytest.raises(RuntimeError, match="total_steps"):
        _C.SoftMuon([([w], True)])
    with pytest.raises(RuntimeError, match="adjust_lr"):
        _C.Muon([([w], True)], adjust_lr="spectral")
    py_w = w.detach().clone().requires_grad_()
    opt, py_opt = _C.Muon([([w], True)]), softsign.Muon([py_w])
    for k in range(1, 4):
        w.grad = py_w.grad = torch.randn(4, 4, generator=torch.Generator().manual_seed(k))
        opt.step()
        py_opt.step()
    assert torch.equal(w, py_w)
