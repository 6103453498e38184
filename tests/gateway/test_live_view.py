"""The operators' live view: LiveState, the daemon feeding it, and its HTTP routes."""

from __future__ import annotations

import asyncio
import json
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

import pytest

from gateway.core.identity import Telemetry
from gateway.core.presence import ChangeKind, ExitReason, PresenceChange
from gateway.core.signal import Proximity
from gateway.core.subjects import Subject, SubjectDirectory
from gateway.core.triggers import TriggerFired
from gateway.daemon import Daemon
from gateway.delivery.outbox_async import OutboxHealth
from gateway.events import EventBuilder
from gateway.ops.http import CONTENT_SECURITY_POLICY, PAGE_FILES, OpsServer
from gateway.ops.live import LiveState, iso_time
from gateway.topics import Topics

if TYPE_CHECKING:
    from gateway.core.pipeline import Output
    from gateway.delivery.message import Message

ZONES = ("entrance", "aisle-1", "checkout")
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
RAW_EID = bytes.fromhex("0badc0ffee15600d")
SUBJECTS = SubjectDirectory(
    [
        Subject(
            "cust-1",
            "customer",
            "beacon-ann",
            {"alias": "Ann", "segment": "gold"},
        ),
        Subject("cust-2", "customer", "beacon-bob", {"alias": "Bob"}, consent=False),
        Subject("bag-1", "bag", "beacon-bag", {"tag": "0123456789", "flight": "LH123"}),
    ]
)


def _builder(fields: frozenset[str] = frozenset({"id", "alias", "tag"})) -> EventBuilder:
    return EventBuilder(
        site="store-1",
        gateway_id="gw-1",
        subjects=SUBJECTS,
        subject_fields=fields,
        raw_eid=lambda _beacon: RAW_EID,  # publish.raw_eids on: events carry it
    )


def _change(
    kind: ChangeKind,
    beacon: str,
    zone: str,
    at: float,
    *,
    dwell_s: float = 0.0,
    exit_reason: ExitReason | None = None,
) -> PresenceChange:
    return PresenceChange(
        kind=kind,
        beacon_id=beacon,
        zone=zone,
        at=T0 + at,
        decided_at=T0 + at,
        dwell_s=dwell_s,
        gateway="gw-a",
        rssi=-60.0,
        distance_m=1.5,
        proximity=Proximity.NEAR,
        exit_reason=exit_reason,
    )


def _enter(beacon: str, zone: str, at: float) -> PresenceChange:
    return _change(ChangeKind.ENTER, beacon, zone, at)


def _dwell(beacon: str, zone: str, at: float, dwell_s: float) -> PresenceChange:
    return _change(ChangeKind.DWELL, beacon, zone, at, dwell_s=dwell_s)


def _exit(
    beacon: str, zone: str, at: float, reason: ExitReason = ExitReason.TIMEOUT
) -> PresenceChange:
    return _change(ChangeKind.EXIT, beacon, zone, at, dwell_s=5.0, exit_reason=reason)


def _feed(state: LiveState, outputs: list[Output], builder: EventBuilder | None = None) -> None:
    events = builder or _builder()
    for output in outputs:
        state.accept(events.build(output), key=output.beacon_id)


def _state(**limits: int) -> LiveState:
    return LiveState(ZONES, site="store-1", gateway_id="gw-1", **limits)


def _zone(snapshot: dict[str, Any], zone: str) -> dict[str, Any]:
    found: dict[str, Any] = next(z for z in snapshot["zones"] if z["id"] == zone)
    return found


def _names(snapshot: dict[str, Any], zone: str) -> list[Any]:
    return [listed["subject"].get("alias") for listed in _zone(snapshot, zone)["subjects"]]


# =========================================================================== LiveState


def test_every_configured_zone_is_listed_in_order_even_when_empty() -> None:
    snapshot = _state().snapshot()
    assert [zone["id"] for zone in snapshot["zones"]] == list(ZONES)
    assert all(zone["present"] == 0 and zone["subjects"] == [] for zone in snapshot["zones"])
    assert snapshot["source_time"] is None
    assert snapshot["recent"] == []
    assert (snapshot["site"], snapshot["gateway_id"]) == ("store-1", "gw-1")
    counts = snapshot["counts"]
    assert counts == {
        "enter": 0,
        "dwell": 0,
        "exit": 0,
        "trigger": 0,
        "telemetry": 0,
        "total": 0,
        "present": 0,
        "forgotten": 0,
    }


