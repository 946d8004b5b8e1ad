"""softsign's optimizers inside Lightning (a real client): mixed precision with gradient
clipping, which Lightning refuses for an optimizer that claims AMP's unscaling itself, and
softsign.integrations.lightning's callback (total_steps="auto" filled from the trainer, the
transition logged) under the same flags. Skipped without the lightning package
(requirements-dev.txt installs it)."""

from __future__ import annotations

import pytest
import torch

import softsign

L = pytest.importorskip("lightning", reason="the lightning package is not installed")


class _Tiny(L.LightningModule):
    def __init__(self, make_optimizer):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)
        )
        self._make = make_optimizer

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x).float(), y)

    def configure_optimizers(self):
        return self._make(self.parameters())


def _loader():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 8, generator=g)
    y = x.sum(1, keepdim=True)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16)


# Every element-wise pair of softsign.elementwise_pairs() joins by itself: its plain class,
# which never leaves the sign phase, and its soft class, whose transition starts at step 5.
PLAIN = {plain.__name__: plain for plain, _ in softsign.elementwise_pairs().values()}
SOFT = {soft.__name__: soft for _, soft in softsign.elementwise_pairs().values()}
OPTIMIZERS = {
    **{name: (lambda p, cls=cls: cls(p, lr=1e-2)) for name, cls in PLAIN.items()},
    **{
        name: (lambda p, cls=cls: cls(p, lr=1e-2, total_steps=8, alpha_sign=0.5))
        for name, cls in SOFT.items()
    },
    "SoftMuon": lambda p: softsign.SoftMuon(p, lr=0.02, total_steps=8, alpha_sign=0.5),
}


def _trainer(**over):
    """A quiet CPU trainer with bf16 autocast and gradient clipping, 8 steps."""
    quiet = {f"enable_{what}": False for what in ("checkpointing", "progress_bar", "model_summary")}
    options = dict(
        accelerator="cpu",
        precision="bf16-mixed",
        gradient_clip_val=1.0,
        max_steps=8,
        logger=False,
        **quiet,
    )
    return L.Trainer(**{**options, **over})


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_mixed_precision_with_gradient_clipping_trains_through_the_transition(name, precision):
    """16-mixed runs a GradScaler (on the CPU too): with fused left at its default the
    optimizer does not claim the scaler's unscaling, so Lightning may unscale and clip."""
    model = _Tiny(OPTIMIZERS[name])
    trainer = _trainer(precision=precision)
    before = [p.detach().clone() for p in model.parameters()]
    trainer.fit(model, _loader())
    opt = trainer.optimizers[0]
    assert opt.param_groups[0]["step"] == 8
    assert (opt.temperature() is None) == (name in PLAIN)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_16_mixed_clipping_is_refused_where_fused_true_claims_the_unscaling():
    """torch's convention: an explicit fused=True takes the scaler's scale into its step
    (no separate unscale), so clipping, which needs unscaled gradients, cannot be offered."""
    model = _Tiny(lambda p: softsign.SoftSignum(p, lr=1e-2, total_steps=8, fused=True))
    with pytest.raises(Exception, match="unscal"):
        _trainer(precision="16-mixed").fit(model, _loader())


class _Recorder(L.pytorch.loggers.Logger):
    """A logger that keeps what it is given."""

    def __init__(self):
        super().__init__()
        self.logged = []

    @property
    def name(self):
        return "recorder"

    @property
    def version(self):
        return 0

    def log_metrics(self, metrics, step=None):
        self.logged.append(dict(metrics))

    def log_hyperparams(self, params, *args, **kwargs):
        pass


AUTO_OPTIMIZERS = {
    **{
        name: (lambda p, cls=cls: cls(p, lr=1e-2, alpha_sign=0.5, total_steps="auto"))
        for name, cls in SOFT.items()
    },
    "SoftMuon": lambda p: softsign.SoftMuon(p, lr=0.02, alpha_sign=0.5, total_steps="auto"),
}


@pytest.mark.parametrize("name", sorted(AUTO_OPTIMIZERS))
@pytest.mark.parametrize(
    "length",
    [{"max_steps": 8}, {"max_steps": -1, "max_epochs": 4, "accumulate_grad_batches": 2}],
    ids=["max_steps", "epochs_accumulated"],
)
def test_softsign_callback_fills_total_steps_and_logs_the_transition(name, length):
    """softsign.integrations.lightning.SoftsignCallback under bf16-mixed with clipping:
    total_steps="auto" becomes trainer.estimated_stepping_batches (8 optimizer steps either
    way: 4 batches an epoch, accumulated in pairs over 4 epochs), and every second step
    (log_every_n_steps) the logger gets each scheduled group's phase, temperature (from the
    transition, S = 4, on) and saturation fraction."""
    from softsign.integrations.lightning import SoftsignCallback

    recorder = _Recorder()
    trainer = _trainer(
        logger=recorder, log_every_n_steps=2, callbacks=[SoftsignCallback()], **length
    )
    trainer.fit(_Tiny(AUTO_OPTIMIZERS[name]), _loader())
    opt = trainer.optimizers[0]
    assert opt.param_groups[0]["total_steps"] == 8 and opt.param_groups[0]["step"] == 8
    logged = [m for m in recorder.logged if "softsign/phase_0" in m]
    assert [m["softsign/phase_0"] for m in logged] == [0, 0, 1, 1]  # steps 2, 4, 6, 8
    assert ["softsign/temperature_0" in m for m in logged] == [False, False, True, True]
    assert [m["softsign/saturation_0"] for m in logged[:2]] == [1.0, 1.0]
    assert logged[-1]["softsign/temperature_0"] == pytest.approx(softsign.temperature(opt))
    assert 0.0 <= logged[-1]["softsign/saturation_0"] <= 1.0
    if name == "SoftMuon":  # the AdamW group has no schedule: nothing of it is logged
        assert not any(key.endswith("_1") for m in logged for key in m)


def test_softsign_callback_refuses_a_run_of_unknown_length():
    from softsign.integrations.lightning import SoftsignCallback

    trainer = _trainer(max_steps=-1, max_epochs=-1, callbacks=[SoftsignCallback()])
    with pytest.raises(ValueError, match="cannot fill total_steps='auto'"):
        trainer.fit(_Tiny(AUTO_OPTIMIZERS["SoftSignum"]), _loader())
