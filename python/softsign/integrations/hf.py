"""softsign with the Hugging Face Trainer (transformers; accelerate runs its loop).

* `SoftsignCallback`: fills total_steps="auto" (an optimizer built with it) from
  the Trainer's state.max_steps at on_train_begin, and adds per param group the phase, the
  temperature and the saturation fraction to the Trainer's logs at its logging steps.
* `muon_param_groups(model)`: SoftMuon/Muon param groups for a transformers model
  (embeddings, the LM head and vectors on AdamW; GPT-2's Conv1D weights in their own
  matrix group), for `Trainer(optimizers=(opt, None))`.
* `SoftMuonFactory`, `MuonFactory`: the same routing through
  `Trainer(optimizer_cls_and_kwargs=(SoftMuonFactory, {...}))`.

    from softsign.integrations.hf import SoftMuonFactory, SoftsignCallback

    trainer = Trainer(model, args, train_dataset=ds, callbacks=[SoftsignCallback()],
                      optimizer_cls_and_kwargs=(softsign.SoftSignum,
                                                {"lr": 1e-4, "total_steps": "auto"}))
    # or optimizer_cls_and_kwargs=(SoftMuonFactory, {"lr": 0.02})
"""

from __future__ import annotations

try:
    from transformers import TrainerCallback
    from transformers.pytorch_utils import Conv1D
    from transformers.trainer_callback import DefaultFlowCallback
except ImportError as error:  # pragma: no cover - depends on the environment
    from . import missing_framework

    raise missing_framework("hf", "transformers accelerate") from error

from torch import nn

from ..optim import Muon, SoftMuon
from ..optim import muon_param_groups as _muon_param_groups
from ._observe import metrics, unwrap
from ._schedule import fill_total_steps

__all__ = ["MuonFactory", "SoftMuonFactory", "SoftsignCallback", "muon_param_groups"]


class SoftsignCallback(TrainerCallback):
    """A TrainerCallback for softsign's optimizers, through accelerate's wrapper
    (`trainer.optimizer` is an AcceleratedOptimizer; softsign.unwrap sees through it).

    * on_train_begin: every param group whose total_steps is "auto" (an optimizer built
      with total_steps="auto", or by SoftMuonFactory) gets the Trainer's
      `state.max_steps` (optimizer updates, after gradient accumulation). A run resumed from
      a checkpoint keeps the checkpoint's total_steps. Without this callback such an
      optimizer refuses its first step.
    * on_log, at the Trainer's logging steps (`logging_steps`; the logs that hold "loss"):
      per param group i with a schedule, "softsign/phase_i" (0 sign, 1 transition, 2
      final), "softsign/temperature_i" (from the fit on) and "softsign/saturation_i" (the
      fraction of coordinates still sign-like: softsign.integrations.saturation). They are
      read from the device then, never between logging steps.

    The values go into the logs dict that on_log hands on and into `state.log_history`.
    The Trainer calls the callbacks of `report_to` (wandb, tensorboard, ...) before those
    given as `callbacks=`, and they have logged by then; `SoftsignCallback.install(trainer)`
    puts the callback ahead of them.

    Args:
        saturation: log the saturation fraction (a reduction over the buffers; for SoftMuon
            an eigendecomposition per matrix: False leaves it out). Default True.
        threshold: the saturation threshold on |tau * d| (None: where the map is within 1%
            of +-1, softsign.integrations.THRESHOLDS).
        prefix: the start of every key. Default "softsign/".

    Raises:
        TypeError (on_train_begin): the Trainer's optimizer is not a softsign optimizer.
    """

    def __init__(
        self, *, saturation: bool = True, threshold: float | None = None, prefix: str = "softsign/"
    ):
        self.saturation = saturation
        self.threshold = threshold
        self.prefix = prefix

    @classmethod
    def install(cls, trainer, **options) -> SoftsignCallback:
        """Adds a SoftsignCallback to `trainer` ahead of its logging integrations (right
        after the Trainer's DefaultFlowCallback), so that they log its values too; returns
        it."""
        callback = cls(**options)
        callbacks = trainer.callback_handler.callbacks
        at = next((i + 1 for i, c in enumerate(callbacks) if isinstance(c, DefaultFlowCallback)), 0)
        callbacks.insert(at, callback)
        return callback

    def on_train_begin(self, args, state, control, optimizer=None, **kwargs):
        fill_total_steps(unwrap(optimizer), state.max_steps)

    def on_log(self, args, state, control, logs=None, optimizer=None, **kwargs):
        if logs is None or optimizer is None or "loss" not in logs:
            return  # evaluation and the end-of-training summary
        values = metrics(
            optimizer,
            prefix=self.prefix,
            saturation_fraction=self.saturation,
            threshold=self.threshold,
        )
        logs.update(values)
        # Trainer.log appended a copy of the logs to log_history before calling on_log.
        last = state.log_history[-1] if state.log_history else None
        if last is not None and last.get("step") == state.global_step and "loss" in last:
            last.update(values)