def test_enter_adds_dwell_refreshes_exit_removes() -> None:
    state = _state()
    _feed(state, [_enter("beacon-ann", "entrance", 0)])
    snapshot = state.snapshot(T0 + 12)
    listed = _zone(snapshot, "entrance")["subjects"]
    assert listed == [
        {
            "subject": {"kind": "customer", "id": "cust-1", "alias": "Ann"},
            "dwell_s": 12.0,
            "proximity": "near",
            "distance_m": 1.5,
        }
    ]
    assert snapshot["source_time"] == "2026-01-01T00:00:12Z"
    _feed(state, [_dwell("beacon-ann", "entrance", 30, 30.0)])
    assert _zone(state.snapshot(T0 + 45), "entrance")["subjects"][0]["dwell_s"] == 45.0
    _feed(state, [_exit("beacon-ann", "entrance", 50)])
    assert _zone(state.snapshot(T0 + 60), "entrance")["present"] == 0
    assert len(state) == 0


def test_a_subject_moving_zones_moves() -> None:
    state = _state()
    _feed(
        state,
        [
            _enter("beacon-ann", "entrance", 0),
            _exit("beacon-ann", "entrance", 10, ExitReason.MOVED),
            _enter("beacon-ann", "aisle-1", 10),
        ],
    )
    snapshot = state.snapshot(T0 + 20)
    assert _names(snapshot, "entrance") == []
    assert _names(snapshot, "aisle-1") == ["Ann"]
    # An enter elsewhere moves the subject even before the exit arrives; the late exit of the
    # old zone then leaves the new zone alone.
    _feed(state, [_enter("beacon-ann", "checkout", 30), _exit("beacon-ann", "aisle-1", 30)])
    snapshot = state.snapshot(T0 + 40)
    assert _names(snapshot, "aisle-1") == []
    assert _names(snapshot, "checkout") == ["Ann"]
    assert snapshot["counts"]["present"] == 1


def test_anonymous_subjects_are_tracked_apart_but_never_named() -> None:
    state = _state()
    # Bob withheld consent: his events show only his kind; two unknown beacons show nothing.
    _feed(
        state,
        [
            _enter("beacon-bob", "checkout", 0),
            _enter("stranger-1", "checkout", 1),
            _enter("stranger-2", "checkout", 2),
            _exit("stranger-1", "checkout", 3),
        ],
    )
    snapshot = state.snapshot(T0 + 10)
    listed = _zone(snapshot, "checkout")["subjects"]
    assert [entry["subject"] for entry in listed] == [{"kind": "customer"}, {"kind": "unknown"}]
    assert [entry["dwell_s"] for entry in listed] == [10.0, 8.0]  # stranger-2 stayed, not 1
    text = json.dumps(snapshot)
    for secret in ("beacon-bob", "Bob", "cust-2", "stranger-1", "stranger-2"):
        assert secret not in text


def test_the_view_shows_only_what_the_payload_publishes() -> None:
    state = _state()
    # subject_fields withholds everything but the id; publish.raw_eids puts the raw EID in.
    builder = _builder(frozenset({"id"}))
    outputs: list[Output] = [
        _enter("beacon-ann", "entrance", 0),
        _enter("beacon-bag", "aisle-1", 1),
        TriggerFired("welcome", "notify", "beacon-ann", "entrance", T0 + 1, T0 + 1, None, 60.0),
        Telemetry("beacon-bag", T0 + 2, -12, 3000, 21.5, 10, 100, encrypted=True),
    ]
    events = [builder.build(output) for output in outputs]
    assert any(getattr(event, "raw_eid", None) == RAW_EID.hex() for event in events)
    for output, event in zip(outputs, events, strict=True):
        state.accept(event, key=output.beacon_id)
    snapshot = state.snapshot()
    text = json.dumps(snapshot)
    for secret in (RAW_EID.hex(), "raw_eid", "beacon-ann", "beacon-bag", "Ann", "gold", "LH123"):
        assert secret not in text
    assert "cust-1" in text
    assert "bag-1" in text
    # Every event listed is a subset of its published payload, field for field.
    payloads = [json.loads(event.model_dump_json()) for event in events]
    for listed in snapshot["recent"]:
        assert any(
            all(payload.get(name) == value for name, value in listed.items() if name != "subject")
            and listed["subject"].items() <= payload["subject"].items()
            for payload in payloads
        ), listed


