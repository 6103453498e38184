"""The state directory fails: read-only at start, or full while the broker is away.

The gateway runs in its own mount namespace whose state directory is a small tmpfs, so the test
can make that disk read-only or full under a real gateway process (root only: skipped otherwise,
with the reason). What must hold: a clear error naming the reason, ``/healthz`` red, the process
staying up (no crash loop: the same process recovers once the disk is usable), and no event
lost, since while nothing can be committed the pipeline waits rather than drops.
"""

from __future__ import annotations

import json
import socket
from typing import TYPE_CHECKING

from tests.faults.gateway_run import (
    GatewayProcess,
    StateMount,
    arrival_order,
    duplicates,
    expected_events,
    require_mount_namespaces,
    store_scene,
)
from tests.mosquitto import Mosquitto, Subscriber, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.faults.report import FaultReport

TOPICS = "beacon-gateway/v1/store/store-sim/#"
DELIVERY_WAIT_S = 120.0
"""How long recovery may take before the test gives up (never a timing claim)."""


def _log_lines(gateway: GatewayProcess, event: str) -> list[dict[str, object]]:
    lines = []
    for line in gateway.log_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("event") == event:
            lines.append(record)
    return lines


def _red_for(gateway: GatewayProcess, key: str, value: str) -> bool:
    health = gateway.healthz()
    return health is not None and health[0] == 503 and health[1].get(key) == value


def _notifications(notify: socket.socket) -> list[str]:
    received = []
    notify.setblocking(False)  # noqa: FBT003
    while True:
        try:
            received.append(notify.recv(4096).decode())
        except BlockingIOError:
            return received


def test_a_read_only_state_directory_is_waited_for_not_crash_looped(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """Read-only at start: red health, one process waiting, then it starts by itself."""
    require_mount_namespaces()
    scene = store_scene(tmp_path, 300)
    expected = {str(event["event_id"]) for event in expected_events(scene)}
    state = tmp_path / "state"
    state.mkdir()
    mount = StateMount(state, size_kib=8192, read_only=True)
    with (
        Mosquitto() as broker,
        Subscriber(broker.port, [TOPICS]) as subscriber,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify,
    ):
        notify.bind(str(tmp_path / "notify"))
        gateway = GatewayProcess(
            scene,
            broker.port,
            tmp_path,
            speed=30.0,
            mount=mount,
            settings={"NOTIFY_SOCKET": str(tmp_path / "notify")},
        )
        with gateway:
            wait_until(
                lambda: _red_for(gateway, "outbox_health", "unavailable"),
                "/healthz to turn red",
            )
            wait_until(
                lambda: len(_log_lines(gateway, "outbox_unavailable")) >= 3,
                "three attempts to open the outbox",
                limit_s=DELIVERY_WAIT_S,
            )
            health = gateway.healthz()
            assert health is not None
            waiting = _log_lines(gateway, "outbox_unavailable")
            assert gateway.running()
            assert not _ids_of(subscriber), "nothing is sensed without an outbox"
            gateway.in_namespace("mount", "-o", "remount,rw", str(state))
            assert gateway.wait() == 0, gateway.log_text()[-3000:]
            wait_until(
                lambda: _ids_of(subscriber) >= expected, "every event", limit_s=DELIVERY_WAIT_S
            )
            notes = _notifications(notify)
        received = subscriber.messages()
    arrived = set(arrival_order(received))
    fault_report.record(
        "read-only state directory at start",
        "gateway started on a read-only tmpfs, made writable after 3 attempts to open",
        healthz=f"{health[0]} outbox_health={health[1].get('outbox_health')}",
        error=str(waiting[0]["reason"]),
        attempts_while_read_only=len(waiting),
        restarts=0,
        events_produced=len(expected),
        events_received=len(arrived),
        lost=len(expected - arrived),
        duplicated=duplicates(received).count,
    )
    assert {record["reason"] for record in waiting} == {"read-only"}
    assert "read-write access" in str(waiting[0]["error"])
    assert any("READY=1" in note for note in notes), "systemd must not time the start out"
    assert any("outbox unavailable (read-only)" in note for note in notes)
    assert arrived == expected


def _ids_of(subscriber: Subscriber) -> set[str]:
    return set(arrival_order(subscriber.messages()))


def test_a_full_disk_during_an_outage_holds_events_and_loses_none(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """Broker away, then the disk fills: red health, sensing waits, nothing is lost."""
    require_mount_namespaces()
    scene = store_scene(tmp_path, 600)
    expected = {str(event["event_id"]) for event in expected_events(scene)}
    state = tmp_path / "state"
    state.mkdir()
    # An 8 MiB disk with 256 KiB free: the outbox's backlog fills the rest. Freeing the filler
    # leaves more than SQLite's WAL needs before it checkpoints (4 MB).
    mount = StateMount(state, size_kib=8192, filler_kib=8192 - 256)
    with Mosquitto() as broker:
        with Subscriber(broker.port, [TOPICS]):
            pass  # the persistent session exists; messages queue for it while it is away
        broker.stop()
        with GatewayProcess(scene, broker.port, tmp_path, speed=30.0, mount=mount) as gateway:
            wait_until(
                lambda: _red_for(gateway, "outbox_health", "retrying"),
                "the outbox to report the full disk",
                limit_s=DELIVERY_WAIT_S,
            )
            wait_until(
                lambda: len(_log_lines(gateway, "outbox_commit_failed")) >= 3,
                "three failed commits",
                limit_s=DELIVERY_WAIT_S,
            )
            health = gateway.healthz()
            assert health is not None
            failures = _log_lines(gateway, "outbox_commit_failed")
            assert gateway.running()
            gateway.remove_filler()
            broker.start()
            with Subscriber(broker.port, [TOPICS]) as subscriber:
                assert gateway.wait() == 0, gateway.log_text()[-3000:]
                wait_until(
                    lambda: _ids_of(subscriber) >= expected,
                    "every event",
                    limit_s=DELIVERY_WAIT_S,
                )
                received = subscriber.messages()
            recovered = _log_lines(gateway, "outbox_commit_recovered")
    arrived = set(arrival_order(received))
    fault_report.record(
        "disk full during a broker outage",
        "outbox on an 8 MiB tmpfs with 256 KiB free, broker down; then space freed, broker back",
        healthz=f"{health[0]} outbox_health={health[1].get('outbox_health')}",
        error=str(failures[0]["reason"]) if failures else "none",
        failed_commits_logged=len(failures),
        recovered=len(recovered),
        restarts=0,
        events_produced=len(expected),
        events_received=len(arrived),
        lost=len(expected - arrived),
        duplicated=duplicates(received).count,
    )
    assert failures
    assert {record["reason"] for record in failures} == {"disk-full"}
    assert recovered
    assert arrived == expected
