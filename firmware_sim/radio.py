"""The radio between a beacon and a gateway: what RSSI an advert arrives with, if it arrives.

Received power, in dBm::

    rssi = tx_power_at_0m - 41 - 10 * n * log10(d / 1 m) + shadowing(t) + fading - body

- log-distance path loss with exponent ``n`` beyond the first metre, whose 41 dB the Eddystone
  calibration builds in (the Tx power byte is the power at 0 m);
- log-normal shadowing that is correlated in time: a first-order autoregressive process with
  standard deviation ``shadowing_sigma_db`` and time constant ``shadowing_tau_s`` (people and
  carts move slowly through the room);
- Rayleigh fast fading per packet (multipath; ``fading=False`` turns it off);
- ``body_loss_db`` when the carrier's body blocks the line of sight;
- a packet lost with ``loss_probability`` (collisions, CRC errors), or when it arrives below the
  receiver's sensitivity.

The gateway's distance estimate inverts the mean of this model; the simulator adds what makes
real RSSI noisy. Everything random comes from the ``random.Random`` given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import random

FIRST_METRE_LOSS_DB: Final = 41.0
"""Eddystone's calibration advice: the Tx power at 0 m is the power measured at 1 m plus 41 dB."""
MIN_DISTANCE_M: Final = 0.1


@dataclass(frozen=True, slots=True)
class RadioModel:
    """Propagation and receiver parameters (defaults: a furnished indoor hall at 2.4 GHz)."""

    path_loss_exponent: float = 2.2
    shadowing_sigma_db: float = 4.0
    shadowing_tau_s: float = 8.0
    fading: bool = True
    body_loss_db: float = 6.0
    loss_probability: float = 0.05
    sensitivity_dbm: float = -100.0

    def mean_rssi(self, tx_power_0m: float, distance_m: float) -> float:
        """The RSSI without shadowing, fading or body loss: what distance estimation inverts."""
        distance = max(distance_m, MIN_DISTANCE_M)
        return (
            tx_power_0m - FIRST_METRE_LOSS_DB - 10 * self.path_loss_exponent * math.log10(distance)
        )


_DB_PER_NEPER: Final = 10 / math.log(10)  # 10 * log10(x) == _DB_PER_NEPER * ln(x)
_MIN_POWER: Final = 1e-12  # a deep fade, floored so its logarithm stays finite


class Link:
    """The channel from one beacon to one gateway; keeps the shadowing's state over time.

    The per-packet work is a handful of float operations and two random draws (it runs for
    every advert at every gateway of a scene), so the model's constants are prepared here.
    """

    __slots__ = (
        "_at", "_body", "_fading", "_loss", "_path", "_rng", "_sensitivity", "_shadowing",
        "_sigma", "_tau",
    )  # fmt: skip

    def __init__(self, model: RadioModel, rng: random.Random) -> None:
        self._rng = rng
        self._sigma = model.shadowing_sigma_db
        self._tau = model.shadowing_tau_s
        self._path = 10 * model.path_loss_exponent / math.log(10)  # dB per neper of distance
        self._fading = model.fading
        self._body = model.body_loss_db
        self._loss = model.loss_probability
        self._sensitivity = model.sensitivity_dbm
        self._shadowing = rng.gauss(0.0, model.shadowing_sigma_db)
        self._at: float | None = None

    def shadowing(self, at: float) -> float:
        """The shadowing at ``at`` (dB): it moves on from its last value, correlated in time."""
        last = self._at
        if last is None:
            self._at = at
        elif at > last:
            if self._tau > 0:
                rho = math.exp((last - at) / self._tau)
                innovation = self._rng.gauss(0.0, self._sigma)
                self._shadowing = rho * self._shadowing + math.sqrt(1 - rho * rho) * innovation
            self._at = at
        return self._shadowing

    def receive(
        self, at: float, tx_power_0m: float, distance_m: float, *, body_blocked: bool = False
    ) -> int | None:
        """The RSSI (dBm, an integer as controllers report it) of a packet, or None if lost."""
        # The hot path of a scene run: no min/max calls. A lost packet costs one draw: the
        # shadowing then moves on at the next packet, over the longer gap, which an AR(1)
        # process allows without changing its statistics.
        random = self._rng.random
        if random() < self._loss:
            return None
        distance = distance_m if distance_m > MIN_DISTANCE_M else MIN_DISTANCE_M  # noqa: FURB136
        rssi = tx_power_0m - FIRST_METRE_LOSS_DB - self._path * math.log(distance)
        rssi += self.shadowing(at)
        if self._fading:
            # Rayleigh: |h|^2 of a unit-power complex Gaussian channel is exponential.
            power = -math.log(1.0 - random())
            rssi += _DB_PER_NEPER * math.log(power if power > _MIN_POWER else _MIN_POWER)  # noqa: FURB136
        if body_blocked:
            rssi -= self._body
        if rssi < self._sensitivity:
            return None
        return round(rssi)
