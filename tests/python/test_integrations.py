"""softsign in training stacks (softsign.integrations): seeing the optimizer through its
wrappers, the observability of each param group (phase, temperature, saturation fraction),
total_steps="auto" filled by a callback, and the Hugging Face Trainer end to end on a tiny
GPT-2 built from a config (no downloads). The Lightning callback is tested beside the other
Lightning tests (test_lightning.py). Tests that need transformers or accelerate skip without
them (requirements-dev.txt installs both)."""

from __future__ import annotations

import copy
import json
import math
import warnings

import pytest
import torch
from optim_registry import OPTIMIZERS

import softsign
from softsign.integrations import (
    AUTO,
    NULL_SINGULAR_VALUE,
    THRESHOLDS,
    fill_total_steps,
    metrics,
    phase,
    saturation,
    unwrap,
)


def _mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.Linear(16, 2)
    )


def _train(opt, model, steps, seed=1):
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        opt.zero_grad()
        x = torch.randn(16, 8, generator=g)
        model(x).square().mean().backward()
        opt.step()


# Every optimizer of the contract registry, at its registry learning rate.
LR = {info.name: info.options["lr"] for info in OPTIMIZERS}
SOFT = {
    name: (lambda params, name=name, **kw: getattr(softsign, name)(params, lr=LR[name], **kw))
    for name in LR
    if name.startswith("Soft")
}


# softsign's element-wise pairs, {name: (plain, soft)}.
ELEMENTWISE = softsign.elementwise_pairs()


def _params(name, model):
    return softsign.muon_param_groups(model) if "Muon" in name else model.parameters()


# -- unwrap and temperature ----------------------------------------------------------------


def _wrapper(name, attribute):
    """A wrapper class that keeps the optimizer in `attribute` and passes param_groups and
    step() through: accelerate's AcceleratedOptimizer (.optimizer), Lightning's
    LightningOptimizer (._optimizer)."""

    def __init__(self, optimizer):
        setattr(self, attribute, optimizer)

    return type(
        name,
        (),
        {
            "__init__": __init__,
            "param_groups": property(lambda self: getattr(self, attribute).param_groups),
            "step": lambda self, closure=None: getattr(self, attribute).step(closure),
        },
    )


_Accelerated = _wrapper("_Accelerated", "optimizer")
_Lightning = _wrapper("_Lightning", "_optimizer")


def test_unwrap_sees_through_wrappers_and_nested_wrappers():
    model = _mlp()
    opt = softsign.SoftSignum(model.parameters(), lr=1e-2, total_steps=8, alpha_sign=0.5)
    assert unwrap(opt) is opt
    for wrapped in (_Accelerated(opt), _Lightning(opt), _Lightning(_Accelerated(opt))):
        assert softsign.unwrap(wrapped) is opt
    _train(opt, model, 6)
    assert softsign.temperature(_Lightning(_Accelerated(opt))) == opt.temperature()
    assert opt.temperature() is not None


def test_unwrap_refuses_what_holds_no_softsign_optimizer():
    sgd = torch.optim.SGD(_mlp().parameters(), lr=0.1)
    for what in (sgd, _Accelerated(sgd), None):
        with pytest.raises(TypeError, match="no softsign optimizer inside"):
            unwrap(what)
    with pytest.raises(TypeError, match="_Accelerated -> SGD"):
        softsign.temperature(_Accelerated(sgd))


def test_unwrap_sees_through_accelerates_optimizer():
    accelerate = pytest.importorskip("accelerate", reason="the accelerate package is not installed")
    model = _mlp()
    opt = softsign.SoftMuon(
        softsign.muon_param_groups(model), lr=0.02, total_steps=8, alpha_sign=0.5
    )
    model, wrapped = accelerate.Accelerator(cpu=True).prepare(model, opt)
    assert type(wrapped).__name__ == "AcceleratedOptimizer"
    assert softsign.unwrap(wrapped) is opt
    _train(wrapped, model, 8)
    assert softsign.temperature(wrapped) == opt.temperature() is not None


