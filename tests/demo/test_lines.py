"""The demo's event lines: readable, total over any payload, and safe on a terminal."""

from __future__ import annotations

import json
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from gateway.demo.lines import (
    MAX_FIELD,
    clean,
    event_line,
    parse,
    status_line,
    unreadable_line,
)

CUSTOMER = {"kind": "customer", "id": "cust-0042", "beacon": "shopper-00012", "alias": "Ana B."}
BASE = {
    "event_id": "7e3c2a2c-556f-5705-aea7-935b9d50a641",
    "event_time": "2026-01-01T00:01:05.069885Z",
    "gateway_time": "2026-01-01T00:01:07.082713Z",
    "site": "store",
    "gateway_id": "store-sim",
}
UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def event(**fields: object) -> dict[str, object]:
    return {**BASE, "subject": CUSTOMER, **fields}


def test_enter_line_shows_time_type_subject_zone_and_proximity() -> None:
    line = event_line(event(type="enter", zone="aisle-2", proximity="near", distance_m=1.93))
    assert line.startswith("00:01:05  enter ")
    assert "customer Ana B." in line
    assert "aisle-2" in line
    assert line.endswith("near 1.9 m")


def test_each_type_has_its_details() -> None:
    dwell = event_line(event(type="dwell", zone="checkout", dwell_s=181.2, threshold_s=180))
    assert dwell.endswith("181 s so far")
    exit_line = event_line(event(type="exit", zone="aisle-1", dwell_s=26, exit_reason="moved"))
    assert exit_line.endswith("after 26 s (moved)")
    trigger = event_line(
        event(type="trigger", zone="aisle-2", rule="aisle-2-offer", action="offer", cause="dwell")
    )
    assert trigger.endswith("OFFER  rule aisle-2-offer (on dwell)")
    telemetry = event_line(event(type="telemetry", battery_mv=3000, temperature_c=22.41796875))
    assert telemetry.endswith("battery 3000 mV, 22.4 degC")


def test_segment_bags_and_unknown_subjects() -> None:
    gold = event_line(event(type="enter", zone="z", subject={**CUSTOMER, "segment": "gold"}))
    assert "customer Ana B. (gold)" in gold
    bag = {"kind": "bag", "tag": "0125000015", "flight": "LH400", "destination": "JFK"}
    assert "bag 0125000015 LH400->JFK" in event_line(event(type="enter", zone="z", subject=bag))
    unknown = {"kind": "unknown", "beacon": "b-7"}
    assert "unknown b-7" in event_line(event(type="enter", zone="z", subject=unknown))
    anonymous = {"kind": "customer"}
    assert "customer (anonymous)" in event_line(event(type="enter", zone="z", subject=anonymous))


def test_missing_or_mistyped_fields_print_as_question_marks() -> None:
    line = event_line(
        {"type": "exit", "event_time": 17, "subject": "nobody", "dwell_s": "long", "zone": [1]}
    )
    assert line.startswith("??:??:??  exit ")
    assert "after ?" in line
    assert event_line({}).startswith("??:??:??  ?")
    nan = event_line(event(type="telemetry", battery_mv=float("nan"), temperature_c=True))
    assert nan.endswith("battery ?")


def test_escape_sequences_and_controls_in_payload_text_never_reach_the_terminal() -> None:
    hostile = "\x1b[2J\x1b]0;pwned\x07Eve\x1b[31m\u202e\u200bgnp.exe\r\nrm -rf\x00\x9b1m\x7f"
    subject = {"kind": "customer", "alias": hostile, "segment": "\x1bP1;2q\x1b\\gold"}
    line = event_line(
        event(type="trigger", zone=hostile, rule=hostile, action=hostile, cause=hostile),
        colour=False,
    )
    line += event_line(event(type="enter", zone="z", subject=subject))
    assert "\x1b" not in line
    assert "\x9b" not in line
    assert not any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in line)
    assert "pwned" not in line  # an OSC title is removed whole, not shown as text
    assert "Eve" in line


def test_colour_only_when_asked_and_only_ours() -> None:
    payload = event(type="enter", zone="z", subject={**CUSTOMER, "alias": "\x1b[5mX"})
    plain = event_line(payload)
    coloured = event_line(payload, colour=True)
    assert "\x1b" not in plain
    assert coloured.count("\x1b[") == 2  # our colour on, our reset
    assert "\x1b[32m" in coloured


def test_long_values_are_cut() -> None:
    line = event_line(event(type="enter", zone="z" * 500))
    assert "z" * MAX_FIELD not in line
    assert "z" * (MAX_FIELD - 3) + "..." in line


def test_status_and_unreadable_lines() -> None:
    topic = "beacon-gateway/v1/store/store-sim/status"
    assert status_line(topic, b'{"status": "online"}').endswith("gateway store-sim is online")
    assert status_line(topic, b"\xff").endswith("is ?")
    line = unreadable_line("beacon-gateway/v1/\x1b[2Jx", b"\x00\x01")
    assert "2 bytes" in line
    assert "\x1b" not in line


def test_parse_takes_json_objects_only() -> None:
    assert parse(json.dumps(event(type="enter")).encode()) is not None
    for payload in (b"", b"[]", b"42", b"\xff\xfe", b"{", b"[" * 100_000):
        assert parse(payload) is None


@given(st.text(), st.integers(min_value=4, max_value=80))
def test_clean_is_safe_and_bounded_for_any_text(text: str, limit: int) -> None:
    shown = clean(text, limit)
    assert len(shown) <= limit
    assert not any(unicodedata.category(ch) in UNSAFE_CATEGORIES for ch in shown)
    assert "\x1b" not in shown


@given(st.recursive(st.none() | st.booleans() | st.floats() | st.text(), st.lists))
def test_event_line_is_total(value: object) -> None:
    for payload in (
        {"type": "enter", "subject": value, "zone": value, "distance_m": value},
        {"type": value, "event_time": value},
        {"type": "telemetry", "battery_mv": value, "temperature_c": value},
    ):
        assert isinstance(event_line(payload), str)
