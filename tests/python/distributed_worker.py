"""Processes of the torch.distributed tests (test_distributed.py): a small model with uneven
shapes trained for 30 steps across the sign phase (steps 1-10), the transition (11-22) and
after it, single-process or with DDP / FSDP2 over gloo. Not a test module itself: spawned
processes import it by name.

Every rank sees the same batches, so DDP's and FSDP2's averaged gradient is the single-process
gradient up to the rounding of the average; what differs is the optimizer's own
distributed work, which is what the tests compare.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

import softsign

STEPS, SIGN, TRANSITION = 30, 10, 12
# scenario -> (optimizer, parameter dtype, SoftMuon's soft map). float64 SoftMuon runs its
# maps in float64, so rounding differences of the averaged gradient stay at float64 size
# instead of being amplified by bfloat16 Newton-Schulz steps.
SCENARIOS = {
    "softsignum": ("softsignum", torch.float32, None),
    # Momentum 0: the fit's directions are the gradients themselves, bit for bit, so a
    # sharded fit over the same gradients must select exactly the same median and MAD.
    "softsignum_m0": ("softsignum", torch.float32, None),
    "softmuon": ("softmuon", torch.float32, "newton_schulz"),
    "softmuon_accurate": ("softmuon", torch.float32, "accurate"),
    "softmuon64": ("softmuon", torch.float64, "newton_schulz"),
    "softmuon64_accurate": ("softmuon", torch.float64, "accurate"),
}


class Net(nn.Module):
    """Shapes chosen so that no first dimension divides 2 or 4 evenly, three same-shape
    hidden matrices (one batch), a conv weight, norms, biases, an embedding and a parameter
    that never gets a gradient."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(11, 6)
        self.inp = nn.Linear(6, 13)
        self.hidden = nn.ModuleList(nn.Linear(13, 13) for _ in range(3))
        self.conv = nn.Conv1d(1, 3, kernel_size=3, padding=1)
        self.norm = nn.LayerNorm(13)
        self.out = nn.Linear(39, 5)
        self.unused = nn.Parameter(torch.randn(3, 7))

    def forward(self, tokens):
        x = self.inp(self.embed(tokens).mean(1))
        for layer in self.hidden:
            x = x + torch.tanh(layer(x))
        x = self.conv(self.norm(x).unsqueeze(1)).flatten(1)
        return self.out(x)


DEVICE = "cpu"  # the worker's device; "cuda" with the NCCL backend


def make_model(scenario: str = "softsignum") -> Net:
    torch.manual_seed(0)
    return Net().to(device=DEVICE, dtype=SCENARIOS[scenario][1])


def batches():
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        tokens = torch.randint(0, 11, (16, 4), generator=gen)
        target = torch.randint(0, 5, (16,), generator=gen)
        yield tokens.to(DEVICE), target.to(DEVICE)


def make_optimizer(scenario: str, model: nn.Module):
    schedule = dict(sign_steps=SIGN, transition_steps=TRANSITION)
    kind, _, soft_map = SCENARIOS[scenario]
    if kind == "softsignum":
        momentum = 0.0 if scenario == "softsignum_m0" else 0.9
        return softsign.SoftSignum(
            model.parameters(), lr=1e-2, momentum=momentum, weight_decay=0.01, **schedule
        )
    return softsign.SoftMuon(
        softsign.muon_param_groups(model),
        lr=0.02,
        weight_decay=0.01,
        soft_map=soft_map,
        adamw_lr=3e-3,
        adamw_weight_decay=0.01,
        **schedule,
    )


def train(model, opt, start: int = 0, stop: int = STEPS) -> list:
    """Steps start+1..stop; returns the temperature after each step."""
    temps = []
    for k, (tokens, target) in enumerate(batches()):
        if k < start:
            continue
        if k >= stop:
            break
        loss = nn.functional.cross_entropy(model(tokens), target)
        loss.backward()
        opt.step()
        opt.zero_grad()
        temps.append(opt.temperature())
    return temps


def full_state(model) -> dict:
    """Whole parameters (gathered from shards) by name, on the CPU."""
    out = {}
    for name, p in model.named_parameters():
        p = p.detach()
        out[name] = p.full_tensor() if hasattr(p, "full_tensor") else p
    return {k: v.detach().cpu().clone() for k, v in out.items()}


def single_process(scenario: str, device: str = "cpu") -> dict:
    """The run the distributed ones are compared with, on one thread as the workers run:
    some CPU backward kernels (the embedding's) sum in a thread-dependent order."""
    global DEVICE
    DEVICE = device
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = make_model(scenario)
        opt = make_optimizer(scenario, model)
        temps = train(model, opt)
    finally:
        torch.set_num_threads(threads)
    return dict(params=full_state(model), temps=temps, fits=_fits(opt))


def _fits(opt):
    return [g.get("fit") for g in opt.param_groups]


def _shard(model):
    from torch.distributed.fsdp import fully_shard

    for layer in model.hidden:
        fully_shard(layer)
    fully_shard(model)
    return model


def _run_fsdp(scenario, out_dir, world):
    model = _shard(make_model(scenario))
    opt = make_optimizer(scenario, model)
    temps = train(model, opt)
    _save(out_dir, f"fsdp_{scenario}_w{world}", model, opt, temps)


