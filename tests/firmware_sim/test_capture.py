"""The JSONL capture format: round trip, every refusal, and bleak's view of an advert."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from hypothesis import given
from hypothesis import strategies as st

from firmware_sim.bleak_output import object_path, to_bleak
from firmware_sim.capture import (
    EDDYSTONE_UUID,
    CapturedAdvert,
    CaptureError,
    CaptureWriter,
    read_capture,
)

ADVERT = CapturedAdvert(
    at=1_767_225_600.125,
    gateway="gw-entrance",
    address="C3:1A:22:33:44:55",
    rssi=-67,
    service_data={EDDYSTONE_UUID: bytes.fromhex("30ee4144413e45fefa58")},
)

adverts = st.builds(
    CapturedAdvert,
    at=st.floats(min_value=0, max_value=4e9, allow_nan=False),
    gateway=st.text(max_size=20),
    address=st.text(alphabet="0123456789ABCDEF:", min_size=17, max_size=17),
    rssi=st.integers(-127, 20),
    service_data=st.dictionaries(st.text(max_size=40), st.binary(max_size=31), max_size=3),
    service_uuids=st.lists(st.text(max_size=40), max_size=3).map(tuple),
    tx_power=st.none() | st.integers(-100, 20),
    local_name=st.none() | st.text(max_size=20),
)


@given(st.lists(adverts, max_size=10), st.dictionaries(st.text(max_size=10), st.integers()))
def test_written_captures_read_back_the_same(
    written: list[CapturedAdvert], meta: dict[str, int]
) -> None:
    stream = io.StringIO()
    writer = CaptureWriter(stream, meta)
    for advert in written:
        writer.write(advert)
    assert writer.count == len(written)
    read_meta, read = read_capture(io.StringIO(stream.getvalue()))
    assert read_meta == meta
    assert list(read) == written


def read_all(lines: list[str]) -> list[CapturedAdvert]:
    _, read = read_capture(lines)
    return list(read)


def header(**fields: object) -> str:
    return json.dumps({"format": "beacon-gateway-capture", "version": 1, **fields})


def line_of(**changes: object) -> str:
    record = ADVERT.to_json()
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v != "<drop>"})


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        ([], 1, "empty capture"),
        (["not json"], 1, "not JSON"),
        (['{"format": "other"}'], 1, "header"),
        ([header(version=2)], 1, "version 2"),
        ([header(meta=[])], 1, "'meta' must be a JSON object"),
        ([header(), "[1]"], 2, "must be a JSON object"),
        ([header(), line_of(extra=1)], 2, "unknown fields extra"),
        ([header(), line_of(t="<drop>")], 2, "'t' is missing"),
        ([header(), line_of(t=-1)], 2, "non-negative"),
        ([header(), line_of(rssi=-67.5)], 2, "'rssi' must be int"),
        ([header(), line_of(rssi=True)], 2, "'rssi' must be int"),
        ([header(), line_of(gateway=3)], 2, "'gateway' must be str"),
        ([header(), line_of(service_data={EDDYSTONE_UUID: "zz"})], 2, "is not hex"),
        ([header(), line_of(service_data={EDDYSTONE_UUID: 5})], 2, "is not hex"),
        ([header(), line_of(service_uuids=[1])], 2, "must be strings"),
        ([header(), line_of(tx_power="x")], 2, "'tx_power' must be an integer"),
        ([header(), line_of(local_name=5)], 2, "'local_name' must be a string"),
        ([header(), "", line_of(), "{"], 4, "not JSON"),
    ],
)
def test_bad_captures_name_the_line(lines: list[str], line: int, message: str) -> None:
    with pytest.raises(CaptureError, match=message) as caught:
        read_all(lines)
    assert caught.value.line == line


@given(st.lists(st.text(max_size=200), max_size=5))
def test_the_reader_raises_only_capture_errors(lines: list[str]) -> None:
    with contextlib.suppress(CaptureError):
        read_all([header(), *lines])


def test_bleak_sees_what_its_bluez_backend_delivers() -> None:
    device, data = to_bleak(ADVERT)
    assert isinstance(device, BLEDevice)
    assert isinstance(data, AdvertisementData)
    assert device.address == "C3:1A:22:33:44:55"
    assert device.name is None
    assert data.service_data == {EDDYSTONE_UUID: bytes.fromhex("30ee4144413e45fefa58")}
    assert data.service_uuids == [EDDYSTONE_UUID]
    assert data.rssi == -67
    assert data.tx_power is None
    assert data.local_name is None
    path, properties = data.platform_data
    assert path == object_path(ADVERT.address) == "/org/bluez/hci0/dev_C3_1A_22_33_44_55"
    assert properties["RSSI"] == -67
    assert device.details["path"] == path
