"""softsign: SoftSignum, SoftMuon and SoftLion optimizers (and Signum, Muon, Lion) with fused
CPU and CUDA kernels."""

from . import functional, optim, reference
from ._library import ops
from .integrations import temperature, unwrap
from .optim import *  # noqa: F403  (every optimizer: optim/__init__.py lists them once)

__version__ = "0.1.0"

__all__ = [
    *optim.__all__,
    "functional",
    "ops",
    "reference",
    "temperature",
    "unwrap",
]