def test_unwrap_sees_through_lightnings_optimizer():
    pytest.importorskip("lightning", reason="the lightning package is not installed")
    from lightning.pytorch.core.optimizer import LightningOptimizer

    opt = softsign.SoftSignum(_mlp().parameters(), total_steps=8, alpha_sign=0.5)
    wrapped = LightningOptimizer(opt)
    assert isinstance(wrapped, softsign.SoftSignum)  # it imitates the class it wraps
    assert softsign.unwrap(wrapped) is opt
    assert softsign.unwrap(_Accelerated(wrapped)) is opt


# -- phase and saturation --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SOFT))
def test_the_sign_phase_is_saturated_and_adamw_groups_have_no_schedule(name):
    model = _mlp()
    opt = SOFT[name](_params(name, model), total_steps=10, alpha_sign=0.5)
    assert opt.saturation() == 1.0 and phase(opt) == "sign"  # before any step
    _train(opt, model, 5)
    assert opt.saturation() == 1.0 and phase(opt) == "sign" and opt.temperature() is None
    if name == "SoftMuon":  # group 1 is AdamW
        assert opt.saturation(1) is None and phase(opt, 1) is None
        assert set(metrics(opt)) == {"softsign/phase_0", "softsign/saturation_0"}


PLAIN = {
    name: (lambda model, name=name: getattr(softsign, name)(_params(name, model)))
    for name in LR
    if not name.startswith("Soft")
}


@pytest.mark.parametrize("name", sorted(PLAIN))
def test_plain_optimizers_are_in_the_sign_phase_forever(name):
    model = _mlp()
    opt = PLAIN[name](model)
    _train(opt, model, 3)
    assert phase(opt) == "sign" and opt.saturation() == 1.0 and opt.temperature() is None
    assert metrics(opt)["softsign/phase_0"] == 0


def _expected_fraction(values, tau, threshold):
    values = torch.cat([v.reshape(-1).double() for v in values])
    return (values.abs() * tau > threshold).double().mean().item()


@pytest.mark.parametrize("name", sorted(SOFT))
@pytest.mark.parametrize("threshold", [None, 0.5])
def test_saturation_counts_the_buffers_above_the_threshold(name, threshold):
    model = _mlp()
    opt = SOFT[name](_params(name, model), total_steps=10, alpha_sign=0.5)
    # Steps 6..10 are the transition (the fit at 6), then the last temperature.
    for k, expected_phase in ((6, "transition"), (10, "transition"), (12, "final")):
        _train(opt, model, k - opt.param_groups[0]["step"], seed=k)
        assert phase(opt) == expected_phase
        tau = opt.temperature()
        assert tau is not None and math.isfinite(tau)
        group = opt.param_groups[0]
        if name == "SoftMuon":
            kind = "algebraic"
            values = []
            for p in group["params"]:
                sigma = torch.linalg.svdvals(opt.state[p]["momentum_buffer"].double())
                values.append(sigma * (sigma > sigma.max() * NULL_SINGULAR_VALUE))  # 0: null
        else:
            kind = "tanh"
            values = [opt.state[p][type(opt)._buffer] for p in group["params"]]
        t = THRESHOLDS[kind] if threshold is None else threshold
        got = opt.saturation(threshold=threshold)
        assert got == pytest.approx(_expected_fraction(values, tau, t), abs=1e-6)
        assert saturation(_Accelerated(opt), 0, threshold) == got
        assert 0.0 <= got <= 1.0


def test_the_default_thresholds_are_where_the_map_is_within_one_percent_of_its_limit():
    assert math.tanh(THRESHOLDS["tanh"]) == pytest.approx(0.99)
    x = THRESHOLDS["algebraic"]
    assert x / math.sqrt(1 + x * x) == pytest.approx(0.99)


