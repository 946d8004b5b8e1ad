"""The README's demo: trains one small MLP on a fixed synthetic task with SoftSignum,
Signum and torch.optim.AdamW (same model, data, steps and cosine schedule) and prints
a table of the final losses. Runs in about a minute on 2 CPU cores.

    python examples/python/demo.py [--steps 600] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

import softsign


def make_task(n, dim, classes, gen, device):
    """Labels from a random teacher MLP with 10% label noise: learnable, not trivial."""
    teacher = nn.Sequential(nn.Linear(dim, 64), nn.Tanh(), nn.Linear(64, classes))
    for p in teacher.parameters():
        nn.init.normal_(p, std=1.0, generator=gen)
    x = torch.randn(n, dim, generator=gen)
    with torch.no_grad():
        y = teacher(x).argmax(1)
    flip = torch.rand(n, generator=gen) < 0.1
    y[flip] = torch.randint(0, classes, (int(flip.sum()),), generator=gen)
    return x.to(device), y.to(device)


def make_model(dim, classes, seed, device):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(dim, 256), nn.GELU(), nn.Linear(256, 256), nn.GELU(), nn.Linear(256, classes)
    ).to(device)


def train(name, model, data, steps, batch, gen):
    (xt, yt), (xv, yv) = data
    params = model.parameters()
    if name == "AdamW":
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)
    elif name == "Signum":
        opt = softsign.Signum(params, lr=3e-4, momentum=0.9, weight_decay=0.01)
    else:
        opt = softsign.SoftSignum(
            params, lr=3e-4, momentum=0.9, weight_decay=0.01, total_steps=steps, alpha_sign=0.7
        )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(0, xt.shape[0], (batch,), generator=gen).to(xt.device)
        opt.zero_grad(set_to_none=True)
        loss_fn(model(xt[idx]), yt[idx]).backward()
        opt.step()
        sched.step()
    elapsed = time.perf_counter() - start
    with torch.no_grad():
        train_loss = loss_fn(model(xt), yt).item()
        logits = model(xv)
        val_loss = loss_fn(logits, yv).item()
        acc = (logits.argmax(1) == yv).float().mean().item()
    tau = opt.temperature() if isinstance(opt, softsign.SoftSignum) else None
    return dict(train=train_loss, val=val_loss, acc=acc, ms=1e3 * elapsed / steps, tau=tau)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    dim, classes = 32, 10
    # One draw from the teacher, split into training and validation examples.
    full = make_task(
        8192 + 2048, dim, classes, torch.Generator().manual_seed(args.seed), args.device
    )
    train_set = (full[0][:8192], full[1][:8192])
    val_set = (full[0][8192:], full[1][8192:])

    print(
        f"softsign {softsign.__version__} demo: MLP 32-256-256-10, {args.steps} steps, "
        f"batch {args.batch}, cosine LR, device {args.device}, torch {torch.__version__}"
    )
    rows = []
    for name in ("AdamW", "Signum", "SoftSignum"):
        model = make_model(dim, classes, args.seed, args.device)
        r = train(
            name,
            model,
            (train_set, val_set),
            args.steps,
            args.batch,
            torch.Generator().manual_seed(args.seed + 1),
        )
        rows.append((name, r))
        print(f"  trained {name}")
    print()
    print("| optimizer  | train loss | val loss | val acc | ms/step | final tau |")
    print("|------------|-----------:|---------:|--------:|--------:|----------:|")
    for name, r in rows:
        tau = "-" if r["tau"] is None else f"{r['tau']:.3g}"
        print(
            f"| {name:<10} | {r['train']:10.4f} | {r['val']:8.4f} | {r['acc']:7.3f} | "
            f"{r['ms']:7.2f} | {tau:>9} |"
        )


if __name__ == "__main__":
    main()
