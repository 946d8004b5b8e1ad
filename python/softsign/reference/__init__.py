"""Pure-PyTorch float64 reference of the softsign math, written from docs/algorithms.md.
It depends on torch only; tests, golden values and benchmarks compare the fused paths
against it."""

from .soft_muon import MuonReference, SoftMuonReference
from .soft_signum import (
    LionReference,
    SignumReference,
    SoftLionReference,
    SoftSignumReference,
)
from .spectral import (
    matrix_view,
    muon_scale,
    newton_schulz5,
    phi_tau,
    polar,
    soft_newton_schulz,
    soft_singular_values,
    statistic_view,
)
from .temperature import (
    GroupSchedule,
    lower_median,
    median_mad,
    resolve_phases,
    saturation_constant,
    temperature_at,
    temperature_schedule,
)

__all__ = [
    "GroupSchedule",
    "LionReference",
    "MuonReference",
    "SignumReference",
    "SoftLionReference",
    "SoftMuonReference",
    "SoftSignumReference",
    "lower_median",
    "matrix_view",
    "median_mad",
    "muon_scale",
    "newton_schulz5",
    "phi_tau",
    "polar",
    "resolve_phases",
    "saturation_constant",
    "soft_newton_schulz",
    "soft_singular_values",
    "statistic_view",
    "temperature_at",
    "temperature_schedule",
]
