"""SoftSignum and SoftMuon under torch.distributed: FSDP2 (DTensor parameters) at world sizes
1, 2 and 4, DDP, and a torch.distributed.checkpoint resume, in processes spawned over gloo on
the CPU, each compared with the single-process run (tests/python/distributed_worker.py).

30 steps cross the sign phase (1-10), the transition (11-22) and the steps after it.
"""

from __future__ import annotations

import functools
import math
import os
import time

import distributed_worker as dw
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

pytestmark = pytest.mark.skipif(
    not dist.is_available() or not dist.is_gloo_available(),
    reason="torch.distributed with gloo is not available",
)

# What each world size runs, in one spawn of `world` processes.
JOBS = {
    1: [("fsdp", "softsignum"), ("fsdp", "softmuon64"), ("lockstep", "softmuon")],
    2: [
        ("fsdp", "softsignum"),
        ("fsdp", "softmuon64"),
        ("fsdp", "softmuon64_accurate"),
        ("lockstep", "softsignum"),
        ("lockstep", "softsignum_m0"),
        ("lockstep", "softmuon"),
        ("lockstep", "softmuon_accurate"),
        ("ddp", "softsignum"),
        ("ddp", "softmuon"),
        ("checkpoint", "softsignum"),
        ("checkpoint", "softmuon64"),
    ],
    4: [
        ("fsdp", "softsignum"),
        ("fsdp", "softmuon64"),
        ("lockstep", "softsignum_m0"),
        ("lockstep", "softmuon"),
        ("lockstep", "softsignum", True),  # HSDP: a 2 x 2 mesh, (Replicate, Shard(0))
        ("lockstep", "softmuon", True),
    ],
}
# Largest parameter difference allowed against the single-process run. float32 runs: the
# averaged gradient and the fused kernels' vector/scalar split differ by a few ulps, which
# 30 steps of lr 1e-2 keep far below 1e-5.
ATOL = {torch.float32: 1e-5, torch.float64: 1e-7}


@functools.cache
def _spawn(world: int, out_dir: str) -> str:
    mp.spawn(dw.worker, args=(world, out_dir, JOBS[world]), nprocs=world, join=True)
    return out_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("distributed")

    def get(world: int) -> str:
        out = root / f"w{world}"
        out.mkdir(exist_ok=True)
        return _spawn(world, str(out))

    return get


@functools.cache
def _single(scenario: str) -> dict:
    return dw.single_process(scenario)


def _records(out_dir: str, tag: str, world: int) -> list[dict]:
    return [
        torch.load(os.path.join(out_dir, f"{tag}_w{world}_rank{r}.pt"), weights_only=False)
        for r in range(world)
    ]


def _assert_phases(temps):
    assert all(t is None for t in temps[: dw.SIGN])
    assert all(t is not None and math.isfinite(t) for t in temps[dw.SIGN :])
    # The schedule falls through the transition and then holds its last value.
    assert temps[dw.SIGN] > temps[dw.SIGN + dw.TRANSITION - 1]
    assert temps[dw.SIGN + dw.TRANSITION - 1] == temps[-1]


def _cases(kind, *extra):
    return [
        (w, s) for w, jobs in JOBS.items() for k, s, *e in jobs if k == kind and e == list(extra)
    ]


@pytest.mark.parametrize("world, scenario", _cases("fsdp"))
def test_fsdp2_matches_the_single_process_run(run_dir, world, scenario):
    records = _records(run_dir(world), f"fsdp_{scenario}", world)
    single = _single(scenario)
    dtype = dw.SCENARIOS[scenario][1]
    for rec in records:
        assert rec["params"].keys() == single["params"].keys()
        for name, p in rec["params"].items():
            assert p.dtype == dtype
            torch.testing.assert_close(p, single["params"][name], rtol=0, atol=ATOL[dtype])
        _assert_phases(rec["temps"])
        # Every rank fitted the identical schedule: same numbers, bit for bit.
        assert rec["fits"] == records[0]["fits"] and rec["temps"] == records[0]["temps"]
        for got, want in zip(rec["fits"], single["fits"]):
            if want is None:
                assert got is None  # SoftMuon's AdamW group has no schedule
                continue
            assert got["median"] == pytest.approx(want["median"], rel=1e-4, abs=1e-9)
            assert got["mad"] == pytest.approx(want["mad"], rel=1e-4)
    # The parameter that never gets a gradient is untouched (no weight decay either).
    assert torch.equal(records[0]["params"]["unused"], _initial(scenario)["unused"])


