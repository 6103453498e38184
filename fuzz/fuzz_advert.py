"""Fuzz the radio path: bleak adverts -> BleakSource -> sightings -> pipeline -> events.

Input: a run of records, each a 6-byte header then the Eddystone service data::

    0  frame length n (low 6 bits)
    1  flags: bits 0-1 device address (one of four), bit 2 AD Tx power present, bit 3 another
       service's data too, bit 4 no Eddystone service data (another beacon kind)
    2  RSSI (int8, as the controller reports it)
    3  AD Tx power (int8)
    4  time since the previous advert, in ms (uint16, big-endian)
    6  n bytes of service data

Each record is an ``AdvertisementData`` given to the source's detection callback (what bleak's
BlueZ backend calls), and what the source queues goes through a pipeline built from the example
configuration, to the events the daemon would publish. Contract: nothing raises. Malformed
frames are counted and dropped by the pipeline, never raised.

    .venv/bin/python fuzz/fuzz_advert.py -runs=100000 fuzz/corpus/advert
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Final

from contract import instrumented, main, no_secret_in, total

with instrumented():
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
    from receiver import GATEWAYS, SECRETS, START, receive

    from gateway.sources.base import EDDYSTONE_SERVICE_UUID
    from gateway.sources.bleak_scanner import BleakSource

if TYPE_CHECKING:
    from gateway.core.sighting import Sighting

ADDRESSES: Final = ("C3:1A:22:33:44:55", "C3:1A:22:33:44:56", "E0:00:00:00:00:01", "")
OTHER_SERVICE: Final = "0000fe9f-0000-1000-8000-00805f9b34fb"
HEADER: Final = struct.Struct(">BBbbH")
MAX_ADVERTS: Final = 64


class NoRadio(BaseBleakScanner):
    """A bleak backend that never scans: the harness calls the detection callback itself."""

    def __init__(self, callback: Any, uuids: Any, mode: Any, **_: Any) -> None:  # noqa: ANN401 - bleak's signature
        super().__init__(callback, uuids)
        del mode

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""


class Clock:
    """The time the harness says (the source stamps sightings with it)."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        """The time now."""
        return self.now


def _adverts(data: bytes) -> list[tuple[float, BLEDevice, AdvertisementData]]:
    adverts: list[tuple[float, BLEDevice, AdvertisementData]] = []
    at = START
    offset = 0
    while offset + HEADER.size <= len(data) and len(adverts) < MAX_ADVERTS:
        size, flags, rssi, tx_power, step = HEADER.unpack_from(data, offset)
        offset += HEADER.size
        frame = data[offset : offset + (size & 0x3F)]
        offset += len(frame)
        at += step / 1000
        service_data = {} if flags & 0x10 else {EDDYSTONE_SERVICE_UUID: frame}
        if flags & 0x08:
            service_data[OTHER_SERVICE] = frame[::-1]
        address = ADDRESSES[flags & 0x03]
        advert = AdvertisementData(
            local_name=None,
            manufacturer_data={},
            service_data=service_data,
            service_uuids=list(service_data),
            tx_power=tx_power if flags & 0x04 else None,
            rssi=rssi,
            platform_data=(),
        )
        adverts.append((at, BLEDevice(address, None, {}), advert))
    return adverts


def _heard(data: bytes) -> list[Sighting]:
    clock = Clock()
    source = BleakSource(
        gateway=GATEWAYS[0], backend=NoRadio, clock=clock, monotonic=clock, queue_size=1024
    )
    for at, device, advert in _adverts(data):
        clock.now = at
        source._on_advert(device, advert)  # noqa: SLF001 - bleak's detection callback
    queue = source._queue  # noqa: SLF001 - what sightings() would yield
    heard = []
    while not queue.empty():
        item = queue.get_nowait()
        if item is not None:
            heard.append(item)
    return heard


def check(data: bytes) -> None:
    """One run of adverts through the source and the pipeline."""
    for line in receive(_heard(data)):
        no_secret_in(line, *SECRETS)


if __name__ == "__main__":
    main(total(check, ()), max_len=1024)
