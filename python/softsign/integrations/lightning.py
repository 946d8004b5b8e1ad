"""softsign with Lightning: `SoftsignCallback` fills total_steps="auto" (of an optimizer
built with it) from the trainer and logs, at the trainer's logging
steps, the phase, temperature and saturation fraction of every param group.

    class Model(L.LightningModule):
        def configure_optimizers(self):
            return softsign.SoftSignum(self.parameters(), lr=1e-4, total_steps="auto")

    L.Trainer(max_steps=10_000, callbacks=[SoftsignCallback()]).fit(Model(), loader)
"""

from __future__ import annotations

import math

try:
    import lightning.pytorch as pl
except ImportError as error:  # pragma: no cover - depends on the environment
    from . import missing_framework

    raise missing_framework("lightning", "lightning") from error

from ._observe import metrics, unwrap
from ._schedule import fill_total_steps

__all__ = ["SoftsignCallback"]


class SoftsignCallback(pl.Callback):
    """A Lightning Callback for softsign's optimizers (the trainer's optimizers, or ones
    wrapped in LightningOptimizer: softsign.unwrap sees through it).

    * on_train_start (after configure_optimizers and any checkpoint restore): every param
      group whose total_steps is "auto" gets `trainer.estimated_stepping_batches` (optimizer
      steps: max_steps, or max_epochs times the batches per epoch over
      accumulate_grad_batches). A run resumed from a checkpoint keeps the checkpoint's.
    * on_train_batch_end, once per optimizer step whose global_step is a multiple of
      `trainer.log_every_n_steps` (Lightning's own logging steps): `pl_module.log` of
      "softsign/phase_i" (0 sign, 1 transition, 2 final), "softsign/temperature_i" (from the
      fit on) and "softsign/saturation_i" (softsign.integrations.saturation) per param group
      i with a schedule; with several softsign optimizers, the j-th (j >= 1) logs under
      "softsign/optimizer_j/". Device values are read then, never between logging steps.

    Args:
        saturation: log the saturation fraction (False leaves out its reduction; for
            SoftMuon an eigendecomposition per matrix). Default True.
        threshold: the saturation threshold on |tau * d| (None: where the map is within 1%
            of +-1, softsign.integrations.THRESHOLDS).
        prefix: the start of every key. Default "softsign/".

    Raises:
        TypeError (on_train_start): none of the trainer's optimizers is softsign's.
        ValueError (on_train_start): a group is "auto" and the run's length is unknown
            (max_steps=-1 with max_epochs=-1, or an unsized dataloader without max_steps).
    """

    def __init__(
        self, *, saturation: bool = True, threshold: float | None = None, prefix: str = "softsign/"
    ):
        self.saturation = saturation
        self.threshold = threshold
        self.prefix = prefix
        self._last_logged = None

    def on_train_start(self, trainer, pl_module):
        optimizers = _softsign_optimizers(trainer)
        if not optimizers:
            unwrap(trainer.optimizers[0] if trainer.optimizers else None)  # raises, naming it
        steps = trainer.estimated_stepping_batches
        if isinstance(steps, float) and math.isfinite(steps) and steps.is_integer():
            steps = int(steps)
        for opt in optimizers:
            fill_total_steps(opt, steps)
        self._last_logged = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step
        every = trainer.log_every_n_steps
        if not every or step == 0 or step % every or step == self._last_logged:
            return  # not a logging step, or one logged already (gradient accumulation)
        self._last_logged = step
        for j, opt in enumerate(_softsign_optimizers(trainer)):
            prefix = self.prefix if j == 0 else f"{self.prefix}optimizer_{j}/"
            values = metrics(
                opt, prefix=prefix, saturation_fraction=self.saturation, threshold=self.threshold
            )
            if values:
                pl_module.log_dict(values, on_step=True, on_epoch=False, batch_size=1)


def _softsign_optimizers(trainer) -> list:
    found = []
    for opt in trainer.optimizers:
        try:
            found.append(unwrap(opt))
        except TypeError:
            continue  # another optimizer beside softsign's
    return found