def muon_param_groups(model: nn.Module, **muon_options) -> list[dict]:
    """SoftMuon/Muon param groups for a transformers model: softsign.muon_param_groups'
    routing (hidden nn.Linear and conv weights on the matrix path; embeddings, output heads,
    norms, biases on AdamW), and besides

    * the model's input and output embeddings (`get_input_embeddings()`,
      `get_output_embeddings()`: the LM head, tied or not) on AdamW whatever their names;
    * the weights of transformers' Conv1D (GPT-2's attention and MLP layers), stored as
      (in, out), in a use_muon=True group of their own with transposed=True, so that
      Muon's shape-dependent update scale is that of the (out, in) layer they are (the
      update is then the transpose of that layer's).

    Args:
        model: the transformers model (any nn.Module works).
        **muon_options: options of the matrix groups (lr=0.02, soft_map="accurate", ...).

    Returns:
        Up to three group dicts: hidden matrices, Conv1D matrices (use_muon=True), the rest
        (use_muon=False); empty groups are left out.
    """
    groups = _muon_param_groups(model, **muon_options)
    adamw_ids = set()
    for get in ("get_input_embeddings", "get_output_embeddings"):
        module = getattr(model, get, None)
        module = module() if callable(module) else None
        if isinstance(module, nn.Module):
            adamw_ids |= {id(p) for p in module.parameters()}
    conv1d_ids = {id(m.weight) for m in model.modules() if isinstance(m, Conv1D)}
    matrices, conv1d, others = [], [], []
    for group in groups:
        for p in group["params"]:
            if not group["use_muon"] or id(p) in adamw_ids:
                others.append(p)
            elif id(p) in conv1d_ids and p.ndim == 2:
                conv1d.append(p)
            else:
                matrices.append(p)
    out = []
    if matrices:
        out.append(dict(params=matrices, use_muon=True, **muon_options))
    if conv1d:
        out.append(dict(params=conv1d, use_muon=True, transposed=True, **muon_options))
    if others:
        out.append(dict(params=others, use_muon=False))
    return out


class SoftMuonFactory:
    """SoftMuon with `muon_param_groups(model)` through the Trainer's
    `optimizer_cls_and_kwargs=(SoftMuonFactory, {"lr": 0.02, ...})`.

    The Trainer builds an optimizer class from its own two groups (weight decay or not),
    which would send embeddings and the LM head to the matrix path; a class that is not an
    Optimizer is a factory to it, called as `SoftMuonFactory()(model, **kwargs)`, and this
    one routes the model's parameters itself. kwargs are SoftMuon's options; total_steps
    defaults to "auto" (filled by SoftsignCallback from state.max_steps). The Trainer's
    weight_decay and learning_rate arguments do not reach it: set weight_decay and
    adamw_weight_decay here.
    """

    optimizer_class = SoftMuon

    def __call__(self, model, **options):
        cls = self.optimizer_class
        explicit = options.get("sign_steps") is not None and options.get("transition_steps")
        if "total_steps" in cls._table and not explicit:
            options.setdefault("total_steps", "auto")
        return cls(muon_param_groups(model), **options)


class MuonFactory(SoftMuonFactory):
    """Muon with `muon_param_groups(model)`: `optimizer_cls_and_kwargs=(MuonFactory, {...})`."""

    optimizer_class = Muon
