"""Trains a small GPT byte-level on the running Python's standard library with AdamW, Muon,
SoftMuon or one of softsign's element-wise optimizers (Signum and SoftSignum, and every other
pair that softsign.elementwise_pairs() lists, such as Lion and SoftLion), and writes a JSON
log and a PNG of the losses.

The corpus is on every machine offline: the *.py files under sysconfig's "stdlib" path
(site-packages and test directories left out), sorted by relative path and concatenated
as bytes (vocabulary 256). Every 20th file in that order (index % 20 == 0) is held out
for validation. The model is a decoder-only transformer in plain PyTorch (token and
learned position embeddings, pre-LayerNorm blocks with causal scaled_dot_product_attention
and a GELU MLP, untied lm_head). Every optimizer gets the same LR schedule: linear warm-up
over the first 5% of the steps, then cosine decay to 10% of the peak.

    python examples/python/train_gpt.py --optimizer softsignum          # CPU preset
    python examples/python/train_gpt.py --optimizer softmuon --preset gpu
    python examples/python/train_gpt.py --optimizer muon --steps 300 --d-model 64

Presets (explicit flags override them):
    cpu (default): d_model 128, 4 layers, 4 heads, block 128, batch 16, 1000 steps,
                   0.88M parameters; about 3 minutes on 2 idle CPU cores.
    gpu:           d_model 384, 8 layers, 6 heads, block 256, batch 64, 3000 steps,
                   14.5M parameters, bf16 autocast on CUDA; a few minutes on an H100.
    tiny:          d_model 64, 2 layers, 2 heads, block 64, batch 16, 400 steps,
                   0.14M parameters; compare.py --quick uses it.

The element-wise optimizers are named by their class in lowercase: signum, softsignum, and
for each other pair of softsign.elementwise_pairs() its plain and soft class (lion and
softlion for Lion and SoftLion). --optimizer offers those that the installed softsign has:
a pair it lacks is no choice, and asking for it stops with an error saying so.

Default peak learning rates: adamw 1e-3; every element-wise optimizer 3e-4 (each steps by
+-lr per element, so one value fits them all); muon and softmuon 0.02 for the hidden
matrices, with --adamw-lr 1e-3 for the embeddings, head, norms and biases
(softsign.muon_param_groups). The element-wise optimizers keep their class's defaults for
every other option (Signum's momentum 0.9, Lion's betas (0.9, 0.99), lion-pytorch's).
--weight-decay (default 0.01) applies to every parameter for adamw and the element-wise
optimizers, and to both groups of muon/softmuon. The soft ones (softsignum, softmuon,
softlion, ...) take total_steps = --steps, so their sign phase covers updates
1..round(alpha_sign * steps) and the soft transition the rest.

--fsdp shards the model with FSDP2 (torch.distributed.fsdp.fully_shard, each block and then
the whole model) across the processes of torchrun, gloo on the CPU and NCCL on GPUs; each
rank takes an equal slice of every global batch, so the run sees the same data as one
process. Rank 0 writes the log:

    torchrun --nproc-per-node 2 examples/python/train_gpt.py --fsdp --optimizer softmuon

Output in --out (default runs/<optimizer>_seed<seed>): log.json (config, per-step training
loss, validation losses, temperature samples, transition start, wall time, final
validation loss, parameter count) and loss.png. `run(argv_or_namespace)` does the same
in-process and returns the log as a dict (compare.py uses it).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import sys
import sysconfig
import time
from itertools import chain
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import softsign

# softsign's element-wise optimizers by lowercase class name ("signum", "softsignum",
# "lion", ...), from the installed softsign: a pair it adds shows up here and one it lacks is
# no choice, with no edit to this file.
_PAIRS = softsign.elementwise_pairs().values()
ELEMENTWISE = {cls.__name__.lower(): cls for pair in _PAIRS for cls in pair}
_NAMED = [(plain.__name__.lower(), soft.__name__.lower()) for plain, soft in _PAIRS]
# Signum's pair keeps its place after adamw; the others follow muon and softmuon.
_SIGNUM = [pair for pair in _NAMED if pair[0] == "signum"]
_OTHERS = [pair for pair in _NAMED if pair[0] != "signum"]
# (plain, soft) names of every element-wise pair, Signum's first (compare.py pairs them).
ELEMENTWISE_PAIRS = (*_SIGNUM, *_OTHERS)
OPTIMIZERS = ("adamw", *chain(*_SIGNUM), "muon", "softmuon", *chain(*_OTHERS))
# The ones with a sign phase, a fitted temperature and a soft transition.
SOFT = (*(soft for _, soft in ELEMENTWISE_PAIRS), "softmuon")
# Every element-wise optimizer steps by +-lr per element, so one peak LR serves them all.
ELEMENTWISE_LR = 3e-4
DEFAULT_LR = {
    "adamw": 1e-3,
    **dict.fromkeys(ELEMENTWISE, ELEMENTWISE_LR),
    "muon": 0.02,
    "softmuon": 0.02,
}
PRESET_FIELDS = (
    "n_layer",
    "n_head",
    "d_model",
    "block_size",
    "batch_size",
    "steps",
    "eval_every",
    "eval_batches",
)
PRESETS = {  # one value per PRESET_FIELDS entry, in that order
    "cpu": dict(zip(PRESET_FIELDS, (4, 4, 128, 128, 16, 1000, 100, 16))),
    "gpu": dict(zip(PRESET_FIELDS, (8, 6, 384, 256, 64, 3000, 250, 20))),
    "tiny": dict(zip(PRESET_FIELDS, (2, 2, 64, 64, 16, 400, 50, 16))),
}
VAL_EVERY_NTH_FILE = 20  # files with sorted index % 20 == 0 are the validation split
SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idle_test"}


# ---------------------------------------------------------------------------------------
# Data


@functools.lru_cache(maxsize=1)
def stdlib_corpus() -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(train bytes, validation bytes, info) from the running Python's standard library,
    both uint8 tensors. Deterministic for a given Python installation."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        rel = Path(dirpath).relative_to(root)
        files += [(rel / f).as_posix() for f in filenames if f.endswith(".py")]
    files.sort()
    train_parts, val_parts = [], []
    for i, rel in enumerate(files):
        data = (root / rel).read_bytes()
        (val_parts if i % VAL_EVERY_NTH_FILE == 0 else train_parts).append(data)
    train = b"".join(train_parts)
    val = b"".join(val_parts)
    info = dict(
        root=str(root),
        python=sys.version.split()[0],
        files=len(files),
        val_files=len(val_parts),
        train_bytes=len(train),
        val_bytes=len(val),
        sha256=hashlib.sha256(train + val).hexdigest()[:16],
    )
    to_tensor = lambda b: torch.frombuffer(bytearray(b), dtype=torch.uint8)
    return to_tensor(train), to_tensor(val), info


def windows(data: torch.Tensor, starts: torch.Tensor, block: int):
    """Inputs and next-byte targets for the windows starting at `starts` (one gather)."""
    idx = starts[:, None] + torch.arange(block + 1, device=data.device)
    chunk = data[idx].long()
    return chunk[:, :-1], chunk[:, 1:]


# ---------------------------------------------------------------------------------------
# Model


class Block(nn.Module):
    def __init__(self, d_model: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, 4 * d_model)
        self.fc_proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, c))
        return x + self.fc_proj(F.gelu(self.fc(self.ln2(x))))


class GPT(nn.Module):
    def __init__(self, vocab: int, block_size: int, n_layer: int, n_head: int, d_model: int):
        super().__init__()
        if d_model % n_head:
            raise ValueError(f"d_model {d_model} is not a multiple of n_head {n_head}")
        self.block_size = block_size
        self.tok_emb = nn.Embedding(vocab, d_model)
        self.pos_emb = nn.Embedding(block_size, d_model)
        self.blocks = nn.ModuleList(Block(d_model, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab, bias=False)
        # GPT-2 initialization; residual projections scaled by 1/sqrt(2 * n_layer).
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif p.ndim >= 2:
                std = 0.02
                if name.endswith("proj.weight"):
                    std /= math.sqrt(2 * n_layer)
                nn.init.normal_(p, std=std)

    def forward(self, idx, targets):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.tok_emb(idx) + self.pos_emb(pos)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1))


# ---------------------------------------------------------------------------------------
# Optimizers and schedule


def sign_steps_of(args) -> int | None:
    """Number of sign-phase updates of the soft optimizers (SOFT): round half away from zero
    of alpha_sign * steps, as the optimizers compute it. None for the other optimizers."""
    if args.optimizer not in SOFT:
        return None
    return int(math.floor(args.alpha_sign * args.steps + 0.5))


def unknown_optimizer(name: str) -> str:
    """Why `name` is no choice: the element-wise optimizers are those this softsign has, so
    the message names the installation as well as the choices."""
    return (
        f"unknown optimizer {name!r}: choose from {', '.join(OPTIMIZERS)}. The element-wise "
        f"ones are those of softsign.elementwise_pairs() in softsign {softsign.__version__} "
        f"({os.path.dirname(softsign.__file__)}); an optimizer this softsign lacks needs "
        "another softsign"
    )


def optimizer_name(name: str) -> str:
    """argparse type of --optimizer: its own message for an unknown name, before argparse's
    shorter "invalid choice" one."""
    if name not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(unknown_optimizer(name))
    return name


def require_optimizer(name: str) -> None:
    """Stops with a clear message where `name` is no optimizer of this script with this
    softsign, before any data is read or model built (run() also takes a Namespace, which
    argparse's choices never see)."""
    if name not in OPTIMIZERS:
        raise SystemExit(f"train_gpt: {unknown_optimizer(name)}")


def make_optimizer(args, model):
    name, lr, wd = args.optimizer, args.lr, args.weight_decay
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.95))
    if name in ELEMENTWISE:
        # The class's own defaults for the rest (Signum's momentum 0.9, Lion's betas), so a
        # new pair needs no entry here.
        schedule = dict(total_steps=args.steps, alpha_sign=args.alpha_sign) if name in SOFT else {}
        return ELEMENTWISE[name](model.parameters(), lr=lr, weight_decay=wd, **schedule)
    groups = softsign.muon_param_groups(model)
    common = dict(
        lr=lr, momentum=0.95, weight_decay=wd, adamw_lr=args.adamw_lr, adamw_weight_decay=wd
    )
    if name == "muon":
        return softsign.Muon(groups, **common)
    return softsign.SoftMuon(
        groups,
        total_steps=args.steps,
        alpha_sign=args.alpha_sign,
        soft_map=args.soft_map,
        **common,
    )


