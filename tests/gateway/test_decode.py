"""The decode job: line grammar, frame descriptions, EID resolution and eTLM decryption.

Expected values are the spec's vectors (eddystone-spec.md sections 2-6 and 9).
"""

from __future__ import annotations

import pytest

from eid import compute_eid
from gateway.decode import Decoder, InputError, parse_hex, parse_time
from gateway.registry import KeyRegistry

T0 = 1767225600.0  # 2026-01-01T00:00:00Z
# Section 6.1 [3P]: IK 0102..16, K=10, t=2000 -> EID 4144413e45fefa58.
RADIUS_KEY = "0102030405060708090a111213141516"
RADIUS_EID = "4144413e45fefa58"
# Section 9 [CALC]: IK 5894..e8, nonce time 0x00010000, salt f683 -> this eTLM frame.
NORDIC_KEY = "589417b0324b1b71d7a6751852867ae8"
NORDIC_ETLM = "2001d5d89979ae79ebee4e385fa5f6830efb"


def registry() -> KeyRegistry:
    return KeyRegistry.from_document(
        {
            "version": 1,
            "beacons": [
                {
                    "id": "radius",
                    "identity_key": RADIUS_KEY,
                    "rotation_exponent": 10,
                    "clock_offset": 2000 - int(T0),
                },
                {
                    "id": "nordic",
                    "identity_key": NORDIC_KEY,
                    "rotation_exponent": 0,
                    "clock_offset": 0x10000 - int(T0),
                },
            ],
        }
    )


def decode(*lines: str, with_registry: bool = True) -> list[str]:
    decoder = Decoder(registry() if with_registry else None, T0)
    out = []
    for number, line in enumerate(lines, start=1):
        decoded = decoder.decode_line(number, line)
        if decoded is not None:
            out.append(decoded.text if decoded.ok else f"!{decoded.text}")
    return out


def test_uid_url_and_tlm_are_described() -> None:
    assert decode(
        "00e7 8b0ca750095477cb3e77 000000000001 0000",
        "10ee01676f6f676c6500",
        "20000bb81780000003e800008ca0",
        "2000 0000 8000 00000000 00000000",
    ) == [
        "UID   tx -25 dBm  namespace 8b0ca750095477cb3e77  instance 000000000001",
        "URL   tx -18 dBm  https://www.google.com/",
        "TLM   battery 3000 mV  temperature 23.50 degC  adv_count 1000  uptime 3600.0 s",
        "TLM   no battery reading  no temperature sensor  adv_count 0  uptime 0.0 s",
    ]


def test_spec_eid_resolves_to_its_beacon() -> None:
    assert decode(f"30f0{RADIUS_EID}") == [
        "EID   tx -16 dBm  -> beacon radius (rotation period offset +0)"
    ]


def test_raw_eid_is_not_printed() -> None:
    assert not any(RADIUS_EID in line for line in decode(f"30f0{RADIUS_EID}"))


def test_eid_an_hour_later_is_not_resolved() -> None:
    assert decode(f"@{T0 + 3600} 30f0{RADIUS_EID}") == [
        "EID   tx -16 dBm  -> unresolved: no registered beacon shows this EID at this time"
    ]


def test_bare_time_line_sets_the_time_of_later_lines() -> None:
    lines = decode("@2026-01-01T01:00:00Z", f"30f0{RADIUS_EID}", "@2026-01-01T00:00:00+00:00")
    assert lines == [
        "EID   tx -16 dBm  -> unresolved: no registered beacon shows this EID at this time"
    ]


def test_without_registry_eids_are_not_resolved() -> None:
    assert decode(f"30f0{RADIUS_EID}", with_registry=False) == [
        "EID   tx -16 dBm  -> not resolved (no key registry given)"
    ]


def test_etlm_is_decrypted_with_the_preceding_eid_beacon() -> None:
    # The spec has no EID for this key; the EID is only input here (it pairs the eTLM with the
    # beacon), the checked values are the spec's decrypted telemetry.
    eid_hex = compute_eid(bytes.fromhex(NORDIC_KEY), 0, 0x10000).hex()
    assert decode(f"30f0{eid_hex}", NORDIC_ETLM)[1] == (
        "eTLM  encrypted telemetry  -> beacon nordic: no battery reading  "
        "temperature 28.25 degC  adv_count 72  uptime 11.5 s"
    )


def test_etlm_of_another_beacon_does_not_verify() -> None:
    lines = decode(f"30f0{RADIUS_EID}", NORDIC_ETLM)
    assert lines[1] == (
        "eTLM  encrypted telemetry  -> MIC does not verify for beacon radius "
        "(forged, corrupt or not its frame)"
    )


def test_etlm_without_a_resolved_eid() -> None:
    assert decode(NORDIC_ETLM) == [
        "eTLM  encrypted telemetry  -> not decrypted (no resolved EID from this beacon before it)"
    ]


@pytest.mark.parametrize(
    "line",
    [
        f"aafe 30f0{RADIUS_EID}",
        f"02 01 06 03 03 aa fe 0d 16 aa fe 30 f0 {RADIUS_EID}",
        f"0x30f0{RADIUS_EID}",
        f"30:f0:{RADIUS_EID[:8]}-{RADIUS_EID[8:]}",
        f"  30f0{RADIUS_EID}   # trailing comment",
    ],
)
def test_input_forms_are_accepted(line: str) -> None:
    assert decode(line) == ["EID   tx -16 dBm  -> beacon radius (rotation period offset +0)"]


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "@1767225600"])
def test_lines_without_a_frame_give_nothing(line: str) -> None:
    assert decode(line) == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("00e78b0ca750095477cb3e7700000000000100", "UID frame must be 20 bytes"),
        ("31f04144413e45fefa58", "reserved low bits"),
        ("4000", "frame type 0x40 is not an Eddystone frame"),
        ("0201060303aafe", "no Eddystone service data"),
        ("zz", "not hexadecimal"),
        ("abc", "not hexadecimal"),
        ("@yesterday 30f0", "neither unix seconds nor ISO 8601"),
        ("@2026-01-01T00:00:00 30f0", "has no UTC offset"),
        ("@-5 30f0", "non-negative unix seconds"),
        ("@nan 30f0", "non-negative unix seconds"),
        ("@1969-12-31T23:59:59Z 30f0", "must not be before 1970"),
    ],
)
def test_bad_lines_are_explained(line: str, message: str) -> None:
    [text] = decode(line)
    assert text.startswith("!error: ")
    assert message in text


def test_parse_time_forms() -> None:
    assert parse_time("1767225600") == T0
    assert parse_time("2026-01-01T00:00:00Z") == T0
    assert parse_time("2026-01-01T01:00:00+01:00") == T0
    with pytest.raises(InputError):
        parse_time("inf")


def test_parse_hex_forms() -> None:
    assert parse_hex("0X30 f0") == b"\x30\xf0"
    with pytest.raises(InputError):
        parse_hex("3")
