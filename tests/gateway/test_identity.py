"""Identity: allow-lists, EID resolution, eTLM paired by address and decrypted."""

from __future__ import annotations

import random

import eid
from eid import frames
from gateway.core.identity import (
    PAIRING_WINDOW_S,
    READING_MEMORY_S,
    UPTIME_SLACK_S,
    EidKey,
    Identified,
    Identifier,
    Outcome,
    Telemetry,
    decrypt_paired_etlm,
)
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


def test_pairings_expire_so_rotating_addresses_do_not_grow_the_table() -> None:
    ident = identifier()
    largest = 0
    for second in range(0, 3600, 5):  # a new address every 5 s for an hour
        at = NOW + second
        ident.identify(sighting(eid_frame(at), address=f"C0:00:{second:08X}", at=at))
        largest = max(largest, ident.paired)
    assert largest <= 2 * PAIRING_WINDOW_S / 5 + 1  # what came within two windows, no more
    unknown = frames.encode(frames.UidFrame(-10, bytes(10), bytes(6)))
    ident.identify(sighting(unknown, at=NOW + 3600 + 2 * PAIRING_WINDOW_S + 1))
    assert ident.paired == 0


def _etlm(counter: int, uptime_ds: int, salt: bytes = b"\x12\x34") -> bytes:
    telemetry = bytes.fromhex("0bb8190000000064") + uptime_ds.to_bytes(4, "big")
    return eid.encrypt_etlm(KEY, EXPONENT, counter, salt, telemetry)


def _lucky_forgery(counter: int) -> tuple[bytes, int]:
    """A random eTLM frame whose 16-bit MIC verifies by chance, and its (noise) uptime."""
    rng = random.Random(7)
    for _ in range(1_000_000):
        frame = b"\x20\x01" + rng.randbytes(16)
        parsed = frames.parse(frame)
        assert isinstance(parsed, frames.EtlmFrame)
        reading = decrypt_paired_etlm(KEY, EXPONENT, counter, parsed)
        if reading is not None:
            return frame, reading.uptime_ds
    raise AssertionError("no forgery verified in a million tries")  # noqa: EM101, TRY003


def test_a_forgery_whose_mic_verifies_by_chance_is_caught_by_its_uptime() -> None:
    counter = ((int(NOW) + OFFSET) >> EXPONENT) << EXPONENT
    lucky, uptime = _lucky_forgery(counter)
    assert uptime > 4100 + 10 * UPTIME_SLACK_S  # noise: no beacon here has been up that long
    # Until two of a beacon's frames agreed, a 16-bit MIC is all there is: it goes through,
    # and it does not lock the beacon's own readings out.
    fresh = identifier()
    fresh.identify(sighting(eid_frame()))
    assert isinstance(fresh.identify(sighting(lucky, at=NOW + 1)), Telemetry)
    assert isinstance(fresh.identify(sighting(_etlm(counter, 4020), at=NOW + 2)), Telemetry)
    assert isinstance(
        fresh.identify(sighting(_etlm(counter, 4040, b"\0\1"), at=NOW + 4)), Telemetry
    )
    assert fresh.identify(sighting(lucky, at=NOW + 5)) is None
    # Once two frames agreed, a verified reading must follow them; heard twice, it still does not.
    ident = identifier()
    ident.identify(sighting(eid_frame()))
    assert isinstance(ident.identify(sighting(_etlm(counter, 4000), at=NOW + 1)), Telemetry)
    assert isinstance(
        ident.identify(sighting(_etlm(counter, 4020, b"\0\1"), at=NOW + 3)), Telemetry
    )
    assert ident.identify(sighting(lucky, at=NOW + 4)) is None
    assert ident.identify(sighting(lucky, at=NOW + 4)) is None
    assert ident.counts[Outcome.FORGED] == 2
    # The beacon's own readings go on: uptime advancing, or after a restart.
    later = ident.identify(sighting(_etlm(counter, 4040, b"\0\2"), at=NOW + 5))
    assert isinstance(later, Telemetry)
    assert later.uptime_ds == 4040
    restarted = ident.identify(sighting(_etlm(counter, 15, b"\0\3"), at=NOW + 7))
    assert isinstance(restarted, Telemetry)
    assert ident.counts[Outcome.TELEMETRY] == 4
    assert ident.readings == 1


def test_readings_are_forgotten_after_their_memory() -> None:
    ident = identifier()
    counter = ((int(NOW) + OFFSET) >> EXPONENT) << EXPONENT
    ident.identify(sighting(eid_frame()))
    ident.identify(sighting(_etlm(counter, 4000), at=NOW + 1))
    assert ident.readings == 1
    unknown = frames.encode(frames.UidFrame(-10, bytes(10), bytes(6)))
    ident.identify(sighting(unknown, at=NOW + READING_MEMORY_S + PAIRING_WINDOW_S + 2))
    assert ident.readings == 0
