"""Pure-PyTorch float64 reference of the softsign math, written from the spec
(shared/spec/ALGORITHMS.md). It depends on torch only; tests, golden values and
benchmarks compare the fused paths against it."""

from .soft_signum import SoftSignumReference
from .temperature import (
    lower_median,
    median_mad,
    resolve_phases,
    saturation_constant,
    temperature_schedule,
)

__all__ = [
    "SoftSignumReference",
    "lower_median",
    "median_mad",
    "resolve_phases",
    "saturation_constant",
    "temperature_schedule",
]
