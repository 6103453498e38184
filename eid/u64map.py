"""A compact multimap from 64-bit keys to 64-bit values: open addressing on numpy arrays.

The resolver's EID table holds millions of entries; a dict would spend ~150 bytes an entry on
Python objects. Here an entry is 16 bytes in two numpy arrays, probed linearly through
memoryviews (a Python int per access, no numpy scalar boxing). Keys may repeat (two beacons can
share an EID); a lookup returns every value stored under the key. Deletion shifts the rest of the
probe run back, so there are no tombstones and probe runs stay short. Bulk insertion is
vectorised. Keys are expected to be uniformly distributed (EIDs are AES output; ids are hashed):
the home slot is the key's low bits.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

EMPTY: Final = (1 << 64) - 1
"""The value that marks a free slot; never stored as a value."""
_MIN_CAPACITY: Final = 1 << 4
_MAX_LOAD: Final = 0.75
"""Grow past this load: linear probing then needs about 2.5 probes a hit and 8.5 a miss."""

U64Array = npt.NDArray[np.uint64]


def int_view(array: npt.NDArray[Any], item_format: Literal["Q", "q", "I", "b"]) -> memoryview[int]:
    """A memoryview of a 1-D integer array whose items read and write as Python ints.

    Indexing it costs about half a numpy scalar access and boxes no numpy objects.
    """
    return array.data.cast("B").cast(item_format)


def float_view(array: npt.NDArray[np.float64]) -> memoryview[float]:
    """A memoryview of a 1-D float64 array (items are Python floats)."""
    return array.data.cast("B").cast("d")


def bool_view(array: npt.NDArray[np.bool_]) -> memoryview[bool]:
    """A memoryview of a 1-D bool array (items are Python bools)."""
    return array.data.cast("B").cast("?")


class U64MultiMap:
    """Open-addressing multimap ``uint64 -> uint64`` (values must not be :data:`EMPTY`)."""

    __slots__ = ("_keys", "_kv", "_mask", "_size", "_vals", "_vv")

    def __init__(self, expected: int = 0) -> None:
        capacity = _MIN_CAPACITY
        while capacity * _MAX_LOAD < expected:
            capacity <<= 1
        self._allocate(capacity)
        self._size = 0

    def _allocate(self, capacity: int) -> None:
        self._keys: U64Array = np.zeros(capacity, dtype=np.uint64)
        self._vals: U64Array = np.full(capacity, EMPTY, dtype=np.uint64)
        self._kv = int_view(self._keys, "Q")
        self._vv = int_view(self._vals, "Q")
        self._mask = capacity - 1

    def __len__(self) -> int:
        return self._size

    @property
    def capacity(self) -> int:
        """Slots allocated (a power of two)."""
        return self._mask + 1

    @property
    def nbytes(self) -> int:
        """Bytes held by the table's arrays."""
        return int(self._keys.nbytes + self._vals.nbytes)

    def find(self, key: int) -> list[int]:
        """Every value stored under ``key`` (empty if none)."""
        kv, vv, mask = self._kv, self._vv, self._mask
        found: list[int] = []
        index = key & mask
        while True:
            value = vv[index]
            if value == EMPTY:
                return found
            if kv[index] == key:
                found.append(value)
            index = (index + 1) & mask

    def find_unique(self, key: int) -> int:
        """The value under ``key`` if there is exactly one, else :data:`EMPTY` (none or several)."""
        kv, vv, mask = self._kv, self._vv, self._mask
        found = EMPTY
        index = key & mask
        while True:
            value = vv[index]
            if value == EMPTY:
                return found
            if kv[index] == key:
                if found != EMPTY:
                    return EMPTY
                found = value
            index = (index + 1) & mask

    def insert(self, key: int, value: int) -> None:
        """Add ``key -> value`` (duplicates allowed)."""
        if (self._size + 1) > self.capacity * _MAX_LOAD:
            self._grow(self._size + 1)
        kv, vv, mask = self._kv, self._vv, self._mask
        index = key & mask
        while vv[index] != EMPTY:
            index = (index + 1) & mask
        kv[index] = key
        vv[index] = value
        self._size += 1

    def remove(self, key: int, value: int) -> bool:
        """Remove one ``key -> value`` pair; return whether it was there."""
        kv, vv, mask = self._kv, self._vv, self._mask
        index = key & mask
        while True:
            stored = vv[index]
            if stored == EMPTY:
                return False
            if stored == value and kv[index] == key:
                break
            index = (index + 1) & mask
        # Backward-shift deletion: pull later entries of the run into the hole when their home
        # slot does not lie cyclically in (hole, current].
        hole = index
        probe = index
        while True:
            probe = (probe + 1) & mask
            stored = vv[probe]
            if stored == EMPTY:
                break
            home = kv[probe] & mask
            if (hole <= probe and not hole < home <= probe) or (
                hole > probe and probe < home <= hole
            ):
                kv[hole] = kv[probe]
                vv[hole] = stored
                hole = probe
        vv[hole] = EMPTY
        self._size -= 1
        return True

    def reserve(self, count: int) -> None:
        """Make room for ``count`` entries in all, so that inserting them never regrows."""
        if count > self.capacity * _MAX_LOAD:
            self._grow(count)

    def insert_many(self, keys: U64Array, values: U64Array) -> None:
        """Add many pairs at once (vectorised: rounds of "claim a free slot or probe on")."""
        count = len(keys)
        if count == 0:
            return
        if self._size + count > self.capacity * _MAX_LOAD:
            self._grow(self._size + count)
        self._place(keys.astype(np.uint64, copy=False), values.astype(np.uint64, copy=False))
        self._size += count

    def _place(self, keys: U64Array, values: U64Array) -> None:
        mask = np.uint64(self._mask)
        slots = keys & mask
        while len(keys):
            free = np.flatnonzero(self._vals[slots] == EMPTY)
            # One winner per free slot; the rest (slot taken, or a lost tie) probe the next slot.
            taken, first = np.unique(slots[free], return_index=True)
            winners = free[first]
            self._keys[taken] = keys[winners]
            self._vals[taken] = values[winners]
            losers = np.ones(len(keys), dtype=bool)
            losers[winners] = False
            keys, values = keys[losers], values[losers]
            slots = (slots[losers] + np.uint64(1)) & mask

    def items(self) -> tuple[U64Array, U64Array]:
        """Copies of every stored key and value."""
        used = self._vals != EMPTY
        return self._keys[used].copy(), self._vals[used].copy()

    def _grow(self, needed: int) -> None:
        keys, values = self.items()
        capacity = self.capacity
        while capacity * _MAX_LOAD < needed:
            capacity <<= 1
        self._allocate(capacity)
        self._place(keys, values)