@functools.cache
def _initial(scenario: str) -> dict:
    return dw.full_state(dw.make_model(scenario))


@pytest.mark.parametrize("world, scenario", _cases("lockstep"))
def test_sharded_step_equals_single_process_step_on_equal_gradients(run_dir, world, scenario):
    """The sharded optimizer against the single-process one, fed the same gradients, so that
    only their own work differs: SoftSignum's kernel computes every element alike wherever
    its tensor is cut, so shards step bit for bit as the whole; SoftMuon's matrices are
    gathered whole and mapped as in one process, and only torch's fused AdamW (the aux
    groups) rounds a shard's last elements differently, by an ulp."""
    for rec in _records(run_dir(world), f"lockstep_{scenario}", world):
        if dw.SCENARIOS[scenario][0] == "softsignum":
            assert max(rec["diffs"]) == 0, rec["diffs"]
        else:
            assert max(rec["diffs"]) <= 1e-7, rec["diffs"]
        plain_temps, sharded_temps = zip(*rec["temps"])
        _assert_phases(sharded_temps)
        # The all-reduced selection picks exactly the single-process median and MAD.
        plain_fits, sharded_fits = rec["fits"]
        assert sharded_fits == plain_fits
        assert sharded_temps == plain_temps


@pytest.mark.parametrize("world, scenario", _cases("lockstep", True))
def test_hsdp_step_equals_single_process_step_on_equal_gradients(run_dir, world, scenario):
    """Replicated over one mesh dimension and sharded over the other: the statistic is
    summed over the shard dimension only and the matrices are exchanged within it, so
    both replicas step exactly as the lone process."""
    for rec in _records(run_dir(world), f"lockstep_hsdp_{scenario}", world):
        assert max(rec["diffs"]) <= (0 if scenario == "softsignum" else 1e-7), rec["diffs"]
        plain_fits, sharded_fits = rec["fits"]
        assert sharded_fits == plain_fits
        plain_temps, sharded_temps = zip(*rec["temps"])
        assert sharded_temps == plain_temps
        _assert_phases(sharded_temps)


@pytest.mark.parametrize("scenario", ["softsignum", "softmuon"])
def test_ddp_matches_the_single_process_run(run_dir, scenario):
    single = _single(scenario)
    for rec in _records(run_dir(2), f"ddp_{scenario}", 2):
        # The gradients averaged over 2 ranks that saw the same batch are exact.
        for name, p in rec["params"].items():
            assert torch.equal(p, single["params"][name]), name
        assert rec["fits"] == single["fits"]
        _assert_phases(rec["temps"])


@pytest.mark.parametrize("scenario", [j[1] for j in JOBS[2] if j[0] == "checkpoint"])
def test_dcp_resume_in_the_transition_equals_the_uninterrupted_run(run_dir, scenario):
    """Saved with torch.distributed.checkpoint at step 16 (inside the transition) on 2 ranks,
    loaded into a fresh model and optimizer, continued to step 30."""
    out = run_dir(2)
    full = _records(out, f"fsdp_{scenario}", 2)
    resumed = _records(out, f"resumed_{scenario}", 2)
    for a, b in zip(full, resumed):
        assert a["fits"] == b["fits"]
        assert a["temps"][16:] == b["temps"]
        for name in a["params"]:
            assert torch.equal(a["params"][name], b["params"][name]), name


@pytest.mark.parametrize("scenario", [j[1] for j in JOBS[2] if j[0] == "checkpoint"])
def test_dcp_checkpoint_of_2_ranks_resumes_on_4(run_dir, tmp_path, scenario):
    """The world-size-2 checkpoint of the test above, loaded on 4 ranks (DCP reshards the
    DTensor state: momentum buffers, AdamW moments), continued to step 30: the fit is the
    saved one, not refitted, and the parameters follow the uninterrupted run."""
    saved = os.path.join(run_dir(2), f"dcp_{scenario}")
    jobs = [("reshard", scenario, saved)]
    mp.spawn(dw.worker, args=(4, str(tmp_path), jobs), nprocs=4, join=True)
    (full, *_) = _records(run_dir(2), f"fsdp_{scenario}", 2)
    dtype = dw.SCENARIOS[scenario][1]
    for rec in _records(str(tmp_path), f"resharded_{scenario}", 4):
        assert rec["fits"] == full["fits"]
        assert rec["temps"] == full["temps"][16:]
        for name, p in rec["params"].items():
            torch.testing.assert_close(p, full["params"][name], rtol=0, atol=ATOL[dtype])


