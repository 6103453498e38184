"""Beacons of one rotation exponent, ordered by the second (mod 2**K) at which their period rolls.

Moving time forward from second ``first`` to ``last`` then finds exactly the beacons whose period
rolled with two binary searches (one range, or two when it wraps around the period).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class PhaseIndex:
    """The beacons of one rotation exponent, sorted by the second (mod 2**K) their period rolls."""

    __slots__ = ("phases", "slots")

    def __init__(self) -> None:
        self.phases: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)
        self.slots: npt.NDArray[np.int32] = np.zeros(0, dtype=np.int32)

    def add(self, phases: npt.NDArray[np.int64], slots: npt.NDArray[np.int64]) -> None:
        """Index more beacon slots with their roll phases."""
        merged_phases = np.concatenate((self.phases, phases.astype(np.int32)))
        merged_slots = np.concatenate((self.slots, slots.astype(np.int32)))
        order = np.argsort(merged_phases, kind="stable")
        self.phases, self.slots = merged_phases[order], merged_slots[order]

    def keep(self, alive: npt.NDArray[np.bool_]) -> None:
        """Drop the slots that ``alive`` (indexed by slot) marks as gone."""
        live = alive[self.slots]
        self.phases, self.slots = self.phases[live], self.slots[live]

    def rolled(self, first: int, last: int, period: int) -> npt.NDArray[np.int32]:
        """Slots whose period rolls at a second whose phase lies in ``first..last`` (cyclic)."""
        low, high = first % period, last % period
        if low <= high:
            start = int(np.searchsorted(self.phases, low, side="left"))
            stop = int(np.searchsorted(self.phases, high, side="right"))
            return self.slots[start:stop]
        head = int(np.searchsorted(self.phases, high, side="right"))
        tail = int(np.searchsorted(self.phases, low, side="left"))
        return np.concatenate((self.slots[tail:], self.slots[:head]))
