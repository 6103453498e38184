"""The radio model: path loss, correlated shadowing, fading, body loss, packet loss, sensitivity.

Statistical checks use fixed seeds (deterministic) and tolerances several standard errors wide.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest

from firmware_sim.radio import FIRST_METRE_LOSS_DB, Link, RadioModel

QUIET = RadioModel(shadowing_sigma_db=0.0, fading=False, loss_probability=0.0)


@pytest.mark.parametrize(("distance", "exponent"), [(1.0, 2.0), (10.0, 2.0), (4.0, 3.0)])
def test_mean_rssi_is_log_distance_from_the_0m_power(distance: float, exponent: float) -> None:
    model = RadioModel(path_loss_exponent=exponent)
    expected = -18 - FIRST_METRE_LOSS_DB - 10 * exponent * math.log10(distance)
    assert model.mean_rssi(-18, distance) == pytest.approx(expected)
    assert model.mean_rssi(-18, 0.0) == model.mean_rssi(-18, 0.1)  # no infinity at 0 m


def test_without_noise_the_rssi_is_the_mean() -> None:
    link = Link(QUIET, random.Random(1))
    assert link.receive(0.0, -18, 10.0) == round(QUIET.mean_rssi(-18, 10.0))
    assert link.receive(1.0, -18, 10.0, body_blocked=True) == round(QUIET.mean_rssi(-18, 10.0) - 6)


def test_shadowing_is_log_normal_and_correlated_in_time() -> None:
    model = RadioModel(shadowing_sigma_db=4.0, shadowing_tau_s=8.0, fading=False)
    samples = [Link(model, random.Random(seed)).shadowing(0.0) for seed in range(4000)]
    assert statistics.fmean(samples) == pytest.approx(0.0, abs=0.3)
    assert statistics.pstdev(samples) == pytest.approx(4.0, abs=0.3)
    link = Link(model, random.Random(9))
    series = [link.shadowing(step * 0.1) for step in range(20_000)]
    lag_1s = statistics.correlation(series[:-10], series[10:])
    lag_30s = statistics.correlation(series[:-300], series[300:])
    assert lag_1s == pytest.approx(math.exp(-1 / 8), abs=0.05)
    assert abs(lag_30s) < 0.2


def test_fading_spreads_packets_and_losses_happen_at_the_rate() -> None:
    model = RadioModel(shadowing_sigma_db=0.0, loss_probability=0.1, sensitivity_dbm=-200)
    link = Link(model, random.Random(2))
    received = [link.receive(step * 0.1, -18, 5.0) for step in range(20_000)]
    lost = sum(value is None for value in received) / len(received)
    assert lost == pytest.approx(0.1, abs=0.01)
    values = [value for value in received if value is not None]
    # Rayleigh power in dB: mean -2.5 dB, standard deviation 5.6 dB
    assert statistics.fmean(values) == pytest.approx(model.mean_rssi(-18, 5.0) - 2.5, abs=0.3)
    assert statistics.pstdev(values) == pytest.approx(5.6, abs=0.4)


def test_packets_below_the_sensitivity_are_lost() -> None:
    model = RadioModel(
        shadowing_sigma_db=0.0, fading=False, loss_probability=0.0, sensitivity_dbm=-90
    )
    link = Link(model, random.Random(3))
    assert link.receive(0.0, -18, 2.0) is not None
    assert link.receive(1.0, -18, 300.0) is None


def test_same_seed_same_channel() -> None:
    first = [Link(RadioModel(), random.Random(4)).receive(t, -18, 7.0) for t in range(50)]
    again = [Link(RadioModel(), random.Random(4)).receive(t, -18, 7.0) for t in range(50)]
    assert first == again