@pytest.mark.skipif(
    not torch.cuda.is_available() or not dist.is_nccl_available(), reason="needs CUDA and NCCL"
)
def test_fsdp2_on_a_single_rank_nccl_mesh(tmp_path):
    """The FSDP2 path on the GPU: one process, NCCL, against the single-process CUDA run."""
    jobs = [("fsdp", "softsignum"), ("fsdp", "softmuon64"), ("lockstep", "softmuon")]
    mp.spawn(dw.worker, args=(1, str(tmp_path), jobs, "nccl"), nprocs=1, join=True)
    for scenario in ("softsignum", "softmuon64"):
        (rec,) = _records(str(tmp_path), f"fsdp_{scenario}", 1)
        single = dw.single_process(scenario, "cuda")
        dtype = dw.SCENARIOS[scenario][1]
        for name, p in rec["params"].items():
            torch.testing.assert_close(p, single["params"][name], rtol=0, atol=ATOL[dtype])
        _assert_phases(rec["temps"])
    (rec,) = _records(str(tmp_path), "lockstep_softmuon", 1)
    assert max(rec["diffs"]) <= 1e-7
    assert rec["fits"][0] == rec["fits"][1]


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")
@pytest.mark.parametrize("cls", ["SoftSignum", "SoftMuon"])
def test_gradient_laid_out_unlike_its_parameter_is_refused_before_any_change(cls):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Replicate, Shard, distribute_tensor

    import softsign

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        mesh = init_device_mesh("cpu", (1,))
        p = torch.nn.Parameter(distribute_tensor(torch.randn(8, 4), mesh, [Shard(0)]))
        p.grad = distribute_tensor(torch.randn(8, 4), mesh, [Replicate()])
        before = p.detach().full_tensor().clone()
        opt = getattr(softsign, cls)([p], total_steps=100)
        with pytest.raises(ValueError, match="layout differs from its parameter"):
            opt.step()
        assert torch.equal(p.detach().full_tensor(), before)
    finally:
        dist.destroy_process_group()


def _steps_with_an_empty_shard(rank, world, path, cls, out):
    """Three steps (sign phase, fit, transition) of a parameter too small to give rank 1
    any element: every rank must still take part in the fit's collectives."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    import softsign

    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=world)
    mesh = init_device_mesh("cpu", (world,))
    p = torch.nn.Parameter(distribute_tensor(torch.ones(1, 4), mesh, [Shard(0)]))
    opt = getattr(softsign, cls)([p], sign_steps=1, transition_steps=2)
    for k in range(3):
        g = torch.randn(1, 4, generator=torch.Generator().manual_seed(k))
        p.grad = distribute_tensor(g, mesh, [Shard(0)])
        opt.step()
    out[rank] = (p.to_local().numel(), opt.temperature())
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")
@pytest.mark.parametrize("cls", ["SoftSignum", "SoftMuon"])
def test_a_rank_whose_shards_are_empty_takes_part_in_the_fit(cls, tmp_path):
    with mp.Manager() as manager:
        out = manager.dict()
        ctx = mp.start_processes(
            _steps_with_an_empty_shard,
            args=(2, str(tmp_path / "store"), cls, out),
            nprocs=2,
            join=False,
            start_method="spawn",
        )
        deadline = time.monotonic() + 120
        while not ctx.join(timeout=5):
            if time.monotonic() > deadline:
                for proc in ctx.processes:
                    proc.kill()
                pytest.fail("a rank hung in the fit's collectives")
        results = dict(out)
    assert sorted(n for n, _ in results.values()) == [0, 4]
    temps = {t for _, t in results.values()}
    assert len(temps) == 1 and None not in temps
