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


class Link:
    """The channel from one beacon to one gateway; keeps the shadowing's state over time."""

    __slots__ = ("_at", "_model", "_rng", "_shadowing")

    def __init__(self, model: RadioModel, rng: random.Random) -> None:
        self._model = model
        self._rng = rng
        self._shadowing = rng.gauss(0.0, model.shadowing_sigma_db)
        self._at: float | None = None

    def shadowing(self, at: float) -> float:
        """The shadowing at ``at`` (dB): it moves on from its last value, correlated in time."""
        model = self._model
        if self._at is not None and at > self._at and model.shadowing_tau_s > 0:
            rho = math.exp(-(at - self._at) / model.shadowing_tau_s)
            innovation = self._rng.gauss(0.0, model.shadowing_sigma_db)
            self._shadowing = rho * self._shadowing + math.sqrt(1 - rho * rho) * innovation
        self._at = at if self._at is None else max(self._at, at)
        return self._shadowing

    def receive(
        self, at: float, tx_power_0m: int, distance_m: float, *, body_blocked: bool = False
    ) -> int | None:
        """The RSSI (dBm, an integer as controllers report it) of a packet, or None if lost."""
        model = self._model
        rssi = model.mean_rssi(tx_power_0m, distance_m) + self.shadowing(at)
        if model.fading:
            # Rayleigh: |h|^2 of a unit-power complex Gaussian channel, in dB.
            power = self._rng.expovariate(1.0)
            rssi += 10 * math.log10(max(power, 1e-12))
        if body_blocked:
            rssi -= model.body_loss_db
        if self._rng.random() < model.loss_probability or rssi < model.sensitivity_dbm:
            return None
        return round(rssi)
