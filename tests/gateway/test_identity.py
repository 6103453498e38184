"""Identity: allow-lists, EID resolution, eTLM paired by address and decrypted."""

from __future__ import annotations

import eid
from eid import frames
from gateway.core.identity import EidKey, Identified, Identifier, Outcome, Telemetry
from gateway.core.sighting import Sighting

KEY = bytes(range(16))
EXPONENT = 10
NOW = 1_767_225_600.0
OFFSET = -1_767_000_000  # beacon counter = unix time + offset


def sighting(data: bytes, address: str = "C0:00:00:00:00:01", at: float = NOW) -> Sighting:
    return Sighting(address=address, rssi=-60, service_data=data, at=at, gateway="gw")


def identifier() -> Identifier:
    resolver = eid.Resolver()
    resolver.register("bag-1", KEY, EXPONENT, OFFSET)
    return Identifier(
        resolver=resolver,
        eid_keys={"bag-1": EidKey(KEY, EXPONENT)},
        uid_beacons={bytes(10) + bytes.fromhex("0102030405ff"): "shelf-1"},
        url_beacons={"https://example.com": "poster-1"},
    )


def eid_frame(at: float = NOW) -> bytes:
    counter = int(at) + OFFSET
    period = (counter >> EXPONENT) << EXPONENT
    return frames.encode(frames.EidFrame(-12, eid.compute_eid(KEY, EXPONENT, period)))


def test_allow_listed_uid_and_url_beacons_are_identified_others_dropped() -> None:
    ident = identifier()
    uid = frames.encode(frames.UidFrame(-10, bytes(10), bytes.fromhex("0102030405ff")))
    assert ident.identify(sighting(uid)) == Identified("shelf-1", -10, "uid")
    url = frames.encode(frames.UrlFrame(-10, "https://example.com"))
    assert ident.identify(sighting(url)) == Identified("poster-1", -10, "url")
    other = frames.encode(frames.UidFrame(-10, bytes(10), bytes(6)))
    assert ident.identify(sighting(other)) is None
    assert ident.counts[Outcome.UNKNOWN] == 1


def test_eid_resolves_and_its_etlm_is_decrypted_by_address() -> None:
    ident = identifier()
    found = ident.identify(sighting(eid_frame()))
    assert isinstance(found, Identified)
    assert found.beacon_id == "bag-1"
    assert "eid=" not in repr(found)  # the raw EID stays out of reprs
    counter = ((int(NOW) + OFFSET) >> EXPONENT) << EXPONENT
    telemetry = bytes.fromhex("0bb819000000006400000fa0")  # 3000 mV, 25 C, 100, 400 s
    frame = eid.encrypt_etlm(KEY, EXPONENT, counter, b"\x12\x34", telemetry)
    reading = ident.identify(sighting(frame, at=NOW + 2))
    assert isinstance(reading, Telemetry)
    assert (reading.beacon_id, reading.battery_mv, reading.temperature_c) == ("bag-1", 3000, 25.0)
    assert reading.encrypted
    # From another address it is not paired; tampered, it does not verify.
    assert ident.identify(sighting(frame, address="C0:00:00:00:00:02")) is None
    assert ident.counts[Outcome.UNPAIRED] == 1
    forged = frame[:-1] + bytes([frame[-1] ^ 1])
    assert ident.identify(sighting(forged, at=NOW + 3)) is None
    assert ident.counts[Outcome.FORGED] == 1


def test_unknown_eids_and_malformed_frames_are_counted_and_dropped() -> None:
    ident = identifier()
    unknown = frames.encode(frames.EidFrame(-12, bytes(8)))
    assert ident.identify(sighting(unknown)) is None
    assert ident.identify(sighting(b"\x30\x00")) is None
    assert ident.counts == {Outcome.UNKNOWN: 1, Outcome.MALFORMED: 1}


def test_pairing_table_is_bounded() -> None:
    resolver = eid.Resolver()
    resolver.register("bag-1", KEY, EXPONENT, OFFSET)
    ident = Identifier(resolver=resolver, max_paired=3)
    for index in range(10):
        ident.identify(sighting(eid_frame(), address=f"C0:00:00:00:00:{index:02X}"))
    assert len(ident._paired) <= 3
    tlm = frames.encode(frames.TlmFrame(3000, 20.0, 5, 50))
    reading = ident.identify(sighting(tlm, address="C0:00:00:00:00:09"))
    assert isinstance(reading, Telemetry)
    assert (reading.beacon_id, reading.tx_power) == ("bag-1", -12)
