"""softsign's optimizers inside Lightning (a real client): mixed precision with gradient
clipping, which Lightning refuses for an optimizer that claims AMP's unscaling itself.
Skipped without the lightning package (requirements-dev.txt installs it)."""

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


OPTIMIZERS = {
    "SoftSignum": lambda p: softsign.SoftSignum(p, lr=1e-2, total_steps=8, alpha_sign=0.5),
    "Signum": lambda p: softsign.Signum(p, lr=1e-2),
    "SoftLion": lambda p: softsign.SoftLion(p, lr=1e-3, total_steps=8, alpha_sign=0.5),
    "SoftMuon": lambda p: softsign.SoftMuon(p, lr=0.02, total_steps=8, alpha_sign=0.5),
}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_bf16_mixed_with_gradient_clipping_trains_through_the_transition(name):
    model = _Tiny(OPTIMIZERS[name])
    quiet = {f"enable_{what}": False for what in ("checkpointing", "progress_bar", "model_summary")}
    trainer = L.Trainer(
        accelerator="cpu",
        precision="bf16-mixed",
        gradient_clip_val=1.0,
        max_steps=8,
        logger=False,
        **quiet,
    )
    before = [p.detach().clone() for p in model.parameters()]
    trainer.fit(model, _loader())
    opt = trainer.optimizers[0]
    assert opt.param_groups[0]["step"] == 8
    assert opt.temperature() is not None or name == "Signum"
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