def lr_lambda(steps: int, warmup_frac: float = 0.05, final_frac: float = 0.1):
    """Linear warm-up over warmup_frac of the steps, then cosine from 1 to final_frac."""
    warmup = max(1, round(warmup_frac * steps))

    def factor(i: int) -> float:  # i = number of updates done so far
        if i < warmup:
            return (i + 1) / warmup
        progress = min(1.0, (i - warmup) / max(1, steps - warmup))
        return final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


# ---------------------------------------------------------------------------------------
# Arguments


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--optimizer", type=optimizer_name, choices=OPTIMIZERS, default="softsignum")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    ap.add_argument("--lr", type=float, help="peak LR (default: per optimizer, see above)")
    ap.add_argument("--adamw-lr", type=float, default=1e-3, help="muon/softmuon aux group LR")
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--alpha-sign", type=float, default=0.9)
    ap.add_argument("--soft-map", choices=("newton_schulz", "accurate"), default="newton_schulz")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--n-layer", type=int)
    ap.add_argument("--n-head", type=int)
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--block-size", type=int)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--eval-every", type=int, help="validation interval in steps")
    ap.add_argument("--eval-batches", type=int, help="fixed validation batches per eval")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the model")
    ap.add_argument(
        "--fsdp", action="store_true", help="FSDP2-shard the model across torchrun's processes"
    )
    ap.add_argument("--out", help="output directory (default runs/<optimizer>_seed<seed>)")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    ap.add_argument("--quiet", action="store_true", help="no summary lines on stdout")
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    """Parses `argv` (a list, a Namespace to complete, or None for sys.argv) and fills in
    the preset and the per-optimizer defaults."""
    if isinstance(argv, argparse.Namespace):
        args = build_parser().parse_args([])
        vars(args).update({k: v for k, v in vars(argv).items() if v is not None})
    else:
        args = build_parser().parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    require_optimizer(args.optimizer)
    if args.eval_every <= 0:
        args.eval_every = args.steps
    if args.lr is None:
        args.lr = DEFAULT_LR[args.optimizer]
    if args.out is None:
        args.out = os.path.join("runs", f"{args.optimizer}_seed{args.seed}")
    return args


