"""The training example runs, alone and sharded: `train_gpt.py --fsdp` under torchrun (2
processes, gloo) sees the same batches as one process and must reach its validation loss.
compare.py pairs and reuses runs; lion and softlion build softsign's Lion and SoftLion."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist

import softsign

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "python" / "train_gpt.py"
ARGS = ["--preset", "tiny", "--optimizer", "softmuon", "--steps", "24", "--eval-every", "12"]
ARGS += ["--eval-batches", "2", "--threads", "1", "--no-progress", "--no-plot", "--quiet"]


def _log(out: Path) -> dict:
    return json.loads((out / "log.json").read_text())


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/ not in this checkout")
@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="no gloo")
def test_train_gpt_fsdp_matches_one_process(tmp_path):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or "torchrun"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    alone, sharded = tmp_path / "alone", tmp_path / "sharded"
    subprocess.run(
        [sys.executable, str(EXAMPLE), *ARGS, "--out", str(alone)], check=True, env=env, timeout=300
    )
    subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node", "2", str(EXAMPLE), "--fsdp", *ARGS]
        + ["--out", str(sharded)],
        check=True,
        env=env,
        timeout=300,  # a rendezvous that never completes must fail, not hang CI
    )
    a, b = _log(alone), _log(sharded)
    assert b["world_size"] == 2 and a["world_size"] == 1
    assert a["transition_start"] == b["transition_start"] < 24  # the run crosses the fit
    assert abs(a["final_val_loss"] - b["final_val_loss"]) < 1e-3
    assert all(abs(x - y) < 1e-3 for x, y in zip(a["train_loss"], b["train_loss"]))


COMPARE = EXAMPLE.parent / "compare.py"


@pytest.mark.skipif(not COMPARE.exists(), reason="examples/ not in this checkout")
def test_compare_tables_pairs_and_reuses_finished_runs(tmp_path):
    """compare.py sweeps, trains every seed, prints the per-seed paired differences, and with
    --reuse reads finished runs back instead of training them again."""
    args = [sys.executable, str(COMPARE), "--quick", "--optimizers", "signum", "softsignum"]
    args += ["--steps", "12", "--sweep-steps", "6", "--seeds", "0", "1", "--threads", "1"]
    args += ["--no-progress", "--out", str(tmp_path)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    first = subprocess.run(args, check=True, env=env, capture_output=True, text=True, timeout=300)
    assert "| softsignum - signum |" in first.stdout
    summary = json.loads((tmp_path / "compare.json").read_text())
    runs = summary["results"]["softsignum"]["runs"]
    assert [r["seed"] for r in runs] == [0, 1]
    again = subprocess.run(
        args + ["--reuse"], check=True, env=env, capture_output=True, text=True, timeout=300
    )
    assert again.stdout.count("reused") == 2 * (2 + 2)  # 2 sweep LRs + 2 seeds, each optimizer
    assert json.loads((tmp_path / "compare.json").read_text())["results"] == summary["results"]


def _train_gpt():
    """train_gpt.py as a module (examples/ is no package)."""
    spec = importlib.util.spec_from_file_location("train_gpt", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/ not in this checkout")
@pytest.mark.parametrize("name", ["lion", "softlion"])
def test_train_gpt_builds_lion_and_softlion(tmp_path, monkeypatch, name):
    """lion and softlion get lion-pytorch's options (lr, betas, weight_decay), softlion also
    SoftSignum's schedule, and train. A softsign without the class stops before any work
    with a message naming it; a stand-in then checks the wiring."""
    train_gpt = _train_gpt()
    cls = train_gpt.NEWER_CLASSES[name]
    argv = ["--preset", "tiny", "--optimizer", name, "--steps", "8", "--alpha-sign", "0.5"]
    argv += ["--eval-every", "8", "--eval-batches", "1", "--weight-decay", "0.1"]
    argv += ["--no-progress", "--no-plot", "--quiet", "--out", str(tmp_path)]
    seen = {}
    if not hasattr(softsign, cls):
        with pytest.raises(SystemExit, match=f"needs softsign.{cls}"):
            train_gpt.parse_args(argv)
        base = softsign.SoftSignum if name == "softlion" else softsign.Signum

        class StandIn(base):  # Lion's signature on top of Signum's step
            def __init__(self, params, *, lr, betas, weight_decay, **schedule):
                seen.update(lr=lr, betas=betas, weight_decay=weight_decay, **schedule)
                super().__init__(
                    params, lr=lr, momentum=betas[0], weight_decay=weight_decay, **schedule
                )

        monkeypatch.setattr(softsign, cls, StandIn, raising=False)
    with torch.random.fork_rng(devices=[]):  # the run seeds torch's global generator
        log = train_gpt.run(argv)
    assert math.isfinite(log["final_val_loss"])
    if seen:
        want = dict(lr=3e-4, betas=(0.9, 0.99), weight_decay=0.1)
        if name == "softlion":
            want.update(total_steps=8, alpha_sign=0.5)
        assert seen == want
    if name == "softlion":
        assert log["transition_start"] == 4
        assert log["temperature_steps"][0] == 5 and log["temperature"][-1] is not None
    else:
        assert log["transition_start"] is None and log["temperature"] == []