def test_counts_by_type_and_recent_events_newest_first() -> None:
    state = _state()
    _feed(
        state,
        [
            _enter("beacon-ann", "entrance", 5),
            _dwell("beacon-ann", "entrance", 35, 30.0),
            TriggerFired("offer", "offer", "beacon-ann", "entrance", T0 + 35, T0 + 35, None),
            _exit("beacon-ann", "entrance", 20),  # concluded late, dated at its last sighting
            Telemetry("beacon-ann", T0 + 36, -12, 2900, None, 10, 100, encrypted=False),
        ],
    )
    snapshot = state.snapshot()
    assert snapshot["source_time"] == iso_time(T0 + 36)  # the last event's time without a clock
    counts = snapshot["counts"]
    assert (counts["enter"], counts["dwell"], counts["exit"], counts["total"]) == (1, 1, 1, 5)
    assert (counts["trigger"], counts["telemetry"]) == (1, 1)
    assert [event["type"] for event in snapshot["recent"]] == [
        "telemetry",
        "trigger",  # same time as the dwell, accepted after it
        "dwell",
        "exit",
        "enter",
    ]
    trigger = snapshot["recent"][1]
    assert (trigger["rule"], trigger["action"], trigger["cause"]) == ("offer", "offer", "unseen")
    json.dumps(snapshot, allow_nan=False)


def test_memory_is_bounded_whatever_the_traffic() -> None:
    state = _state(recent=20, max_tracked=100, shown_per_zone=5, max_zones=5)
    outputs: list[Output] = []
    for number in range(2_000):
        zone = ZONES[number % len(ZONES)] if number % 2 else f"rogue-{number}"
        outputs.append(_enter(f"b{number}", zone, number))
    _feed(state, outputs)
    snapshot = state.snapshot()
    assert len(state) == 100
    # Half went to zones nobody configured: two of them are listed, the rest not tracked.
    assert snapshot["counts"]["forgotten"] == 1_000 + 2 - 100
    assert snapshot["counts"]["enter"] == 2_000
    assert len(snapshot["recent"]) == 20
    assert len(snapshot["zones"]) == 5  # three configured, two rogue ones, no more
    for zone in snapshot["zones"]:
        assert len(zone["subjects"]) <= 5
        assert zone["hidden"] == zone["present"] - len(zone["subjects"])
    # The least recently refreshed went first: the last ones entered are those tracked.
    assert sum(zone["present"] for zone in snapshot["zones"]) == 100
    longest = max(listed["dwell_s"] for z in snapshot["zones"] for listed in z["subjects"])
    assert longest < 200


def test_subjects_in_a_zone_are_listed_longest_present_first() -> None:
    state = _state(shown_per_zone=2)
    _feed(state, [_enter(f"b{n}", "aisle-1", 10 - n) for n in range(4)])
    zone = _zone(state.snapshot(T0 + 20), "aisle-1")
    assert [listed["dwell_s"] for listed in zone["subjects"]] == [13.0, 12.0]
    assert (zone["present"], zone["hidden"]) == (4, 2)


# =========================================================================== the daemon


class _Stub:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)


class _Outbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.health = OutboxHealth.OK
        self.last_error = None

    async def put(self, message: Message) -> None:
        self.messages.append(message)

    def stats(self) -> _Stub:
        return _Stub(depth=len(self.messages))


def test_the_daemon_feeds_the_view_the_payloads_it_puts_in_the_outbox() -> None:
    outbox = _Outbox()
    publisher: Any = _Stub(stats=lambda: _Stub(state="connected", connected=True, last_error=None))
    assembly: Any = _Stub(events=_builder(frozenset({"id", "alias"})))
    source: Any = _Stub(name="sim")
    daemon = Daemon(
        assembly,
        source,
        Topics("beacon-gateway", "store-1", "gw-1"),
        outbox,  # type: ignore[arg-type]
        publisher,
        finite=True,
        horizon_s=0.0,
        live=_state(),
    )
    outputs: list[Output] = [
        _enter("beacon-ann", "entrance", 0),
        _enter("beacon-bob", "aisle-1", 1),
    ]
    asyncio.run(daemon._put(outputs))
    view = daemon.live_view()
    assert view["health"]["ready"] is True
    assert view["health"]["checks"] == daemon.health()[1]
    assert view["sightings"] == 0
    assert _names(view, "entrance") == ["Ann"]
    assert _zone(view, "aisle-1")["subjects"][0]["subject"] == {"kind": "customer"}
    payloads = [json.loads(message.payload) for message in outbox.messages]
    for listed, payload in zip(reversed(view["recent"]), payloads, strict=True):
        assert {name: payload[name] for name in listed if name != "subject"} == {
            name: value for name, value in listed.items() if name != "subject"
        }
        assert listed["subject"] == {k: v for k, v in payload["subject"].items() if v is not None}
    assert RAW_EID.hex() in outbox.messages[0].payload.decode()  # published (debug flag) ...
    assert RAW_EID.hex() not in json.dumps(view)  # ... but never shown