def _run_ddp(scenario, out_dir, world):
    from torch.nn.parallel import DistributedDataParallel

    model = make_model(scenario)
    ddp = DistributedDataParallel(model, find_unused_parameters=True)
    opt = make_optimizer(scenario, model)
    temps = train(ddp, opt)
    _save(out_dir, f"ddp_{scenario}_w{world}", model, opt, temps)


def _run_checkpoint(scenario, out_dir, world, stop_at: int = 16):
    """Save with DCP in the middle of the transition, load into a fresh model and optimizer,
    continue to the end."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model = _shard(make_model(scenario))
    opt = make_optimizer(scenario, model)
    train(model, opt, stop=stop_at)
    model_sd, optim_sd = get_state_dict(model, opt)
    path = os.path.join(out_dir, f"dcp_{scenario}")
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=path)
    del model, opt
    _resume(scenario, out_dir, world, path, f"resumed_{scenario}", stop_at)


def _run_reshard(scenario, out_dir, world, path, stop_at: int = 16):
    """Load a checkpoint that another world size saved (`path`) and continue."""
    _resume(scenario, out_dir, world, path, f"resharded_{scenario}", stop_at)


def _resume(scenario, out_dir, world, path, tag, stop_at):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import DefaultLoadPlanner
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model = _shard(make_model(scenario))
    opt = make_optimizer(scenario, model)
    model_sd, optim_sd = get_state_dict(model, opt)
    state = {"model": model_sd, "optim": optim_sd}
    # The fresh optimizer's state comes from DCP's zero-gradient step over every parameter,
    # the unused one included, which the checkpoint has no state for: a partial load keeps it
    # (as torch.optim optimizers need too).
    dcp.load(state, checkpoint_id=path, planner=DefaultLoadPlanner(allow_partial_load=True))
    set_state_dict(model, opt, model_state_dict=state["model"], optim_state_dict=state["optim"])
    temps = train(model, opt, start=stop_at)
    _save(out_dir, f"{tag}_w{world}", model, opt, temps)


def _run_lockstep(scenario, out_dir, world, hsdp: bool = False):
    """A single-process model and a copy whose parameters are DTensors sharded on dim 0, both
    stepped with the same gradients (the copy's are the single-process ones, sharded): the
    sharded optimizer's own work against the single-process optimizer, with nothing else
    differing. Records the largest difference after each step. `hsdp`: a 2 x (world / 2)
    mesh with placements (Replicate, Shard(0)), as FSDP2's HSDP lays parameters out."""
    from torch.distributed.tensor import (
        Replicate,
        Shard,
        distribute_module,
        distribute_tensor,
        init_device_mesh,
    )

    if hsdp:
        mesh = init_device_mesh(DEVICE, (2, world // 2))
        placements = [Replicate(), Shard(0)]
    else:
        mesh = init_device_mesh(DEVICE, (world,))
        placements = [Shard(0)]

    def shard_all(name, module, mesh):
        for pname, p in list(module.named_parameters(recurse=False)):
            sharded = distribute_tensor(p.detach().clone(), mesh, placements)
            module.register_parameter(pname, nn.Parameter(sharded))

    plain = make_model(scenario)
    sharded = distribute_module(make_model(scenario), mesh, shard_all)
    opt_plain = make_optimizer(scenario, plain)
    opt_sharded = make_optimizer(scenario, sharded)
    pairs = list(zip(plain.parameters(), sharded.parameters()))
    diffs, temps = [], []
    for tokens, target in batches():
        nn.functional.cross_entropy(plain(tokens), target).backward()
        for p, q in pairs:
            q.grad = None if p.grad is None else distribute_tensor(p.grad, mesh, placements)
        opt_plain.step()
        opt_sharded.step()
        opt_plain.zero_grad()
        opt_sharded.zero_grad()
        diffs.append(max((q.full_tensor() - p).abs().max().item() for p, q in pairs))
        temps.append((opt_plain.temperature(), opt_sharded.temperature()))
    record = dict(diffs=diffs, temps=temps, fits=(_fits(opt_plain), _fits(opt_sharded)))
    tag = "lockstep_hsdp" if hsdp else "lockstep"
    torch.save(record, os.path.join(out_dir, f"{tag}_{scenario}_w{world}_rank{dist.get_rank()}.pt"))


def _save(out_dir, tag, model, opt, temps):
    params = full_state(model)  # a collective: every rank takes part
    record = dict(params=params, temps=temps, fits=_fits(opt))
    torch.save(record, os.path.join(out_dir, f"{tag}_rank{dist.get_rank()}.pt"))


def worker(rank: int, world: int, out_dir: str, jobs: list, backend: str = "gloo") -> None:
    global DEVICE
    torch.set_num_threads(1)
    if backend == "nccl":
        DEVICE = "cuda"
        torch.cuda.set_device(rank)
    dist.init_process_group(
        backend,
        init_method=f"file://{os.path.join(out_dir, 'store')}",
        rank=rank,
        world_size=world,
    )
    try:
        for kind, scenario, *extra in jobs:
            {
                "fsdp": _run_fsdp,
                "ddp": _run_ddp,
                "checkpoint": _run_checkpoint,
                "lockstep": _run_lockstep,
                "reshard": _run_reshard,
            }[kind](scenario, out_dir, world, *extra)
        # Every rank done with every collective before any tears its connections down: a
        # rank that closes gloo's sockets while another still reads from them aborts it.
        dist.barrier()
    finally:
        dist.destroy_process_group()