def test_saturation_without_a_buffer_reads_the_gradient():
    model = _mlp()
    opt = softsign.SoftSignum(
        model.parameters(), lr=1e-2, momentum=0.0, total_steps=4, alpha_sign=0.5
    )
    g = torch.Generator().manual_seed(0)
    for _ in range(4):
        opt.zero_grad(set_to_none=False)
        model(torch.randn(16, 8, generator=g)).square().mean().backward()
        opt.step()
    grads = [p.grad for p in model.parameters()]
    tau = opt.temperature()
    assert opt.saturation() == pytest.approx(
        _expected_fraction(grads, tau, THRESHOLDS["tanh"]), abs=1e-6
    )
    opt.zero_grad()  # the gradients are gone: nothing to read
    assert opt.saturation() is None


def test_step_never_reads_what_the_logging_reads(monkeypatch):
    """The observability adds nothing to step(): the saturation and the metrics run only
    when asked (so no device read or synchronization reaches the step from them)."""
    from softsign.integrations import _observe

    def refuse(*args, **kwargs):
        raise AssertionError("called inside step()")

    for name in ("saturation", "metrics", "phase", "_coordinate_counts", "_singular_value_counts"):
        monkeypatch.setattr(_observe, name, refuse)
    for name in sorted(SOFT):
        model = _mlp()
        opt = SOFT[name](_params(name, model), total_steps=8, alpha_sign=0.5)
        _train(opt, model, 10)
        assert opt.temperature() is not None


# -- total_steps="auto" ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SOFT))
def test_auto_total_steps_refuses_to_step_until_filled_then_steps_as_the_class(name):
    cls = getattr(softsign, name)
    lr = LR[name]
    model, twin = _mlp(), _mlp()
    opt = cls(_params(name, model), lr=lr, alpha_sign=0.5, total_steps=AUTO)
    ref = cls(_params(name, twin), lr=lr, alpha_sign=0.5, total_steps=10)
    assert opt.param_groups[0]["total_steps"] == AUTO
    assert opt.temperature() is None and phase(opt) == "sign" and opt.saturation() == 1.0
    json.dumps(opt.state_dict()["param_groups"])  # "auto" is a JSON value
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(RuntimeError, match="total_steps='auto'.*SoftsignCallback"):
        _train(opt, model, 1)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert all(not opt.state[p] for p in model.parameters())  # no state either
    assert fill_total_steps(_Accelerated(opt), 10) == 1
    assert fill_total_steps(opt, 99) == 0  # nothing left to fill
    assert opt.param_groups[0]["total_steps"] == 10
    opt.zero_grad()
    _train(opt, model, 12)
    _train(ref, twin, 12)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))
    assert opt.temperature() == ref.temperature() is not None


def test_auto_total_steps_keeps_what_a_group_says_and_checks_the_filled_value():
    model = _mlp()
    w = list(model.parameters())
    opt = softsign.SoftSignum(
        [
            {"params": w[:2]},
            {"params": w[2:4], "total_steps": 30},
            {"params": w[4:], "total_steps": None, "sign_steps": 3, "transition_steps": 4},
        ],
        total_steps=AUTO,
    )
    assert [g["total_steps"] for g in opt.param_groups] == [AUTO, 30, None]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fill_total_steps(opt, 10) == 1  # leaves a transition of 1 step: warns
    assert any("transition of 1 step" in str(w.message) for w in caught)
    assert [g["total_steps"] for g in opt.param_groups] == [10, 30, None]
    opt = softsign.SoftSignum(w, total_steps=AUTO)
    for bad in (0, -1, 2.5, float("inf"), True, None):
        with pytest.raises(ValueError, match="cannot fill total_steps='auto'"):
            fill_total_steps(opt, bad)
    with pytest.raises(ValueError, match="Invalid alpha_sign"):
        softsign.SoftSignum(w, total_steps=AUTO, alpha_sign=2.0)  # the others: at once
    for bad in ("Auto", "10", "automatic"):
        with pytest.raises(ValueError, match="Invalid total_steps"):
            softsign.SoftSignum(w, total_steps=bad)
    opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(3))]})
    assert opt.param_groups[-1]["total_steps"] == AUTO
    # Explicit sign_steps and transition_steps need no total_steps: nothing to fill.
    explicit = softsign.SoftSignum(w, total_steps=AUTO, sign_steps=2, transition_steps=3)
    assert fill_total_steps(explicit, 10) == 0
    _train(explicit, model, 1)


