"""RSSI filters, distance and proximity bands (gateway/core/signal.py)."""

from __future__ import annotations

import math
import random
import statistics

import pytest

from gateway.core.sighting import Sighting
from gateway.core.signal import (
    KalmanRssi,
    MedianRssi,
    Proximity,
    ProximityBands,
    distance_m,
)


def test_sighting_repr_hides_the_frame() -> None:
    sighting = Sighting("C3:1A:22:33:44:55", -60, bytes.fromhex("30ee4144413e45fefa58"), 1.0, "gw")
    assert "4144413e45fefa58" not in repr(sighting)
    assert "<10 bytes>" in repr(sighting)


@pytest.mark.parametrize(
    ("tx", "rssi", "exponent", "expected"),
    [
        (-18, -59, 2.0, 1.0),  # the 41 dB rule: rssi = tx - 41 at 1 m
        (-18, -79, 2.0, 10.0),
        (-18, -89, 3.5, 10 ** (30 / 35)),
        (-12, -53, 2.4, 1.0),
    ],
)
def test_distance_inverts_the_log_distance_model(
    tx: int, rssi: int, exponent: float, expected: float
) -> None:
    assert distance_m(tx, rssi, path_loss_exponent=exponent) == pytest.approx(expected)


def test_distance_calibration_shifts_the_rssi() -> None:
    assert distance_m(-18, -62, calibration_db=3.0) == pytest.approx(1.0)


def noisy(level: float, count: int, seed: int) -> list[tuple[float, float]]:
    """Rayleigh-faded samples (dB) around a level, one a second."""
    rng = random.Random(seed)
    return [
        (float(t), level + 10 * math.log10(max(rng.expovariate(1.0), 1e-12)) + 2.5)
        for t in range(count)
    ]


@pytest.mark.parametrize("make", [KalmanRssi, MedianRssi])
def test_filters_track_a_steady_level_with_less_spread_than_raw(make: type) -> None:
    samples = noisy(-70.0, 400, seed=1)
    rssi_filter = make()
    assert rssi_filter.value is None
    filtered = [rssi_filter.update(rssi, at) for at, rssi in samples][20:]
    raw = [rssi for _, rssi in samples][20:]
    assert statistics.pstdev(filtered) < statistics.pstdev(raw) / 2
    assert statistics.median(filtered) == pytest.approx(-70.0, abs=2.0)


@pytest.mark.parametrize("make", [KalmanRssi, MedianRssi])
def test_filters_follow_a_step_within_seconds(make: type) -> None:
    rssi_filter = make()
    for at in range(30):
        rssi_filter.update(-80.0, float(at))
    for at in range(30, 45):
        value = rssi_filter.update(-60.0, float(at))
    assert value == pytest.approx(-60.0, abs=2.0)


def test_kalman_trusts_a_sample_more_after_a_silence() -> None:
    quick = KalmanRssi()
    for at in range(20):
        quick.update(-80.0, float(at))
    slow = KalmanRssi()
    for at in range(20):
        slow.update(-80.0, float(at))
    after_one_second = quick.update(-60.0, 20.0)
    after_a_minute = slow.update(-60.0, 80.0)
    assert after_a_minute > after_one_second  # moved further towards -60


def test_median_rejects_deep_fades_until_they_persist() -> None:
    rssi_filter = MedianRssi(max_rejects=3)
    for at in range(10):
        rssi_filter.update(-60.0, float(at))
    for at in range(10, 13):
        assert rssi_filter.update(-95.0, float(at)) == -60.0  # a body block or deep fade
    assert rssi_filter.update(-95.0, 13.0) == -95.0  # it persisted: the level dropped


def test_median_window_forgets_old_samples() -> None:
    rssi_filter = MedianRssi(window_s=5.0)
    for at in range(10):
        rssi_filter.update(-80.0, float(at))
    for at in range(10, 20):
        value = rssi_filter.update(-70.0, float(at))
    assert value == -70.0


def test_proximity_bands_with_hysteresis() -> None:
    bands = ProximityBands(immediate_m=0.5, near_m=3.0, hysteresis=0.2)
    assert bands.band(0.3) is Proximity.IMMEDIATE
    assert bands.band(2.0) is Proximity.NEAR
    assert bands.band(7.0) is Proximity.FAR
    # near -> far only past 3.6 m; far -> near only under 2.4 m
    assert bands.band(3.3, Proximity.NEAR) is Proximity.NEAR
    assert bands.band(3.7, Proximity.NEAR) is Proximity.FAR
    assert bands.band(2.7, Proximity.FAR) is Proximity.FAR
    assert bands.band(2.3, Proximity.FAR) is Proximity.NEAR
    assert bands.band(0.55, Proximity.IMMEDIATE) is Proximity.IMMEDIATE
    assert bands.band(0.65, Proximity.IMMEDIATE) is Proximity.NEAR
    assert bands.band(0.45, Proximity.NEAR) is Proximity.NEAR
    assert bands.band(0.35, Proximity.NEAR) is Proximity.IMMEDIATE
    assert bands.band(9.0, Proximity.IMMEDIATE) is Proximity.FAR  # skipped a band
