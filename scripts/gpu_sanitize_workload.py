"""A small workload for compute-sanitizer (memcheck, racecheck, synccheck) that goes through
every CUDA path of softsign once: the fused SoftSignum step in each phase (sign, the fit
step that opens the transition, soft steps, the constant tau after the transition), its
variants (no momentum, maximize, AMP's grad_scale/found_inf), Signum, the exact median/MAD
selection on its own, and Muon/SoftMuon (both soft maps) through sign, fit and soft steps.

    compute-sanitizer --tool memcheck python scripts/gpu_sanitize_workload.py --large
    python scripts/gpu_sanitize_workload.py --device cpu      # the same on the CPU kernels

The tensors are chosen to hit the multi-tensor launcher's edges (csrc/ops/cuda): sizes
that are not a multiple of the vector width, a view at an odd offset (unaligned vector
loads), a transposed parameter (the dense stand-in path), more tensors than one launch
holds, and with --large one tensor longer than one launch's blocks (a chunk list that
continues in the next launch). --large costs a few seconds natively and more under a
sanitizer, so scripts/gpu_proof.sh passes it to memcheck only. Exits nonzero when a result
is wrong or not finite; the sanitizer reports its own errors.
"""

from __future__ import annotations

import argparse
import sys

import torch

import softsign

# The CUDA launcher's defaults: 65536-element chunks, at most 320 blocks per launch.
CHUNK, MAX_BLOCKS = 65536, 320


def make_params(device, dtype, large, gen):
    """Leaf tensors of one dtype covering the launcher's edge cases."""

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device=device, dtype=dtype)

    params = [randn(1), randn(333), randn(CHUNK * 3 + 7), randn(48, 64)]
    params.append(randn(1001)[1:].detach())  # storage offset 1: unaligned vector loads
    params.append(randn(64, 48).t().detach())  # not contiguous: the dense stand-in path
    params += [randn(7) for _ in range(60)]  # more tensors than one launch takes (48 or 64)
    if large:
        params.append(randn(CHUNK * MAX_BLOCKS + 4099))  # continues in a second launch
    return [p.requires_grad_() for p in params]


def set_grads(params, gen, scale=1.0):
    for p in params:
        g = torch.randn(p.shape, generator=gen).mul_(scale)
        p.grad = g.to(device=p.device, dtype=p.dtype)


def check_finite(name, params):
    bad = [i for i, p in enumerate(params) if not torch.isfinite(p.detach()).all()]
    if bad:
        raise SystemExit(f"{name}: non-finite parameters at indices {bad[:10]}")


def run_soft_signum(device, large, gen):
    """Every phase of SoftSignum on each storage dtype, then the variants."""
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        params = make_params(device, dtype, large and dtype == torch.float32, gen)
        # S = 2, T = 3: steps 1-2 sign, step 3 fits and takes tau_0, 4-5 soft, 6 after.
        opt = softsign.SoftSignum(  # momentum 0.9, the default
            params, lr=1e-2, nesterov=True, weight_decay=0.1, sign_steps=2, transition_steps=3
        )
        phases = []
        for _ in range(6):
            set_grads(params, gen)
            opt.step()
            phases.append("sign" if opt.temperature() is None else "soft")
        if phases != ["sign", "sign", "soft", "soft", "soft", "soft"]:
            raise SystemExit(f"SoftSignum {dtype}: unexpected phases {phases}")
        check_finite(f"SoftSignum {dtype}", params)
        print(f"SoftSignum {dtype}: sign, fit, soft, after; tau {opt.temperature():.4g}")

    params = make_params(device, torch.float32, False, gen)
    # momentum 0 (no buffer) with maximize; dampening on a second optimizer.
    for kw in (dict(momentum=0.0, maximize=True), dict(momentum=0.9, dampening=0.5)):
        opt = softsign.SoftSignum(params, lr=1e-3, sign_steps=1, transition_steps=2, **kw)
        for _ in range(3):
            set_grads(params, gen)
            opt.step()
        check_finite(f"SoftSignum {kw}", params)
        print(f"SoftSignum {kw}: tau {opt.temperature():.4g}")

    # GradScaler's protocol: a scale to divide by and a found_inf flag, both on the device.
    opt = softsign.SoftSignum(params, lr=1e-3, sign_steps=1, transition_steps=2)
    opt.grad_scale = torch.tensor(1024.0, device=device)
    opt.found_inf = torch.tensor(0.0, device=device)
    for _ in range(3):
        set_grads(params, gen, scale=1024.0)
        opt.step()
    check_finite("SoftSignum (AMP)", params)
    print(f"SoftSignum (grad_scale, found_inf): tau {opt.temperature():.4g}")

    opt = softsign.Signum(params, lr=1e-3, momentum=0.9)
    for _ in range(2):
        set_grads(params, gen)
        opt.step()
    check_finite("Signum", params)
    print("Signum: 2 steps")


def run_fit(device, large, gen):
    """The exact median and MAD by radix selection, against the concatenation's."""
    tensors = [t.detach() for t in make_params(device, torch.float32, large, gen)]
    median, mad = softsign.functional.median_mad(tensors)
    x = torch.cat([t.reshape(-1) for t in tensors]).double()
    want_median = x.median()  # the lower median, as docs/algorithms.md defines it
    want_mad = (x - want_median).abs().median()
    if median.item() != want_median.item() or mad.item() != want_mad.item():
        raise SystemExit(
            f"median_mad: ({median.item()}, {mad.item()}) != concatenation "
            f"({want_median.item()}, {want_mad.item()})"
        )
    print(f"median_mad of {x.numel()} values: exact ({median.item():.6g}, {mad.item():.6g})")


def run_muon(device, gen):
    """Muon, and SoftMuon with each soft map, through sign, fit and soft steps."""

    def model():
        shapes = [(64, 32), (32, 96), (48, 48), (48, 48), (16, 4, 3, 3)]  # two stack, a conv
        mats = [torch.randn(s, generator=gen).to(device).requires_grad_() for s in shapes]
        vecs = [torch.randn(n, generator=gen).to(device).requires_grad_() for n in (32, 333)]
        groups = [dict(params=mats, use_muon=True), dict(params=vecs, use_muon=False)]
        return mats + vecs, groups

    params, groups = model()
    opt = softsign.Muon(groups, lr=0.02)
    for _ in range(2):
        set_grads(params, gen)
        opt.step()
    check_finite("Muon", params)
    print("Muon: 2 steps")
    for soft_map in ("newton_schulz", "accurate"):
        params, groups = model()
        opt = softsign.SoftMuon(
            groups, lr=0.02, sign_steps=1, transition_steps=2, soft_map=soft_map
        )
        for _ in range(3):  # sign, fit + tau_0, tau_1
            set_grads(params, gen)
            opt.step()
        check_finite(f"SoftMuon {soft_map}", params)
        print(f"SoftMuon {soft_map}: sign, fit, soft; tau {opt.temperature():.4g}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument(
        "--large",
        action="store_true",
        help=f"add a tensor of {CHUNK * MAX_BLOCKS + 4099} elements (two launches)",
    )
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    gen = torch.Generator().manual_seed(0)
    print(f"sanitize workload on {device} (torch {torch.__version__}, {softsign.__file__})")
    run_soft_signum(device, args.large, gen)
    run_fit(device, args.large, gen)
    run_muon(device, gen)
    if device.type == "cuda":
        torch.cuda.synchronize()
    print("sanitize workload: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
