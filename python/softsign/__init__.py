"""softsign: SoftSignum and SoftMuon optimizers with fused CPU and CUDA kernels."""

from . import functional, reference
from ._library import ops
from .optim import Signum, SoftSignum

__version__ = "0.1.0"

__all__ = ["Signum", "SoftSignum", "functional", "ops", "reference"]