def test_without_a_live_state_the_view_is_health_only() -> None:
    outbox: Any = _Outbox()
    publisher: Any = _Stub(stats=lambda: _Stub(state="retrying", connected=False, last_error="x"))
    stub: Any = None
    daemon = Daemon(stub, _Stub(name="sim"), stub, outbox, publisher, finite=True, horizon_s=0.0)  # type: ignore[arg-type]
    view = daemon.live_view()
    assert view["health"]["ready"] is False
    assert "zones" not in view


# =========================================================================== HTTP


async def _request(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def _serve(
    scenario: Any,
    live: Any = None,
) -> None:
    async def main() -> None:
        server = OpsServer(lambda: b"gw_up 1\n", lambda: (True, {"mqtt": "connected"}), live)
        _, port = await server.start("127.0.0.1", 0)
        try:
            await scenario(port)
        finally:
            await server.close()

    asyncio.run(main())


def test_the_page_its_files_and_the_state_are_served_with_security_headers() -> None:
    state = _state()
    _feed(state, [_enter("beacon-ann", "entrance", 0)])

    def live() -> dict[str, Any]:
        return {**state.snapshot(T0 + 3), "health": {"ready": True, "checks": {}}}

    async def scenario(port: int) -> None:
        status, headers, body = await _request(port, _get("/"))
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["content-security-policy"].startswith("default-src 'self'")
        assert headers["x-content-type-options"] == "nosniff"
        assert b'<script src="/live/app.js"' in body
        for path, kind in (("/live/app.js", "text/javascript"), ("/live/app.css", "text/css")):
            status, headers, body = await _request(port, _get(path))
            assert (status, headers["content-type"].split(";")[0]) == (200, kind)
            assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
            assert headers["x-content-type-options"] == "nosniff"
            assert body
        status, headers, body = await _request(port, _get("/live/state?t=1"))
        assert status == 200
        assert headers["content-type"] == "application/json"
        assert headers["cache-control"] == "no-store"
        assert headers["x-content-type-options"] == "nosniff"
        snapshot = json.loads(body)
        assert _names(snapshot, "entrance") == ["Ann"]
        assert snapshot["health"]["ready"] is True
        # What was there before is unchanged.
        assert (await _request(port, _get("/metrics")))[::2] == (200, b"gw_up 1\n")
        assert (await _request(port, _get("/healthz")))[0] == 200
        for unknown in ("/live/", "/live/other.js", "/index.html", "/live/../live/app.js", "/x"):
            assert (await _request(port, _get(unknown)))[0] == 404, unknown
        assert (await _request(port, b"POST /live/state HTTP/1.1\r\n\r\n"))[0] == 405
        assert (await _request(port, b"GET / HTTP/1.1\r\n" + b"x" * 9000 + b"\r\n\r\n"))[0] == 431

    _serve(scenario, live)


def test_without_a_live_view_there_is_no_page() -> None:
    async def scenario(port: int) -> None:
        for path in ("/", "/live/state", "/live/app.js"):
            assert (await _request(port, _get(path)))[0] == 404
        assert (await _request(port, _get("/metrics")))[0] == 200

    _serve(scenario)


def test_a_failing_snapshot_gets_a_500_and_the_server_goes_on() -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError

    async def scenario(port: int) -> None:
        assert (await _request(port, _get("/live/state")))[0] == 500
        assert (await _request(port, _get("/healthz")))[0] == 200

    _serve(scenario, broken)


# =========================================================================== the page's files


def _page_file(name: str) -> str:
    return resources.files("gateway.ops").joinpath("live_page", name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", sorted({name for name, _ in PAGE_FILES.values()}))
def test_the_page_loads_nothing_from_elsewhere(name: str) -> None:
    text = _page_file(name)
    if name.endswith(".svg"):
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a name, not a fetch
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), name
    assert "@import" not in text
    assert "url(" not in text


def test_the_page_has_no_inline_script_or_style_and_never_parses_data_as_html() -> None:
    html = _page_file("index.html")
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/live/app.js" defer>']
    assert "<style" not in html
    assert " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
    script = _page_file("app.js")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script
    assert "/live/state" in script
