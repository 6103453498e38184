"""EIDs that left their beacon's window, remembered for a while: replays and late sightings.

A lookup that finds an EID here can tell a replay (the EID is outside its beacon's window now)
from an unknown EID, and can still serve a sighting that arrives a little late (the EID is
inside the window at the sighting's time). Entries are forgotten after ``memory_seconds`` or when
``capacity`` newer ones arrive, oldest first (a ring over the insertion order).
"""

from __future__ import annotations

import numpy as np

from eid.u64map import U64MultiMap


class RetiredEids:
    """A bounded, time-limited multimap of retired ``EID -> (slot, period)`` entries."""

    __slots__ = ("_capacity", "_head", "_keys", "_map", "_memory", "_size", "_times", "_values")

    def __init__(self, capacity: int, memory_seconds: float) -> None:
        self._capacity = capacity
        self._memory = memory_seconds
        self._map = U64MultiMap()
        self._keys = np.zeros(capacity, dtype=np.uint64)
        self._values = np.zeros(capacity, dtype=np.uint64)
        self._times = np.zeros(capacity, dtype=np.int64)
        self._head = 0  # the oldest entry
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def find(self, key: int) -> list[int]:
        """Every retired value under ``key``."""
        return self._map.find(key)

    def retire(self, key: int, value: int, second: int) -> None:
        """Remember ``key -> value``, retired at ``second`` (the oldest goes if full)."""
        if self._capacity == 0:
            return
        if self._size == self._capacity:
            self._evict_oldest()
        position = (self._head + self._size) % self._capacity
        self._keys[position] = key
        self._values[position] = value
        self._times[position] = second
        self._size += 1
        self._map.insert(key, value)

    def expire(self, second: int) -> None:
        """Forget entries retired more than ``memory_seconds`` before ``second``."""
        horizon = second - self._memory
        while self._size and self._times[self._head] < horizon:
            self._evict_oldest()

    def _evict_oldest(self) -> None:
        head = self._head
        self._map.remove(int(self._keys[head]), int(self._values[head]))
        self._head = (head + 1) % self._capacity
        self._size -= 1
