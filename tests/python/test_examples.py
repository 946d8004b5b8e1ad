"""The training example runs, alone and sharded: `train_gpt.py --fsdp` under torchrun (2
processes, gloo) sees the same batches as one process and must reach its validation loss.
compare.py pairs and reuses runs. Every element-wise pair of softsign.elementwise_pairs() is an
optimizer of both scripts (signum/softsignum, lion/softlion, ...), and a pair this softsign
lacks is no choice of either."""

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


# Every element-wise class of this softsign by the name the examples give it (lowercase),
# and whether it is the soft one of its pair: what the examples must offer, found as they do.
ELEMENTWISE = {
    cls.__name__.lower(): (cls, soft)
    for pair in softsign.elementwise_pairs().values()
    for cls, soft in zip(pair, (False, True))
}


@pytest.mark.skipif(not EXAMPLE.exists(), reason="examples/ not in this checkout")
@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_train_gpt_builds_every_elementwise_optimizer(tmp_path, monkeypatch, name):
    """Each element-wise optimizer is a choice of train_gpt.py, gets the shared default LR,
    --weight-decay and its class's defaults for the rest (Lion's betas, Signum's momentum),
    the soft one also total_steps = --steps and --alpha-sign, and trains."""
    cls, soft = ELEMENTWISE[name]
    train_gpt = _train_gpt()
    assert name in train_gpt.OPTIMIZERS and (name in train_gpt.SOFT) == soft
    built = []
    make = train_gpt.make_optimizer

    def recording(args, model):  # the optimizer run() trains with
        built.append(make(args, model))
        return built[-1]

    monkeypatch.setattr(train_gpt, "make_optimizer", recording)
    argv = ["--preset", "tiny", "--optimizer", name, "--steps", "8", "--alpha-sign", "0.5"]
    argv += ["--eval-every", "8", "--eval-batches", "1", "--weight-decay", "0.1"]
    argv += ["--no-progress", "--no-plot", "--quiet", "--out", str(tmp_path)]
    with torch.random.fork_rng(devices=[]):  # the run seeds torch's global generator
        log = train_gpt.run(argv)
    assert math.isfinite(log["final_val_loss"])
    (opt,) = built
    assert type(opt) is cls
    # Every option but these is the class's default: Lion's betas, Signum's momentum.
    want = dict(cls._table.defaults, lr=3e-4, weight_decay=0.1)
    if soft:
        want.update(total_steps=8, alpha_sign=0.5)
    # The constructor's options (the groups' lr follows the schedule).
    assert {k: opt.defaults[k] for k in cls._table.names} == want
    if soft:
        assert log["transition_start"] == 4
        assert log["temperature_steps"][0] == 5 and log["temperature"][-1] is not None
    else:
        assert log["transition_start"] is None and log["temperature"] == []


# The pairs a softsign may lack: all but Signum's, which the scripts' defaults use.
DROPPABLE = [n for n in softsign.elementwise_pairs() if n != "Signum"]


@pytest.mark.skipif(not COMPARE.exists(), reason="examples/ not in this checkout")
@pytest.mark.parametrize("dropped", DROPPABLE)
def test_examples_leave_out_a_pair_softsign_lacks(monkeypatch, capsys, dropped):
    """With a softsign that lacks one pair (elementwise_pairs() without it), both scripts
    load, leave its two names out of their choices, grids and pairs, and refuse them with a
    message that names this softsign; the other element-wise optimizers still build."""
    every = softsign.elementwise_pairs()
    gone = [cls.__name__.lower() for cls in every[dropped]]
    pairs = {n: pair for n, pair in every.items() if n != dropped}
    monkeypatch.setattr(softsign, "elementwise_pairs", lambda: dict(pairs))
    train_gpt = _train_gpt()
    # compare.py imports train_gpt by name: hand it the module loaded above, and keep its
    # sys.path entry to this test.
    monkeypatch.setitem(sys.modules, "train_gpt", train_gpt)
    monkeypatch.setattr(sys, "path", list(sys.path))
    spec = importlib.util.spec_from_file_location("compare", COMPARE)
    compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(compare)

    for name in gone:
        assert name not in train_gpt.OPTIMIZERS and name not in train_gpt.DEFAULT_LR
        assert name not in compare.VARIANTS and name not in compare.LR_GRIDS
        assert all(name not in pair for pair in compare.PAIRS)
        with pytest.raises(SystemExit):
            train_gpt.parse_args(["--optimizer", name])
        assert f"unknown optimizer {name!r}" in capsys.readouterr().err
        with pytest.raises(SystemExit, match=f"unknown optimizer {name!r}.*elementwise_pairs"):
            train_gpt.require_optimizer(name)
        with pytest.raises(SystemExit):
            compare.parse_args(["--optimizers", name])
        assert "invalid choice" in capsys.readouterr().err
    kept = [cls.__name__.lower() for pair in pairs.values() for cls in pair]
    assert list(train_gpt.ELEMENTWISE) == kept
    elementwise_pairs = [(soft, plain) for plain, soft in train_gpt.ELEMENTWISE_PAIRS]
    assert compare.PAIRS[: len(elementwise_pairs)] == elementwise_pairs
    model = torch.nn.Linear(4, 4)
    for name in kept:
        args = train_gpt.parse_args(["--optimizer", name, "--steps", "20"])
        assert type(train_gpt.make_optimizer(args, model)).__name__.lower() == name
