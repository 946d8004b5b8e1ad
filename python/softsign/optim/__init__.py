from ._elementwise import elementwise_pairs
from .soft_muon import Muon, SoftMuon, muon_param_groups
from .soft_signum import Signum, SoftSignum

__all__ = [
    "Muon",
    "Signum",
    "SoftMuon",
    "SoftSignum",
    "elementwise_pairs",
    "muon_param_groups",
]