# ---------------------------------------------------------------------------------------
# Training


def run(argv=None) -> dict:
    """Trains one model as the command line `argv` says (a list of strings, an
    argparse.Namespace or None for sys.argv) and returns the JSON log as a dict."""
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    rank, world, own_group = 0, 1, False
    if args.fsdp:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group("nccl" if cuda else "gloo")
            own_group = True
        rank, world = dist.get_rank(), dist.get_world_size()
        if cuda:
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(device)
        if args.batch_size % world:
            raise SystemExit(
                f"train_gpt: --batch-size {args.batch_size} is not a multiple of {world}"
            )
        if rank != 0:  # one log, one bar, one summary
            args.quiet, args.no_progress, args.no_plot = True, True, True
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    train_data, val_data, corpus = stdlib_corpus()
    train_data, val_data = train_data.to(device), val_data.to(device)
    block, batch = args.block_size, args.batch_size
    # Fixed validation windows, evenly spread over the validation split.
    n_val = args.eval_batches * batch
    val_starts = torch.linspace(0, len(val_data) - block - 2, n_val).long().to(device)

    torch.manual_seed(args.seed)
    model = GPT(256, block, args.n_layer, args.n_head, args.d_model).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    if args.fsdp:
        from torch.distributed.fsdp import fully_shard

        # Every rank built the same model (same seed); now each keeps its shards. The
        # optimizer is built on the sharded (DTensor) parameters.
        for blk in model.blocks:
            fully_shard(blk)
        fully_shard(model)
    opt = make_optimizer(args, model)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(args.steps))
    forward = torch.compile(model) if args.compile else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda)
    gen = torch.Generator().manual_seed(args.seed + 1)  # training batches
    soft = args.optimizer in SOFT
    sign_steps = sign_steps_of(args)
    temp_every = max(1, min(10, args.steps // 100))

    @torch.no_grad()
    def evaluate() -> float:
        model.eval()
        total = torch.zeros((), device=device)
        for s in val_starts.split(batch):
            x, y = windows(val_data, s, block)
            with autocast:
                total += forward(x, y).float()
        model.train()
        return total.item() / math.ceil(n_val / batch)

    if not args.quiet:
        print(
            f"train_gpt: {args.optimizer} lr {args.lr:g}, {n_params / 1e6:.2f}M params "
            f"(d {args.d_model}, {args.n_layer} layers, {args.n_head} heads, block {block}, "
            f"batch {batch}), {args.steps} steps on {device}; corpus: Python "
            f"{corpus['python']} stdlib, {corpus['files']} files, "
            f"{corpus['train_bytes'] / 1e6:.2f} MB train / {corpus['val_bytes'] / 1e6:.2f} MB val"
        )

    losses = torch.zeros(args.steps, device=device)  # on the device: no sync per step
    eval_steps, val_losses = [], []
    temp_steps, temps = [], []
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(
            total=args.steps,
            desc=args.optimizer,
            leave=not args.quiet,
            file=sys.stderr,
            mininterval=1.0,
        )

    start = time.perf_counter()
    eval_steps.append(0)
    val_losses.append(evaluate())
    for step in range(1, args.steps + 1):
        # Every rank draws the global batch and keeps its slice (all of it in one process).
        starts = torch.randint(len(train_data) - block - 1, (batch,), generator=gen)
        x, y = windows(train_data, starts.tensor_split(world)[rank].to(device), block)
        with autocast:
            loss = forward(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses[step - 1] = loss.detach()
        if (
            soft
            and step > sign_steps
            and (step % temp_every == 0 or step == sign_steps + 1 or step == args.steps)
        ):
            temp_steps.append(step)
            temps.append(opt.temperature(0))
        if step % args.eval_every == 0 or step == args.steps:
            eval_steps.append(step)
            val_losses.append(evaluate())
        if bar is not None:
            bar.update(1)
            if step % args.eval_every == 0 or step % 10 == 0 or step == args.steps:
                post = dict(loss=f"{losses[step - 1].item():.3f}", val=f"{val_losses[-1]:.3f}")
                if soft:
                    tau = temps[-1] if temps else None
                    post["tau"] = "sign" if tau is None else f"{tau:.3g}"
                bar.set_postfix(post, refresh=False)
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - start
    if args.fsdp:  # the global batch's loss: the mean of the ranks' equal slices
        dist.all_reduce(losses)
        losses /= world
        if own_group:
            dist.barrier()  # no rank closes its connections while another still uses them
            dist.destroy_process_group()
        if rank != 0:
            return {}
    train_losses = losses.tolist()
    if any(not math.isfinite(v) for v in train_losses):
        print(f"train_gpt: warning: non-finite training loss ({args.optimizer})", file=sys.stderr)

    log = dict(
        config={k: v for k, v in vars(args).items() if k not in ("no_progress", "quiet")},
        corpus=corpus,
        param_count=n_params,
        world_size=world,
        train_loss=train_losses,
        eval_steps=eval_steps,
        val_loss=val_losses,
        # Temperature tau of group 0 (the matrices for softmuon) after the update at each
        # listed step; None where the optimizer reports no temperature (sign phase).
        temperature_steps=temp_steps,
        temperature=temps,
        transition_start=sign_steps,  # soft updates begin with update sign_steps + 1
        lr_schedule="linear warm-up 5% of steps, cosine to 10% of peak",
        wall_time_s=wall,
        ms_per_step=1e3 * wall / args.steps,
        final_val_loss=val_losses[-1],
        softsign_version=softsign.__version__,
        torch_version=torch.__version__,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "log.json").write_text(json.dumps(log, indent=1))
    if not args.no_plot:
        plot(log, out / "loss.png")
    if not args.quiet:
        tau = temps[-1] if temps else None
        tail = train_losses[-50:]
        print(
            f"train_gpt: {args.optimizer} final val loss {log['final_val_loss']:.4f} "
            f"(train {sum(tail) / len(tail):.4f}, mean of the last {len(tail)} steps)"
            + (f", final tau {tau:.3g}" if tau is not None else "")
            + f"; {wall:.1f} s ({log['ms_per_step']:.0f} ms/step); wrote {out}/log.json"
            + ("" if args.no_plot else " and loss.png")
        )
    return log


def smooth(values, window):
    out, acc = [], 0.0
    for i, v in enumerate(values):
        acc += v
        if i >= window:
            acc -= values[i - window]
        out.append(acc / min(i + 1, window))
    return out


def plot(log: dict, path) -> None:
    """Training (raw and smoothed) and validation loss vs step; the transition start as a
    vertical line and the temperature on a second, logarithmic axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg = log["config"]
    steps = list(range(1, len(log["train_loss"]) + 1))
    fig, ax = plt.subplots(figsize=(8, 4.8))
    ax.plot(steps, log["train_loss"], color="tab:blue", alpha=0.25, lw=0.8)
    window = max(1, len(steps) // 50)
    ax.plot(steps, smooth(log["train_loss"], window), color="tab:blue", label="train (smoothed)")
    ax.plot(log["eval_steps"], log["val_loss"], "o-", color="tab:orange", ms=3, label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/byte)")
    finite = [v for v in log["train_loss"] + log["val_loss"] if math.isfinite(v)]
    if finite:
        lo = min(finite)
        ax.set_ylim(lo - 0.05 * abs(lo), min(max(finite), lo + 2.5))
    if log["transition_start"] is not None:
        ax.axvline(log["transition_start"], color="gray", ls="--", lw=1, label="transition start")
        ax.axvspan(log["transition_start"], len(steps), color="gray", alpha=0.08)
    handles, labels = ax.get_legend_handles_labels()
    pts = [(s, t) for s, t in zip(log["temperature_steps"], log["temperature"]) if t is not None]
    if pts:
        ax2 = ax.twinx()
        ax2.plot(*zip(*pts), ".-", color="tab:green", ms=3, lw=1, label="temperature tau")
        ax2.set_yscale("log")
        ax2.set_ylabel("temperature tau (log)")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper center", fontsize=8)
    ax.set_title(
        f"{cfg['optimizer']} lr {cfg['lr']:g}, {log['param_count'] / 1e6:.2f}M params, "
        f"seed {cfg['seed']}: final val {log['final_val_loss']:.4f}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    run(sys.argv[1:])


if __name__ == "__main__":
    main()
