"""The examples' shared plumbing (examples/consumer.py) and the subscriber's lines."""

from __future__ import annotations

import argparse

import pytest
from consumer import (
    Deduplicator,
    add_connection_options,
    clock_text,
    event_seconds,
    events_filter,
    parse_event,
    text_field,
    topic_safe,
)
from subscriber import describe

from tests.examples.events import customer, presence, trigger


def test_the_deduplicator_remembers_a_bounded_number_of_recent_ids() -> None:
    dedup = Deduplicator(3)
    assert [dedup.first_time(i) for i in "abca"] == [True, True, True, False]
    assert dedup.first_time("d")  # forgets b, the least recently seen ("a" was just seen)
    assert len(dedup) == 3
    assert not dedup.first_time("a")
    assert dedup.first_time("b")
    with pytest.raises(ValueError, match="at least 1"):
        Deduplicator(0)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[]",
        b'"text"',
        b"{}",
        b'{"event_id": 42}',
        b'{"event_id": ""}',
        b"[" * 100_000,
    ],
)
def test_a_payload_that_is_not_an_event_parses_to_none(payload: bytes) -> None:
    assert parse_event(payload) is None


def test_an_event_parses_with_its_unknown_fields() -> None:
    event = parse_event(bytearray(b'{"event_id": "e-1", "new": {"x": 1}}'))
    assert event == {"event_id": "e-1", "new": {"x": 1}}


def test_event_times() -> None:
    assert event_seconds("2026-01-01T00:00:00Z") == 1_767_225_600
    assert event_seconds("2026-01-01T01:00:00+01:00") == 1_767_225_600
    assert event_seconds("2026-01-01T00:00:00.5") == 1_767_225_600.5  # no zone: UTC
    for bad in ("", "yesterday", None, 1_767_225_600, ["2026-01-01"]):
        assert event_seconds(bad) is None
    assert clock_text(1_767_225_600) == "2026-01-01 00:00:00"
    assert clock_text(1e300) == f"{1e300:.0f}"


def test_small_helpers() -> None:
    assert topic_safe("a/b+c#d e\0") == "a_b_c_d_e_"
    assert events_filter("bg", "+", "trigger") == "bg/v1/+/+/trigger/#"
    assert text_field({"a": "x", "b": "", "c": None, "d": 3}, "a") == "x"
    assert [text_field({"b": "", "c": None, "d": 3}, key) for key in "bcde"] == [None] * 4


def test_connection_options_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_connection_options(parser, client_id="me")
    options = parser.parse_args([])
    assert (options.host, options.port, options.client_id) == ("127.0.0.1", 1883, "me")
    assert (options.topic_prefix, options.site, options.tls_ca) == ("beacon-gateway", "+", None)
    assert options.session_expiry == 86_400


def test_the_subscribers_lines() -> None:
    line = describe("t/trigger/cust-00012", trigger(customer(), at=5))
    assert line.startswith("2026-01-01T00:00:05Z trigger   cust-00012       aisle-2")
    assert line.endswith("rule=aisle-2-offer action=offer  [t/trigger/cust-00012]")
    dwell = describe("t", presence("dwell", "0125000003", "sorting", 90, dwell_s=90.4))
    assert "dwell     0125000003       sorting     " in dwell
    assert "dwell=90s" in dwell
    odd = describe("t", {"event_id": "x", "subject": "nobody", "type": ["?"], "dwell_s": "x"})
    assert odd.split() == ["?", "?", "?", "[t]"]