@pytest.mark.parametrize("name", sorted(ELEMENTWISE))
def test_an_auto_optimizer_copies_and_pickles(name):
    import pickle

    soft = ELEMENTWISE[name][1]
    opt = soft(_mlp().parameters(), alpha_sign=0.5, total_steps=AUTO)
    for twin in (copy.deepcopy(opt), pickle.loads(pickle.dumps(opt))):
        assert type(twin) is type(opt) and twin.param_groups[0]["total_steps"] == AUTO
        with pytest.raises(RuntimeError, match="total_steps='auto'"):
            twin.step()  # the refusal is part of the copy


def test_a_soft_optimizer_without_a_schedule_names_auto():
    with pytest.raises(ValueError, match='total_steps="auto"'):
        softsign.SoftSignum(_mlp().parameters())


def test_only_the_soft_optimizers_take_auto():
    w = list(_mlp().parameters())
    for cls in (softsign.Muon, *(plain for plain, _ in ELEMENTWISE.values())):
        with pytest.raises((TypeError, ValueError)):
            cls(w, total_steps=AUTO)


def test_an_auto_optimizer_resumes_from_its_state_dict():
    model, twin = _mlp(), _mlp()
    opt = softsign.SoftSignum(model.parameters(), lr=1e-2, alpha_sign=0.5, total_steps=AUTO)
    fill_total_steps(opt, 10)
    _train(opt, model, 7)
    state = copy.deepcopy(opt.state_dict())  # as a checkpoint: not the live buffers
    twin.load_state_dict(model.state_dict())
    resumed = softsign.SoftSignum(twin.parameters(), lr=1e-2, alpha_sign=0.5, total_steps=AUTO)
    resumed.load_state_dict(state)  # the checkpoint's total_steps, no fill needed
    assert resumed.param_groups[0]["total_steps"] == 10
    _train(opt, model, 5, seed=9)
    _train(resumed, twin, 5, seed=9)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), twin.parameters()))


# -- the Hugging Face Trainer ------------------------------------------------------------------


def _transformers():
    pytest.importorskip("accelerate", reason="the accelerate package is not installed")
    return pytest.importorskip("transformers", reason="the transformers package is not installed")


def _gpt2(transformers, seed=0, **config):
    transformers.logging.set_verbosity_error()
    options = dict(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=32)
    options.update(bos_token_id=0, eos_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(seed)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**{**options, **config}))


def _dataset():
    ids = torch.randint(0, 64, (64, 16), generator=torch.Generator().manual_seed(0))
    return [{"input_ids": x, "labels": x} for x in ids]


def _args(transformers, tmp_path, **over):
    options = dict(
        output_dir=str(tmp_path),
        use_cpu=True,
        report_to=[],
        max_steps=12,
        logging_steps=2,
        per_device_train_batch_size=4,
        save_strategy="no",
        lr_scheduler_type="constant",
        disable_tqdm=True,
        seed=0,
    )
    return transformers.TrainingArguments(**{**options, **over})


def _optimizer_spec(name):
    """optimizer_cls_and_kwargs for the Trainer: S = 6 of max_steps = 12, T = 3, so that
    steps 7-9 are the transition and 10-12 hold the last temperature."""
    from softsign.integrations.hf import SoftMuonFactory

    schedule = {"alpha_sign": 0.5, "transition_steps": 3}
    if name == "SoftMuon":
        return SoftMuonFactory, {"lr": 0.02, **schedule}
    return softsign.SoftSignum, {"lr": 1e-3, "total_steps": "auto", **schedule}


