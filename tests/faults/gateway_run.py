"""The gateway as the fault suite runs it: a child process playing a scene into a real broker.

:class:`GatewayProcess` starts ``beacon-gateway run --scene ... --realtime`` as systemd would
(configured through ``BEACON_GATEWAY__*`` variables, logs to a file), optionally inside a private
mount namespace whose state directory is a small tmpfs (:class:`StateMount`), so a test can fill
that disk or make it read-only under the running gateway. It always kills what it started.

:func:`expected_events` is the oracle: the same scene and seed printed with ``--stdout`` and no
broker. Event ids are stable, so the events a subscriber receives can be matched one by one with
the events the gateway produced, in order.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, Self

import pytest

from tests.mosquitto import free_port

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from types import TracebackType

    from tests.mosquitto import Received

REPO: Final = Path(__file__).resolve().parents[2]
STORE_SCENE: Final = REPO / "configs" / "scenes" / "store.toml"
RUN_TIMEOUT_S: Final = 300.0
"""A hung child fails the test after this long; never a timing claim."""
UNSHARE: Final = "/usr/bin/unshare"
NSENTER: Final = "/usr/bin/nsenter"
WINDOW: Final = 20
"""The publisher's in-flight window (``mqtt.max_inflight``'s default): what one crash can
leave published but unacknowledged, hence the bound on duplicates per crash."""


def store_scene(directory: Path, duration_s: int) -> Path:
    """The store scene (configs/scenes/store.toml) cut to ``duration_s`` seconds."""
    text = STORE_SCENE.read_text(encoding="utf-8")
    text, replaced = re.subn(r"(?m)^duration_s = \d+", f"duration_s = {duration_s}", text)
    assert replaced == 1, "store.toml has no duration_s line"
    path = directory / f"store-{duration_s}s.toml"
    path.write_text(text, encoding="utf-8")
    return path


def gateway_command(scene: Path, *extra: str) -> list[str]:
    """``beacon-gateway run`` on ``scene`` with ``extra`` arguments."""
    return [sys.executable, "-m", "gateway", "run", "--scene", str(scene), *extra]


def expected_events(scene: Path, seed: int | None = None) -> list[dict[str, object]]:
    """What the gateway produces from ``scene`` (and ``seed``), in order: the oracle."""
    seeded = () if seed is None else ("--seed", str(seed))
    printed = subprocess.run(
        gateway_command(scene, *seeded, "--stdout"),
        capture_output=True,
        check=True,
        timeout=RUN_TIMEOUT_S,
        env={k: v for k, v in os.environ.items() if not k.startswith("BEACON_GATEWAY__")},
    )
    return [json.loads(line) for line in printed.stdout.splitlines()]


def expected_by_seed(scene: Path, seeds: Iterable[int]) -> dict[int, list[dict[str, object]]]:
    """:func:`expected_events` for several seeds, two at a time (one per core)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {seed: pool.submit(expected_events, scene, seed) for seed in seeds}
        return {seed: future.result() for seed, future in futures.items()}


def event_messages(received: Sequence[Received]) -> list[Received]:
    """The events among what a subscriber received (not the gateway's status)."""
    return [m for m in received if not m.topic.endswith("/status")]


def arrival_order(received: Sequence[Received]) -> list[str]:
    """Event ids in the order they first arrived (later copies are duplicates)."""
    return list(dict.fromkeys(event_id for _, event_id in first_arrivals(received)))


def first_arrivals(received: Sequence[Received]) -> list[tuple[int, str]]:
    """(outbox ``seq``, event id) of each outbox row's first copy, in arrival order.

    Keyed by ``seq``, the outbox's own number: two runs of a scene with different seeds can
    produce the same occurrence (a beacon entering a zone in the same second), which is one
    ``event_id`` but two accepted rows.
    """
    seen: dict[int, str] = {}
    for message in event_messages(received):
        seq = int(message.user_properties["seq"])
        seen.setdefault(seq, str(json.loads(message.payload)["event_id"]))
    return list(seen.items())


@dataclass(frozen=True, slots=True)
class Duplicates:
    """Copies received beyond the first, and whether every copy equals its first exactly."""

    count: int
    identical: bool


def duplicates(received: Sequence[Received]) -> Duplicates:
    """Count re-sent rows (same ``seq``); a re-send must be byte-identical (dedup by event_id)."""
    first: dict[int, bytes] = {}
    count = 0
    identical = True
    for message in event_messages(received):
        seq = int(message.user_properties["seq"])
        if seq in first:
            count += 1
            identical = identical and first[seq] == message.payload
        else:
            first[seq] = message.payload
    return Duplicates(count, identical)


def status_values(received: Sequence[Received]) -> list[str]:
    """The gateway's status messages in arrival order (``online``/``offline``)."""
    return [str(json.loads(m.payload)["status"]) for m in received if m.topic.endswith("/status")]


def accepted_total(outbox: Path) -> int:
    """Events ever committed to this outbox: SQLite's AUTOINCREMENT high-water mark.

    ``seq`` is never reused, so this counts every accepted event across all runs, including
    those already delivered and deleted: an independent tally of what was accepted.
    """
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as database:
        row = database.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
    return 0 if row is None else int(row[0])


def outbox_seqs(outbox: Path) -> set[int]:
    """The rows still waiting in the outbox (accepted, not yet acknowledged): kept, not lost."""
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as database:
        return {int(row[0]) for row in database.execute("SELECT seq FROM outbox")}


