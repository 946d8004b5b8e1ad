"""The float64 reference against closed forms: the Cauchy quantiles, the saturation
constants, the lower median and the phase split."""

import math

import pytest
import torch

from softsign import reference


def cauchy_abs_cdf(q, mu, s):
    return (math.atan((q - mu) / s) - math.atan((-q - mu) / s)) / math.pi


@pytest.mark.parametrize("mu,s", [(0.0, 1e-3), (2e-3, 1e-3), (-5.0, 0.1), (1e-8, 3e-9)])
def test_schedule_solves_the_quantile_equation(mu, s):
    steps = 50
    taus = reference.temperature_schedule(mu, s, steps, newton_iters=30)
    c = reference.saturation_constant("tanh", 1e-4)
    for j, tau in enumerate(taus.tolist()):
        if tau in (1.0, 1e9):
            continue  # clamped: the quantile is outside [c / tmax, c]
        q = c / tau
        assert cauchy_abs_cdf(q, mu, s) == pytest.approx(j / steps, abs=1e-9)
    assert taus[0] == 1e9  # p_0 = 0: q = 0, tau = tmax
    assert all(a >= b for a, b in zip(taus.tolist(), taus.tolist()[1:]))


def test_saturation_constants_match_the_docs():
    assert reference.saturation_constant("tanh", 1e-4) == pytest.approx(4.9517, abs=1e-4)
    assert reference.saturation_constant("algebraic", 1e-4) == pytest.approx(70.705, abs=1e-3)
    assert math.tanh(reference.saturation_constant("tanh", 1e-3)) == pytest.approx(1 - 1e-3)


def test_zero_mad_uses_abs_median():
    taus = reference.temperature_schedule(0.5, 0.0, 4)
    c = reference.saturation_constant("tanh", 1e-4)
    assert taus.tolist() == [c / 0.5] * 4
    assert reference.temperature_schedule(0.0, 0.0, 3).tolist() == [1e9] * 3


def test_lower_median_is_torch_median():
    x = torch.tensor([3.0, 1.0, 2.0, 4.0])
    assert reference.lower_median(x) == 2.0 == x.median()


def test_phases():
    assert reference.resolve_phases(100, 0.9, None, None) == (90, 10)
    assert reference.resolve_phases(None, 0.9, 7, 3) == (7, 3)
    assert reference.resolve_phases(25, 0.5, None, None) == (13, 12)  # 12.5 rounds up
    with pytest.raises(ValueError):
        reference.resolve_phases(None, 0.9, 5, None)
