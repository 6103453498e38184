"""RSSI smoothing per (beacon, gateway), distance from RSSI, and proximity bands.

Raw RSSI jumps by 10 dB from packet to packet (multipath fading), drifts over seconds (people
and carts shadowing the path) and now and then drops far (the body in the way). Two filters:

- :class:`KalmanRssi`: a one-dimensional Kalman filter with a random-walk model whose process
  noise grows with the time between samples, so a beacon unheard for a while is tracked again
  quickly;
- :class:`MedianRssi`: the median of a time window, with samples far below the running median
  rejected as deep fades (unless they persist, when the signal really dropped).

Time is data: every update takes the sample's time.
"""

from __future__ import annotations

import enum
import statistics
from collections import deque
from dataclasses import dataclass
from typing import Final, Protocol

FIRST_METRE_LOSS_DB: Final = 41.0
"""Eddystone's Tx power is the power at 0 m; the first metre costs 41 dB (spec section 1)."""
DEFAULT_PATH_LOSS_EXPONENT: Final = 2.0
"""Free space; indoor halls measure 1.6 (corridors) to 3 (crowded shelves)."""

KALMAN_PROCESS_NOISE: Final = 1.5
"""dB^2 per second of random-walk variance: a person walking changes RSSI by ~1-2 dB a second."""
KALMAN_MEASUREMENT_NOISE: Final = 30.0
"""dB^2: Rayleigh fading alone spreads packets by ~5.6 dB (variance ~31)."""
MEDIAN_WINDOW_S: Final = 5.0
"""Seconds of samples the median looks at: several adverts at a 1 s interval."""
MEDIAN_OUTLIER_DB: Final = 15.0
"""A sample this far below the median is a deep fade or a body block, not a move."""
MEDIAN_MAX_REJECTS: Final = 3
"""After this many rejections in a row the drop is real: the window restarts from the new level."""


class RssiFilter(Protocol):
    """What the pipeline needs of an RSSI filter."""

    def update(self, rssi: float, at: float) -> float:
        """Add a sample taken at ``at``; return the filtered RSSI."""
        ...

    @property
    def value(self) -> float | None:
        """The filtered RSSI, or None before the first sample."""
        ...


class KalmanRssi:
    """A random-walk Kalman filter on RSSI (dBm)."""

    __slots__ = ("_at", "_estimate", "_measurement_noise", "_process_noise", "_variance")

    def __init__(
        self,
        process_noise: float = KALMAN_PROCESS_NOISE,
        measurement_noise: float = KALMAN_MEASUREMENT_NOISE,
    ) -> None:
        self._process_noise = process_noise
        self._measurement_noise = measurement_noise
        self._estimate: float | None = None
        self._variance = 0.0
        self._at = 0.0

    @property
    def value(self) -> float | None:
        """The filtered RSSI, or None before the first sample."""
        return self._estimate

    def update(self, rssi: float, at: float) -> float:
        """Add a sample; return the new estimate."""
        if self._estimate is None:
            self._estimate, self._variance, self._at = float(rssi), self._measurement_noise, at
            return self._estimate
        elapsed = at - self._at if at > self._at else 0.0
        self._at = max(self._at, at)
        predicted = self._variance + self._process_noise * elapsed
        gain = predicted / (predicted + self._measurement_noise)
        self._estimate += gain * (rssi - self._estimate)
        self._variance = (1 - gain) * predicted
        return self._estimate


class MedianRssi:
    """The median RSSI over a time window, deep fades rejected."""

    __slots__ = ("_max_rejects", "_outlier_db", "_rejects", "_samples", "_value", "_window")

    def __init__(
        self,
        window_s: float = MEDIAN_WINDOW_S,
        outlier_db: float = MEDIAN_OUTLIER_DB,
        max_rejects: int = MEDIAN_MAX_REJECTS,
    ) -> None:
        self._window = window_s
        self._outlier_db = outlier_db
        self._max_rejects = max_rejects
        self._samples: deque[tuple[float, float]] = deque()
        self._rejects: list[tuple[float, float]] = []
        self._value: float | None = None

    @property
    def value(self) -> float | None:
        """The filtered RSSI, or None before the first sample."""
        return self._value

    def update(self, rssi: float, at: float) -> float:
        """Add a sample; return the window's median."""
        samples = self._samples
        while samples and samples[0][0] < at - self._window:
            samples.popleft()
        if self._value is not None and samples and rssi < self._value - self._outlier_db:
            self._rejects.append((at, rssi))
            if len(self._rejects) <= self._max_rejects:
                return self._value
            samples.clear()  # it persisted: the level really dropped
            samples.extend(self._rejects)
        else:
            samples.append((at, float(rssi)))
        self._rejects.clear()
        self._value = statistics.median(value for _, value in samples)
        return self._value


def distance_m(
    tx_power_0m: float,
    rssi: float,
    *,
    path_loss_exponent: float = DEFAULT_PATH_LOSS_EXPONENT,
    calibration_db: float = 0.0,
) -> float:
    """Distance (m) from RSSI by the log-distance model, inverting the beacon's 0 m power.

    ``calibration_db`` adds the gateway's RSSI offset and the beacon's own correction.
    """
    loss = tx_power_0m - FIRST_METRE_LOSS_DB - (rssi + calibration_db)
    return float(10 ** (loss / (10 * path_loss_exponent)))


class Proximity(enum.StrEnum):
    """Proximity bands, nearest first."""

    IMMEDIATE = "immediate"
    NEAR = "near"
    FAR = "far"


@dataclass(frozen=True, slots=True)
class ProximityBands:
    """Band edges (m) and the hysteresis a band change must clear."""

    immediate_m: float = 0.5
    near_m: float = 3.0
    hysteresis: float = 0.2
    """A band changes only once the distance is 20 % past the edge (no flapping at an edge)."""

    def band(self, distance: float, current: Proximity | None = None) -> Proximity:
        """The band for ``distance``, staying in ``current`` until an edge is cleared."""
        fresh = (
            Proximity.IMMEDIATE
            if distance < self.immediate_m
            else Proximity.NEAR
            if distance < self.near_m
            else Proximity.FAR
        )
        if current is None or fresh == current:
            return fresh
        edges = {
            (Proximity.IMMEDIATE, Proximity.NEAR): self.immediate_m,
            (Proximity.NEAR, Proximity.IMMEDIATE): self.immediate_m,
            (Proximity.NEAR, Proximity.FAR): self.near_m,
            (Proximity.FAR, Proximity.NEAR): self.near_m,
        }
        edge = edges.get((current, fresh))
        if edge is None:  # skipped a band: the move is unmistakable
            return fresh
        moving_out = distance > edge
        cleared = (
            distance > edge * (1 + self.hysteresis)
            if moving_out
            else (distance < edge * (1 - self.hysteresis))
        )
        return fresh if cleared else current
