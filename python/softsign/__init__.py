"""softsign: SoftSignum, SoftMuon and SoftLion optimizers (and Signum, Muon, Lion) with fused
CPU and CUDA kernels."""

from . import functional, reference
from ._library import ops
from .integrations import temperature, unwrap
from .optim import Lion, Muon, Signum, SoftLion, SoftMuon, SoftSignum, muon_param_groups

__version__ = "0.1.0"

__all__ = [
    "Lion",
    "Muon",
    "Signum",
    "SoftLion",
    "SoftMuon",
    "SoftSignum",
    "functional",
    "muon_param_groups",
    "ops",
    "reference",
    "temperature",
    "unwrap",
]