@pytest.mark.parametrize("name", ["SoftSignum", "SoftMuon"])
def test_trainer_fills_total_steps_and_logs_the_transition(name, tmp_path):
    transformers = _transformers()
    from softsign.integrations.hf import SoftsignCallback

    trainer = transformers.Trainer(
        _gpt2(transformers),
        _args(transformers, tmp_path),
        train_dataset=_dataset(),
        optimizer_cls_and_kwargs=_optimizer_spec(name),
        callbacks=[SoftsignCallback()],
    )
    trainer.train()
    assert type(trainer.optimizer).__name__ == "AcceleratedOptimizer"
    opt = softsign.unwrap(trainer.optimizer)
    assert isinstance(opt, getattr(softsign, name))
    scheduled = [g for g in opt.param_groups if g.get("use_muon", True)]
    assert [g["total_steps"] for g in scheduled] == [12] * len(scheduled)  # state.max_steps
    assert all(g["step"] == 12 for g in opt.param_groups)
    logs = {entry["step"]: entry for entry in trainer.state.log_history if "loss" in entry}
    assert sorted(logs) == [2, 4, 6, 8, 10, 12]
    phases = {step: entry["softsign/phase_0"] for step, entry in logs.items()}
    assert phases == {2: 0, 4: 0, 6: 0, 8: 1, 10: 2, 12: 2}
    for step, entry in logs.items():
        if step <= 6:
            assert "softsign/temperature_0" not in entry and entry["softsign/saturation_0"] == 1.0
        else:
            assert entry["softsign/temperature_0"] > 0 and 0 <= entry["softsign/saturation_0"] <= 1
    assert logs[12]["softsign/temperature_0"] == softsign.temperature(trainer.optimizer)
    assert logs[12]["softsign/saturation_0"] == pytest.approx(opt.saturation())
    if name == "SoftMuon":  # the factory kept the routing: embeddings on AdamW
        wte = trainer.model.transformer.wte.weight
        adamw = [g for g in opt.param_groups if not g["use_muon"]]
        assert any(p is wte for g in adamw for p in g["params"])
        assert not any(key.endswith(f"_{len(opt.param_groups) - 1}") for key in logs[12])


def test_trainer_without_the_callback_refuses_the_first_step(tmp_path):
    transformers = _transformers()
    model = _gpt2(transformers)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = transformers.Trainer(
        model,
        _args(transformers, tmp_path, max_steps=2),
        train_dataset=_dataset(),
        optimizer_cls_and_kwargs=_optimizer_spec("SoftSignum"),
    )
    with pytest.raises(RuntimeError, match="total_steps='auto'"):
        trainer.train()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["SoftSignum", "SoftMuon"])
def test_trainer_resume_from_checkpoint_is_bitwise(name, tmp_path):
    """A run saved at step 8 (in the transition) and resumed by a new Trainer with a new
    model ends with the parameters of the uninterrupted run, bit for bit."""
    transformers = _transformers()
    from softsign.integrations.hf import SoftsignCallback

    def run(seed, **over):
        trainer = transformers.Trainer(
            _gpt2(transformers, seed=seed),
            _args(transformers, tmp_path, **over),
            train_dataset=_dataset(),
            optimizer_cls_and_kwargs=_optimizer_spec(name),
            callbacks=[SoftsignCallback()],
        )
        return trainer

    full = run(0, save_strategy="steps", save_steps=8)
    full.train()
    checkpoint = tmp_path / "checkpoint-8"
    assert checkpoint.is_dir()
    resumed = run(1)  # another initialization: everything comes from the checkpoint
    resumed.train(resume_from_checkpoint=str(checkpoint))
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "the resumed run differs"
    assert softsign.temperature(resumed.optimizer) == softsign.temperature(full.optimizer)