def settles(predicate: Callable[[], bool], limit_s: float) -> bool:
    """Poll ``predicate`` for up to ``limit_s``; whether it came true (the caller then counts
    what is missing and reports it, rather than failing on a timeout with no figures)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def outbox_state(outbox: Path) -> dict[str, int]:
    """The outbox's persisted figures (depth, dropped_total, parked_total)."""
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)) as database:
        depth, dropped, parked = database.execute(
            "SELECT depth, dropped_total, parked_total FROM state"
        ).fetchone()
    return {"depth": int(depth), "dropped_total": int(dropped), "parked_total": int(parked)}


# --------------------------------------------------------------------------- a private disk


def require_mount_namespaces() -> None:
    """Skip unless this process may create a mount namespace and mount a tmpfs (root)."""
    if not (Path(UNSHARE).exists() and Path(NSENTER).exists()):
        pytest.skip("unshare/nsenter (util-linux) are not installed")
    probe = subprocess.run(
        [UNSHARE, "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs in a mount namespace: {probe.stderr.decode()[-200:]}")


@dataclass(frozen=True, slots=True)
class StateMount:
    """A tmpfs of ``size_kib`` mounted on ``path`` in the gateway's own mount namespace.

    ``read_only`` mounts it read-only; ``filler_kib`` takes that much of it with a file before
    the gateway starts (remove it with :meth:`GatewayProcess.remove_filler` to free space).
    """

    path: Path
    size_kib: int
    read_only: bool = False
    filler_kib: int = 0

    def wrap(self, command: Sequence[str]) -> list[str]:
        """``command`` run inside a new mount namespace with the tmpfs mounted."""
        options = f"size={self.size_kib}k,mode=0700{',ro' if self.read_only else ''}"
        fill = (
            f" && head -c {self.filler_kib * 1024} /dev/zero > {self.path}/filler"
            if self.filler_kib
            else ""
        )
        script = f'mount -t tmpfs -o {options} tmpfs {self.path}{fill} && exec "$@"'
        return [UNSHARE, "-m", "--propagation", "private", "sh", "-c", script, "sh", *command]


# --------------------------------------------------------------------------- the gateway


class GatewayProcess:
    """``beacon-gateway run`` as a child process (see the module docstring)."""

    def __init__(
        self,
        scene: Path,
        broker_port: int,
        state: Path,
        *,
        seed: int | None = None,
        speed: float = 30.0,
        settings: Mapping[str, str] | None = None,
        mount: StateMount | None = None,
    ) -> None:
        self.scene = scene
        self.state = state
        self.outbox = (mount.path if mount else state) / "outbox.sqlite3"
        self.http_port = free_port()
        self.log_path = state / f"gateway-{seed}.log"
        self.mount = mount
        self._environ = {
            **os.environ,
            "BEACON_GATEWAY__MQTT__HOST": "127.0.0.1",
            "BEACON_GATEWAY__MQTT__PORT": str(broker_port),
            "BEACON_GATEWAY__MQTT__BACKOFF_BASE_S": "0.1",
            "BEACON_GATEWAY__MQTT__BACKOFF_CAP_S": "0.5",
            "BEACON_GATEWAY__OUTBOX__PATH": str(self.outbox),
            "BEACON_GATEWAY__HTTP__PORT": str(self.http_port),
            "BEACON_GATEWAY__LOGGING__FORMAT": "json",
            **(settings or {}),
        }
        seeded = () if seed is None else ("--seed", str(seed))
        command = gateway_command(scene, *seeded, "--realtime", "--speed", str(speed))
        self.command = mount.wrap(command) if mount else command
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        """The gateway's process id (inside a namespace wrapper, ``exec`` keeps it)."""
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self) -> Self:
        """Start the child (it connects, opens the outbox and plays the scene by itself)."""
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command, env=self._environ, stdout=self._log, stderr=subprocess.STDOUT
        )
        return self

    def running(self) -> bool:
        """Whether the child is alive."""
        return self._process is not None and self._process.poll() is None

    def kill(self) -> None:
        """SIGKILL (a power cut, an OOM kill) and reap."""
        self._end(signal.SIGKILL)

    def wait(self, timeout_s: float = RUN_TIMEOUT_S) -> int:
        """Wait for the child to exit by itself; its exit status."""
        assert self._process is not None, "not started"
        code = self._process.wait(timeout_s)
        self._close_log()
        return code

    def _end(self, how: signal.Signals) -> int | None:
        process, self._process = self._process, None
        code = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(how)
            code = process.wait(RUN_TIMEOUT_S)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        """What the gateway logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def acked_seqs(self) -> set[int]:
        """Rows the broker acknowledged (``publish_acked`` lines: needs debug logging)."""
        acked = set()
        for line in self.log_text().splitlines():
            if '"publish_acked"' in line:
                acked.add(int(json.loads(line)["seq"]))
        return acked

    def healthz(self) -> tuple[int, dict[str, object]] | None:
        """``/healthz`` as (status, body), or None while nothing listens yet."""
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())
        except OSError:
            return None

    def metric(self, name: str) -> float | None:
        """One unlabelled sample of ``/metrics`` (None while nothing listens)."""
        url = f"http://127.0.0.1:{self.http_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as reply:
                text = reply.read().decode()
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return None

    def in_namespace(self, *command: str) -> None:
        """Run ``command`` inside the gateway's mount namespace (``mount -o remount,rw``)."""
        subprocess.run([NSENTER, "-t", str(self.pid), "-m", *command], check=True)

    def remove_filler(self) -> None:
        """Free the space the :class:`StateMount` filler took."""
        assert self.mount is not None, "no private state mount"
        Path(f"/proc/{self.pid}/root{self.mount.path}/filler").unlink()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._end(signal.SIGKILL)
