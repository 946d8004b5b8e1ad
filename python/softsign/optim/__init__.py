from ._elementwise import elementwise_pairs
from .lion import Lion, SoftLion
from .soft_muon import Muon, SoftMuon, muon_param_groups
from .soft_signum import Signum, SoftSignum

__all__ = [
    "Lion",
    "Muon",
    "Signum",
    "SoftLion",
    "SoftMuon",
    "SoftSignum",
    "elementwise_pairs",
    "muon_param_groups",
]