def test_install_puts_the_callback_ahead_of_the_logging_integrations(tmp_path):
    transformers = _transformers()
    from softsign.integrations.hf import SoftsignCallback

    seen = []

    class Reporter(transformers.TrainerCallback):  # stands for a report_to integration
        def on_log(self, args, state, control, logs=None, **kwargs):
            seen.append(dict(logs))

    trainer = transformers.Trainer(
        _gpt2(transformers),
        _args(transformers, tmp_path, max_steps=4),
        train_dataset=_dataset(),
        optimizer_cls_and_kwargs=_optimizer_spec("SoftSignum"),
        callbacks=[Reporter()],
    )
    callback = SoftsignCallback.install(trainer)
    names = [type(c).__name__ for c in trainer.callback_handler.callbacks]
    assert names.index("SoftsignCallback") == names.index("DefaultFlowCallback") + 1
    assert names.index("SoftsignCallback") < names.index("Reporter")
    assert isinstance(callback, SoftsignCallback)
    trainer.train()
    # max_steps = 4: S = 2, the transition from step 3 on.
    assert [entry["softsign/phase_0"] for entry in seen if "loss" in entry] == [0, 1]


def test_muon_param_groups_route_a_gpt2():
    transformers = _transformers()
    from transformers.pytorch_utils import Conv1D

    from softsign.integrations.hf import muon_param_groups

    for tie in (True, False):
        model = _gpt2(transformers, tie_word_embeddings=tie)
        groups = muon_param_groups(model, lr=0.05)
        assert [g["use_muon"] for g in groups] == [True, False]  # GPT-2 has no nn.Linear hidden
        conv, rest = groups
        ids = lambda ps: {id(p) for p in ps}  # noqa: E731
        conv1d = [m.weight for m in model.modules() if isinstance(m, Conv1D)]
        assert ids(conv["params"]) == ids(conv1d) and len(conv1d) == 8
        assert conv["lr"] == 0.05 and conv["transposed"] is True
        others = ids(rest["params"])
        head = model.get_output_embeddings().weight
        assert id(model.transformer.wte.weight) in others and id(head) in others
        assert id(model.transformer.wpe.weight) in others
        assert (model.lm_head.weight is model.transformer.wte.weight) == tie
        tables = {id(model.transformer.wte.weight), id(model.transformer.wpe.weight), id(head)}
        assert all(p.ndim == 1 or id(p) in tables for p in rest["params"])
        every = [p for p in model.parameters()]
        assert ids(every) == ids(conv["params"]) | others
        assert len(conv["params"]) + len(rest["params"]) == len(ids(every))
        softsign.SoftMuon(groups, total_steps=20)  # a valid set of groups


def test_the_factories_build_the_optimizer_with_that_routing():
    """What Trainer(optimizer_cls_and_kwargs=(factory, kwargs)) does with a class that is not
    an Optimizer: factory()(model, **kwargs)."""
    transformers = _transformers()
    from transformers.trainer_optimizer import is_optimizer_factory

    from softsign.integrations.hf import MuonFactory, SoftMuonFactory, muon_param_groups

    model = _gpt2(transformers)
    want = [[id(p) for p in g["params"]] for g in muon_param_groups(model)]
    for factory, cls in ((SoftMuonFactory, softsign.SoftMuon), (MuonFactory, softsign.Muon)):
        assert is_optimizer_factory(factory)
        opt = factory()(model, lr=0.03, adamw_lr=1e-3)
        assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.03
        assert [[id(p) for p in g["params"]] for g in opt.param_groups] == want
        assert opt.param_groups[-1]["lr"] == 1e-3  # AdamW's
    assert SoftMuonFactory()(model).param_groups[0]["total_steps"] == AUTO  # the callback's
    assert SoftMuonFactory()(model, total_steps=70).param_groups[0]["total_steps"] == 70


