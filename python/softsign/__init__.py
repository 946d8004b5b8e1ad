"""softsign: SoftSignum and SoftMuon optimizers with fused CPU and CUDA kernels."""

from . import functional, reference
from ._library import ops
from .optim import Muon, Signum, SoftMuon, SoftSignum, muon_param_groups

__version__ = "0.1.0"

__all__ = [
    "Muon",
    "Signum",
    "SoftMuon",
    "SoftSignum",
    "functional",
    "muon_param_groups",
    "ops",
    "reference",
]
