"""Adverts as bleak delivers them on Linux: ``(BLEDevice, AdvertisementData)``.

The fields are those bleak 3.1's BlueZ backend fills (docs: platform-notes section 2): service
data keyed by the full ``0000feaa-...`` UUID string, the accumulated 16-bit UUID list, the RSSI,
``tx_power`` None (Eddystone carries its Tx power in the frame), no local name, and
``platform_data`` as ``(D-Bus object path, properties)``. This is the simulator's output edge:
the only module of ``firmware_sim`` that imports bleak.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

if TYPE_CHECKING:
    from firmware_sim.capture import CapturedAdvert

DEFAULT_ADAPTER: Final = "hci0"


def object_path(address: str, adapter: str = DEFAULT_ADAPTER) -> str:
    """BlueZ's D-Bus object path of a device (``/org/bluez/hci0/dev_C3_1A_...``)."""
    return f"/org/bluez/{adapter}/dev_{address.upper().replace(':', '_')}"


def to_bleak(
    advert: CapturedAdvert, adapter: str = DEFAULT_ADAPTER
) -> tuple[BLEDevice, AdvertisementData]:
    """The ``(device, advertisement_data)`` pair a bleak detection callback receives."""
    path = object_path(advert.address, adapter)
    properties = {
        "Address": advert.address.upper(),
        "AddressType": "random",
        "Alias": advert.address.upper().replace(":", "-"),
        "Paired": False,
        "Trusted": False,
        "Blocked": False,
        "RSSI": advert.rssi,
        "UUIDs": list(advert.service_uuids),
        "ServiceData": dict(advert.service_data),
        "Adapter": f"/org/bluez/{adapter}",
    }
    device = BLEDevice(
        advert.address.upper(), advert.local_name, {"path": path, "props": properties}
    )
    data = AdvertisementData(
        local_name=advert.local_name,
        manufacturer_data={},
        service_data=dict(advert.service_data),
        service_uuids=list(advert.service_uuids),
        tx_power=advert.tx_power,
        rssi=advert.rssi,
        platform_data=(path, properties),
    )
    return device, data