def test_muon_param_groups_keep_hidden_linears_on_the_matrix_path():
    transformers = _transformers()
    from softsign.integrations.hf import muon_param_groups

    config = transformers.LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=32,
    )
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config)
    groups = muon_param_groups(model)
    assert [g["use_muon"] for g in groups] == [True, False]
    matrices = {id(p) for p in groups[0]["params"]}
    linears = {
        id(m.weight)
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and n != "lm_head"
    }
    assert matrices == linears
    assert id(model.lm_head.weight) in {id(p) for p in groups[1]["params"]}


def test_muon_param_groups_with_the_trainers_optimizers_argument(tmp_path):
    transformers = _transformers()
    from softsign.integrations.hf import SoftsignCallback, muon_param_groups

    model = _gpt2(transformers)
    opt = softsign.SoftMuon(muon_param_groups(model), lr=0.02, alpha_sign=0.5, total_steps=AUTO)
    trainer = transformers.Trainer(
        model,
        _args(transformers, tmp_path, max_steps=8),
        train_dataset=_dataset(),
        optimizers=(opt, None),
        callbacks=[SoftsignCallback()],
    )
    trainer.train()
    assert softsign.unwrap(trainer.optimizer) is opt
    assert opt.param_groups[0]["total_steps"] == 8 and opt.temperature() is not None
    embeddings = {id(model.transformer.wte.weight), id(model.transformer.wpe.weight)}
    assert not embeddings & {id(p) for g in opt.param_groups if g["use_muon"] for p in g["params"]}


@pytest.mark.parametrize("cls", [softsign.Muon, softsign.SoftMuon])
def test_a_conv1d_weight_steps_as_the_linear_it_is(cls):
    """GPT-2's Conv1D stores (in, out): with transposed=True its update is the transpose of
    the nn.Linear's (out, in) update, scale included."""
    _transformers()
    from transformers.pytorch_utils import Conv1D

    from softsign.integrations.hf import muon_param_groups

    torch.manual_seed(0)
    conv = torch.nn.Sequential(Conv1D(48, 16))  # (in=16, out=48)
    linear = torch.nn.Linear(16, 48)
    with torch.no_grad():
        linear.weight.copy_(conv[0].weight.T)
        linear.bias.copy_(conv[0].bias)
    schedule = {"total_steps": 6, "alpha_sign": 0.5} if cls is softsign.SoftMuon else {}
    opt_conv = cls(muon_param_groups(conv), lr=0.02, **schedule)
    opt_linear = cls(
        [
            {"params": [linear.weight], "use_muon": True},
            {"params": [linear.bias], "use_muon": False},
        ],
        lr=0.02,
        **schedule,
    )
    untransposed = copy.deepcopy(conv)  # the same weight, scaled as the (16, 48) it stores
    opt_untransposed = cls(
        [
            {"params": [untransposed[0].weight], "use_muon": True},
            {"params": [untransposed[0].bias], "use_muon": False},
        ],
        lr=0.02,
        **schedule,
    )
    assert muon_param_groups(conv)[0]["transposed"] is True
    g = torch.Generator().manual_seed(0)
    pairs = ((conv, opt_conv), (linear, opt_linear), (untransposed, opt_untransposed))
    for _ in range(6):  # SoftMuon: the fit at step 4, the soft map from there on
        x = torch.randn(8, 16, generator=g)
        for model, opt in pairs:
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
        torch.testing.assert_close(conv[0].weight, linear.weight.T, rtol=1e-5, atol=1e-6)
    if cls is softsign.SoftMuon:
        assert opt_conv.temperature() == pytest.approx(opt_linear.temperature())
    # Scaled as the transpose, the update would be sqrt(3) times smaller.
    assert not torch.allclose(untransposed[0].weight, conv[0].weight, rtol=1e-3, atol=1e-4)
