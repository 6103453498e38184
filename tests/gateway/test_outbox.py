"""The durable outbox: order, durability (SIGKILL), bounds, dead letters, file modes, storage
errors (read-only, corrupt, disk full) and the asyncio group-commit writer. Real SQLite files."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from gateway.delivery.message import Message, Stored
from gateway.delivery.outbox import (
    Accepted,
    AsyncOutbox,
    Outbox,
    OutboxError,
    OutboxErrorReason,
    OutboxHealth,
    WhenFull,
)
from gateway.delivery.outbox_schema import SCHEMA_VERSION

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
SECRET = b'{"name": "Ada Lovelace", "loyalty": "gold"}'
"""A payload that names a customer: it must never show in an error, a repr or a log."""


def message(n: int, payload: bytes | None = None, **fields: Any) -> Message:
    body = payload if payload is not None else b'{"n": %d, "pad": "%s"}' % (n, b"x" * 40)
    return Message(topic="gw/test/events", payload=body, event_id=f"ev-{n}", **fields)


def messages(start: int, count: int) -> list[Message]:
    return [message(n) for n in range(start, start + count)]


def event_ids(rows: list[Stored]) -> list[str]:
    return [row.message.event_id for row in rows]


def everything(outbox: Outbox) -> list[Stored]:
    return outbox.pending(limit=1_000_000)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.sqlite3"


@pytest.fixture(autouse=True)
def _no_thread_left_behind() -> Iterator[None]:
    yield
    leftovers = [t.name for t in threading.enumerate() if t.name.startswith("outbox")]
    assert leftovers == []


# --------------------------------------------------------------------------- order and ack


def test_accept_pending_ack_keep_acceptance_order(path: Path) -> None:
    with Outbox.open(path) as outbox:
        first = outbox.accept(messages(0, 3))
        second = outbox.accept(messages(3, 2))
        assert first.seqs == (1, 2, 3)
        assert second.seqs == (4, 5)
        assert first.dropped == second.dropped == 0
        assert event_ids(everything(outbox)) == [f"ev-{n}" for n in range(5)]
        assert [r.seq for r in outbox.pending(after=2, limit=2)] == [3, 4]
        assert outbox.pending(after=5, limit=10) == []

        assert outbox.ack([2, 4, 99, 2]) == 2
        assert [r.seq for r in everything(outbox)] == [1, 3, 5]
        assert outbox.ack([]) == 0
        stats = outbox.stats()
        assert stats.depth == 3
        assert stats.payload_bytes == sum(len(r.message.payload) for r in everything(outbox))


def test_a_stored_row_is_the_message_that_was_accepted(path: Path) -> None:
    sent = [
        message(1, payload=b"\x00\xffbinary", qos=0, retain=True),
        message(2, payload=b"", qos=2),
    ]
    with Outbox.open(path, clock=lambda: 1234.5) as outbox:
        outbox.accept(sent)
        rows = everything(outbox)
    assert [row.message for row in rows] == sent
    assert all(row.accepted_at == 1234.5 and row.attempts == 0 for row in rows)


def test_seqs_are_never_reused_after_deletes_and_restarts(path: Path) -> None:
    with Outbox.open(path) as outbox:
        assert outbox.ack(outbox.accept(messages(0, 3)).seqs) == 3
        assert outbox.accept(messages(3, 1)).seqs == (4,)
        outbox.ack([4])
    with Outbox.open(path) as outbox:
        assert outbox.stats().depth == 0
        assert outbox.accept(messages(4, 1)).seqs == (5,)
    with Outbox.open(path, max_events=1) as outbox:
        assert outbox.accept(messages(5, 3)).seqs == (6,)  # ev-5 and ev-6 never stored
        assert outbox.accept(messages(8, 1)).seqs == (7,)


def test_rows_attempts_and_counters_survive_close_and_reopen(path: Path) -> None:
    with Outbox.open(path, max_events=4, clock=lambda: 100.0) as outbox:
        outbox.accept(messages(0, 2))
        assert outbox.accept(messages(2, 4)).seqs == (3, 4, 5, 6)
        outbox.retry_later(4)
        outbox.retry_later(4)
        outbox.park(3, "0x87 not authorized")
        before = outbox.stats()
        rows = everything(outbox)
    with Outbox.open(path, max_events=4) as outbox:
        assert everything(outbox) == rows
        after = outbox.stats()
    assert [r.seq for r in rows] == [4, 5, 6]
    assert rows[0].attempts == 2
    assert (after.depth, after.payload_bytes, after.oldest_accepted_at) == (
        3,
        before.payload_bytes,
        100.0,
    )
    assert (after.dropped, after.parked) == (2, 1)
    assert after.commits == 0


CHILD_ACCEPTS_FOREVER = """
import sys
from pathlib import Path
from gateway.delivery.message import Message
from gateway.delivery.outbox import Outbox

outbox = Outbox.open(Path(sys.argv[1]), synchronous=sys.argv[2])
batch = 0
while True:
    sent = [Message("gw/t", b'{"b": %d, "i": %d}' % (batch, i), f"b{batch}-{i}") for i in range(50)]
    accepted = outbox.accept(sent)
    print("ACCEPTED", accepted.seqs[-1], flush=True)
    batch += 1
"""


@pytest.mark.parametrize("synchronous", ["full", "normal"])
def test_rows_accepted_before_a_sigkill_are_there_after_reopen(
    path: Path, synchronous: str
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD_ACCEPTS_FOREVER, str(path), synchronous],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        assert child.stdout is not None
        reported = []
        for line in child.stdout:
            if line.startswith("ACCEPTED"):
                reported.append(int(line.split()[1]))
                if len(reported) == 20:
                    break
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    with Outbox.open(path) as outbox:
        rows = everything(outbox)
        assert outbox.stats().depth == len(rows)
    assert len(rows) >= reported[-1]  # every batch reported accepted (and maybe one more)
    assert len(rows) % 50 == 0  # whole batches only: nothing half-written
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    assert rows[-1].message.event_id == f"b{len(rows) // 50 - 1}-49"


# --------------------------------------------------------------------------- the bound


def test_drop_oldest_evicts_the_oldest_rows_and_counts_them(path: Path) -> None:
    with Outbox.open(path, max_events=3) as outbox:
        outbox.accept(messages(0, 2))
        accepted = outbox.accept(messages(2, 2))
        assert accepted.seqs == (3, 4)
        assert accepted.dropped == 1
        assert event_ids(everything(outbox)) == ["ev-1", "ev-2", "ev-3"]
        big = outbox.accept(messages(4, 5))  # the batch alone exceeds the bound
        assert big.seqs == (5, 6, 7)
        assert big.dropped == 5  # three old rows and the batch's two oldest
        assert event_ids(everything(outbox)) == ["ev-6", "ev-7", "ev-8"]
        assert outbox.stats().dropped == 6
    with Outbox.open(path, max_events=3) as outbox:
        assert outbox.stats().dropped == 6


def test_drop_newest_refuses_the_newest_of_the_batch(path: Path) -> None:
    with Outbox.open(path, max_events=3, when_full="drop-newest") as outbox:
        outbox.accept(messages(0, 2))
        accepted = outbox.accept(messages(2, 3))
        assert accepted.seqs == (3,)
        assert accepted.dropped == 2
        assert outbox.accept(messages(5, 1)) == Accepted((), 1)
        assert event_ids(everything(outbox)) == ["ev-0", "ev-1", "ev-2"]
        outbox.ack([1])
        assert outbox.accept(messages(6, 1)).seqs == (4,)
    with Outbox.open(path, max_events=3, when_full="drop-newest") as outbox:
        assert outbox.stats().dropped == 3


@pytest.mark.parametrize("when_full", ["drop-oldest", "drop-newest"])
def test_max_bytes_bounds_the_payload_and_oversized_events_are_never_stored(
    path: Path, when_full: WhenFull
) -> None:
    def sized(n: int, size: int) -> Message:
        return message(n, payload=b"p" * size)

    with Outbox.open(path, max_bytes=100, when_full=when_full) as outbox:
        outbox.accept([sized(0, 40), sized(1, 40)])
        accepted = outbox.accept([sized(2, 101), sized(3, 30)])
        kept = ["ev-1", "ev-3"] if when_full == "drop-oldest" else ["ev-0", "ev-1"]
        assert event_ids(everything(outbox)) == kept
        assert accepted.dropped == 2
        assert outbox.stats().payload_bytes == sum(
            len(r.message.payload) for r in everything(outbox)
        )
        assert outbox.stats().payload_bytes <= 100


def test_a_lowered_bound_applies_at_the_next_accept(path: Path) -> None:
    with Outbox.open(path) as outbox:
        outbox.accept(messages(0, 10))
    with Outbox.open(path, max_events=4) as outbox:
        assert outbox.stats().depth == 10
        outbox.accept(messages(10, 1))
        assert event_ids(everything(outbox)) == ["ev-7", "ev-8", "ev-9", "ev-10"]
        assert outbox.stats().dropped == 7


# --------------------------------------------------------------------------- dead letters


def test_park_moves_a_row_to_the_dead_letters_with_its_reason(path: Path) -> None:
    with Outbox.open(path, clock=lambda: 50.0, max_parked=2) as outbox:
        outbox.accept(messages(0, 4))
        outbox.retry_later(2)
        outbox.park(2, "0x99 payload format invalid " + "!" * 500)
        outbox.park(99, "unknown seqs are ignored")
        assert [r.seq for r in everything(outbox)] == [1, 3, 4]
        [(row, reason, parked_at)] = outbox.parked(limit=10)
        assert (row.seq, row.attempts, row.message) == (2, 1, message(1))
        assert reason.startswith("0x99 payload format invalid")
        assert len(reason) == 200
        assert parked_at == 50.0
        outbox.park(3, "0x87")
        outbox.park(4, "0x87")
        assert [row.seq for row, _, _ in outbox.parked(limit=10)] == [3, 4]  # max_parked
        assert outbox.stats().parked == 3
        assert outbox.stats().depth == 1
    with Outbox.open(path) as outbox:
        assert outbox.stats().parked == 3


# --------------------------------------------------------------------------- files and errors


def test_new_directory_is_0700_and_file_0600_whatever_the_umask(path: Path) -> None:
    old_umask = os.umask(0)
    try:
        Outbox.open(path).close()
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.with_name(path.name + ".lock").stat().st_mode) == 0o600


def test_an_existing_file_readable_by_others_is_narrowed_to_0600(path: Path) -> None:
    with Outbox.open(path) as outbox:
        outbox.accept(messages(0, 1))
    path.chmod(0o644)
    with Outbox.open(path) as outbox:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.with_name(path.name + "-wal").stat().st_mode) == 0o600
        assert len(everything(outbox)) == 1


def test_a_file_its_owner_may_not_write_is_refused_as_read_only(path: Path) -> None:
    Outbox.open(path).close()
    path.chmod(0o400)
    with pytest.raises(OutboxError) as caught:
        Outbox.open(path)
    assert caught.value.reason is OutboxErrorReason.READ_ONLY
    assert str(path) in str(caught.value)
    assert stat.S_IMODE(path.stat().st_mode) == 0o400  # never widened


OPEN_AS_NOBODY_AND_REPORT = """
import os
import sys
from pathlib import Path
from gateway.delivery.outbox import Outbox, OutboxError

if os.geteuid() == 0:  # root ignores file modes: become nobody once everything is imported
    os.setgroups([])
    os.setgid(65534)
    os.setuid(65534)
try:
    Outbox.open(Path(sys.argv[1])).close()
except OutboxError as error:
    print("REASON", error.reason)
    print("MESSAGE", error)
else:
    print("REASON none")
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory an unprivileged user can reach (tmp_path is private to root under CI)."""
    with tempfile.TemporaryDirectory(prefix="outbox-test-") as name:
        directory = Path(name)
        directory.chmod(0o755)
        try:
            yield directory
        finally:
            for child in directory.rglob("*"):
                if child.is_dir():
                    child.chmod(0o755)


def as_unprivileged_user(path: Path) -> tuple[str, str]:
    """Open the outbox in a child process that file modes bind (`nobody` when we are root)."""
    result = subprocess.run(
        [sys.executable, "-c", OPEN_AS_NOBODY_AND_REPORT, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return lines["REASON"], lines.get("MESSAGE", "")


def give_away(*paths: Path) -> None:
    if os.geteuid() == 0:
        for path in paths:
            os.chown(path, 65534, 65534)


def test_a_directory_it_may_not_write_is_read_only(shared_dir: Path) -> None:
    directory = shared_dir / "locked"
    directory.mkdir(mode=0o555)
    directory.chmod(0o555)
    reason, text = as_unprivileged_user(directory / "outbox.sqlite3")
    assert reason == "read-only"
    assert str(directory / "outbox.sqlite3") in text


def test_an_existing_outbox_in_a_directory_it_may_not_write_is_read_only(
    shared_dir: Path,
) -> None:
    directory = shared_dir / "state"
    path = directory / "outbox.sqlite3"
    with Outbox.open(path) as outbox:
        outbox.accept(messages(0, 1))
    give_away(directory, path, path.with_name(path.name + ".lock"))
    assert as_unprivileged_user(path)[0] == "none"  # the harness itself is sound
    directory.chmod(0o555)
    reason, _ = as_unprivileged_user(path)
    assert reason == "read-only"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_an_outbox_owned_by_another_user_is_read_only(shared_dir: Path) -> None:
    directory = shared_dir / "state"
    path = directory / "outbox.sqlite3"
    Outbox.open(path).close()
    give_away(directory, path.with_name(path.name + ".lock"))  # all but the database itself
    reason, text = as_unprivileged_user(path)
    assert reason == "read-only"
    assert "SQLITE_CANTOPEN" in text


def test_a_file_that_is_not_a_database_is_corrupt(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    path.write_bytes(bytes(range(256)) * 64)
    path.chmod(0o600)
    with pytest.raises(OutboxError) as caught:
        Outbox.open(path)
    assert caught.value.reason is OutboxErrorReason.CORRUPT
    assert "move the file aside" in str(caught.value)


def test_a_database_with_damaged_pages_is_corrupt(path: Path) -> None:
    with Outbox.open(path) as outbox:
        outbox.accept(messages(0, 500))
    size = path.stat().st_size
    with path.open("r+b") as file:
        file.seek(4096 * 2)
        file.write(b"\xa5" * (size - 4096 * 3))
    with pytest.raises(OutboxError) as caught, Outbox.open(path) as outbox:
        everything(outbox)  # the open or the read notices
    assert caught.value.reason is OutboxErrorReason.CORRUPT


def test_a_newer_schema_is_refused(path: Path) -> None:
    Outbox.open(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(OutboxError) as caught:
        Outbox.open(path)
    assert caught.value.reason is OutboxErrorReason.SCHEMA
    assert "newer" in str(caught.value)


def test_another_sqlite_database_is_refused(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE customers (name TEXT)")
    connection.close()
    path.chmod(0o600)
    with pytest.raises(OutboxError) as caught:
        Outbox.open(path)
    assert caught.value.reason is OutboxErrorReason.SCHEMA


def test_a_second_opener_is_refused_while_the_first_holds_it(path: Path) -> None:
    with Outbox.open(path):
        with pytest.raises(OutboxError) as caught:
            Outbox.open(path)
        assert caught.value.reason is OutboxErrorReason.IN_USE
    Outbox.open(path).close()  # released on close


def fill_the_disk(outbox: Outbox) -> None:
    """A real SQLITE_FULL: the database may not grow by a single page."""
    connection = outbox._connection
    assert connection is not None
    (pages,) = connection.execute("PRAGMA page_count").fetchone()
    connection.execute(f"PRAGMA max_page_count = {pages}")


def free_the_disk(outbox: Outbox) -> None:
    assert outbox._connection is not None
    outbox._connection.execute("PRAGMA max_page_count = 1000000")


def test_disk_full_fails_the_whole_batch_and_leaves_the_outbox_consistent(path: Path) -> None:
    with Outbox.open(path) as outbox:
        outbox.accept(messages(0, 5))
        before, rows = outbox.stats(), everything(outbox)
        fill_the_disk(outbox)
        with pytest.raises(OutboxError) as caught:
            outbox.accept([message(n, payload=SECRET * 20) for n in range(5, 105)])
        assert caught.value.reason is OutboxErrorReason.DISK_FULL
        assert str(path) in str(caught.value)
        assert "Ada" not in str(caught.value)
        assert everything(outbox) == rows
        assert outbox.stats() == before
        assert outbox._connection is not None
        assert outbox._connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        free_the_disk(outbox)
        assert outbox.accept(messages(5, 2)).seqs == (6, 7)
    with Outbox.open(path) as outbox:
        assert len(everything(outbox)) == 7


def test_reclaim_checkpoints_the_wal_and_gives_its_space_back(path: Path) -> None:
    with Outbox.open(path) as outbox:
        outbox.accept(messages(0, 200))
        outbox.ack(range(1, 201))
        wal = path.with_name(path.name + "-wal")
        assert wal.stat().st_size > 0
        outbox.reclaim()
        assert wal.stat().st_size == 0
        assert outbox.accept(messages(200, 1)).seqs == (201,)


def test_bad_arguments_are_refused_before_any_write(path: Path) -> None:
    with pytest.raises(ValueError, match="max_events"):
        Outbox.open(path, max_events=0)
    with pytest.raises(ValueError, match="when_full"):
        Outbox.open(path, when_full="drop-random")  # type: ignore[arg-type]
    with Outbox.open(path) as outbox:
        with pytest.raises(ValueError, match="qos"):
            outbox.accept([message(0), message(1, qos=3)])
        with pytest.raises(TypeError, match="payload"):
            outbox.accept([message(2, payload="text")])  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="limit"):
            outbox.pending(limit=0)
        assert outbox.stats().depth == 0
        assert outbox.stats().commits == 0


def test_payloads_never_show_in_reprs(path: Path) -> None:
    with Outbox.open(path) as outbox:
        outbox.accept([message(0, payload=SECRET)])
        shown = repr(outbox) + repr(everything(outbox)) + repr(outbox.stats())
    assert "Ada" not in shown
    assert "closed" in repr(outbox)


# --------------------------------------------------------------------------- property


@dataclass
class Model:
    """The outbox as a plain list, with the documented bound policies."""

    max_events: int
    max_bytes: int | None
    when_full: WhenFull
    rows: list[tuple[int, str, bytes, float, int]] = field(default_factory=list)
    next_seq: int = 1
    dropped: int = 0
    parked: int = 0

    def holds(self, rows: list[Any]) -> bool:
        size = sum(len(row[2]) for row in rows)
        return len(rows) <= self.max_events and (self.max_bytes is None or size <= self.max_bytes)

    def accept(self, batch: list[tuple[str, bytes]], now: float) -> tuple[tuple[int, ...], int]:
        fitting = [m for m in batch if self.max_bytes is None or len(m[1]) <= self.max_bytes]
        candidates = [(0, event_id, payload, now, 0) for event_id, payload in fitting]
        if self.when_full == "drop-newest":
            kept = list(self.rows)
            new: list[tuple[int, str, bytes, float, int]] = []
            for row in candidates:
                if not self.holds([*kept, *new, row]):
                    break
                new.append(row)
        else:
            combined = [*self.rows, *candidates]
            while not self.holds(combined):
                combined.pop(0)
            kept = [row for row in combined if row[0] != 0]
            new = [row for row in combined if row[0] == 0]
        seqs = tuple(range(self.next_seq, self.next_seq + len(new)))
        self.next_seq += len(new)
        dropped = len(self.rows) - len(kept) + len(batch) - len(new)
        self.rows = kept + [(seq, *row[1:]) for seq, row in zip(seqs, new, strict=True)]
        self.dropped += dropped
        return seqs, dropped

    def ack(self, seqs: list[int]) -> int:
        before = len(self.rows)
        self.rows = [row for row in self.rows if row[0] not in set(seqs)]
        return before - len(self.rows)

    def park(self, seq: int) -> None:
        if any(row[0] == seq for row in self.rows):
            self.parked += 1
        self.rows = [row for row in self.rows if row[0] != seq]

    def retry(self, seq: int) -> None:
        self.rows = [(s, e, p, a, n + (s == seq)) for s, e, p, a, n in self.rows]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("accept"), st.lists(st.binary(max_size=24), max_size=6)),
        st.tuples(st.just("ack"), st.lists(st.integers(1, 40), max_size=5)),
        st.tuples(st.just("park"), st.integers(1, 40)),
        st.tuples(st.just("retry"), st.integers(1, 40)),
        st.tuples(st.just("reopen"), st.none()),
    ),
    max_size=30,
)


@given(
    operations=operations,
    max_events=st.integers(1, 8),
    max_bytes=st.none() | st.integers(1, 80),
    when_full=st.sampled_from(["drop-oldest", "drop-newest"]),
)
def test_any_interleaving_keeps_pending_equal_to_the_model(
    operations: list[tuple[str, Any]], max_events: int, max_bytes: int | None, when_full: WhenFull
) -> None:
    model = Model(max_events, max_bytes, when_full)
    now = [0.0]
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "outbox.sqlite3"

        def reopen() -> Outbox:
            return Outbox.open(
                path,
                max_events=max_events,
                max_bytes=max_bytes,
                when_full=when_full,
                synchronous="normal",
                clock=lambda: now[0],
            )

        outbox = reopen()
        try:
            for step, (name, argument) in enumerate(operations):
                now[0] = float(step)
                if name == "accept":
                    batch = [(f"e{step}-{i}", payload) for i, payload in enumerate(argument)]
                    accepted = outbox.accept([Message("t", p, e) for e, p in batch])
                    assert (accepted.seqs, accepted.dropped) == model.accept(batch, now[0])
                elif name == "ack":
                    assert outbox.ack(argument) == model.ack(argument)
                elif name == "park":
                    outbox.park(argument, "refused")
                    model.park(argument)
                elif name == "retry":
                    outbox.retry_later(argument)
                    model.retry(argument)
                else:
                    outbox.close()
                    outbox = reopen()
                rows = everything(outbox)
                assert [
                    (r.seq, r.message.event_id, r.message.payload, r.accepted_at, r.attempts)
                    for r in rows
                ] == model.rows
                stats = outbox.stats()
                assert stats.depth == len(model.rows)
                assert stats.payload_bytes == sum(len(row[2]) for row in model.rows)
                assert stats.oldest_accepted_at == (model.rows[0][3] if model.rows else None)
                assert (stats.dropped, stats.parked) == (model.dropped, model.parked)
        finally:
            outbox.close()


# --------------------------------------------------------------------------- asyncio writer


def test_group_commit_takes_everything_queued_in_one_transaction(path: Path) -> None:
    async def scenario() -> None:
        async with await AsyncOutbox.open(path, max_batch=1000, queue_size=5000) as outbox:
            for item in messages(0, 2500):
                await outbox.put(item)
            assert outbox.queued == 2500
            writer = asyncio.create_task(outbox.run())
            await outbox.flush()
            assert outbox.stats().commits == 3  # 1000 + 1000 + 500: one fsync per batch
            assert outbox.changed.is_set()
            rows = await outbox.pending(limit=10_000)
            assert event_ids(rows) == [f"ev-{n}" for n in range(2500)]
            assert outbox.queued == 0
            writer.cancel()
            await asyncio.wait([writer])

    asyncio.run(scenario())


def test_a_steady_stream_commits_in_far_fewer_transactions_than_events(path: Path) -> None:
    async def scenario() -> None:
        async with await AsyncOutbox.open(path, synchronous="normal") as outbox:
            writer = asyncio.create_task(outbox.run())
            for n in range(2000):
                await outbox.put(message(n))
                if n % 50 == 0:
                    await asyncio.sleep(0)  # let the writer take what has gathered
            await outbox.flush()
            assert outbox.stats().depth == 2000
            assert outbox.stats().commits <= 100
            writer.cancel()
            await asyncio.wait([writer])

    asyncio.run(scenario())


def test_put_waits_while_the_queue_is_full(path: Path) -> None:
    async def scenario() -> None:
        async with await AsyncOutbox.open(path, queue_size=3) as outbox:
            for item in messages(0, 3):
                await outbox.put(item)
            blocked = asyncio.create_task(outbox.put(message(3)))
            for _ in range(10):
                await asyncio.sleep(0)
            assert not blocked.done()  # backpressure, not a silent drop
            writer = asyncio.create_task(outbox.run())
            await blocked
            await outbox.flush()
            assert event_ids(await outbox.pending(limit=10)) == ["ev-0", "ev-1", "ev-2", "ev-3"]
            writer.cancel()
            await asyncio.wait([writer])

    asyncio.run(scenario())


def _query_only(outbox: Outbox, on: bool) -> None:
    """SQLITE_READONLY for every write (as a file system remounted read-only gives)."""
    assert outbox._connection is not None
    outbox._connection.execute(f"PRAGMA query_only = {int(on)}")


def test_a_failing_ack_waits_for_the_storage_instead_of_failing_the_publisher(
    path: Path,
) -> None:
    async def scenario() -> None:
        outbox = await AsyncOutbox.open(path, retry_base_s=0.001, retry_cap_s=0.002)
        async with outbox:
            writer = asyncio.create_task(outbox.run())
            for n in range(2):
                await outbox.put(message(n))
            await outbox.flush()
            await outbox._call(_query_only, outbox._outbox, True)  # noqa: FBT003
            with capture_logs() as logs:
                ack = asyncio.create_task(outbox.ack([1]))
                while sum(e["event"] == "outbox_settle_failed" for e in logs) < 3:  # noqa: ASYNC110
                    await asyncio.sleep(0.001)
                failing = outbox.health
                assert failing is OutboxHealth.RETRYING
                assert getattr(outbox.last_error, "reason", None) is OutboxErrorReason.READ_ONLY
                assert not ack.done()
                await outbox._call(_query_only, outbox._outbox, False)  # noqa: FBT003
                assert await ack == 1
            assert outbox.health is OutboxHealth.OK
            assert outbox.last_error is None
            assert event_ids(await outbox.pending(limit=10)) == ["ev-1"]
            assert logs[0]["reason"] == "read-only"
            assert any(e["event"] == "outbox_settle_recovered" for e in logs)
            writer.cancel()
            await asyncio.wait([writer])

    asyncio.run(scenario())


def test_a_failing_commit_is_retried_without_losing_or_repeating_the_batch(path: Path) -> None:
    async def scenario() -> None:
        outbox = await AsyncOutbox.open(
            path, queue_size=10, max_batch=5, retry_base_s=0.001, retry_cap_s=0.002
        )
        async with outbox:
            await outbox.put(message(0))
            writer = asyncio.create_task(outbox.run())
            await outbox.flush()
            await outbox._call(fill_the_disk, outbox._outbox)
            with capture_logs() as logs:
                for n in range(1, 16):  # 5 held by the writer + 10 queued
                    await outbox.put(message(n, payload=SECRET * 50))
                blocked = asyncio.create_task(outbox.put(message(16)))
                while outbox.failures < 3:  # noqa: ASYNC110 - polls the writer's counter
                    await asyncio.sleep(0.001)
                failing = outbox.health
                assert failing is OutboxHealth.RETRYING
                assert getattr(outbox.last_error, "reason", None) is OutboxErrorReason.DISK_FULL
                assert not blocked.done()
                assert outbox.queued == 15
                assert outbox.stats().depth == 1
                await outbox._call(free_the_disk, outbox._outbox)
                await blocked
                await outbox.flush()
            assert outbox.health is OutboxHealth.OK
            assert outbox.last_error is None
            rows = await outbox.pending(limit=100)
            assert event_ids(rows) == [f"ev-{n}" for n in range(17)]
            failed = [entry for entry in logs if entry["event"] == "outbox_commit_failed"]
            assert failed
            assert failed[0]["reason"] == "disk-full"
            assert any(entry["event"] == "outbox_commit_recovered" for entry in logs)
            assert "Ada" not in repr(logs)
            writer.cancel()
            await asyncio.wait([writer])

    asyncio.run(scenario())


def test_aclose_commits_what_is_still_queued(path: Path) -> None:
    async def scenario() -> None:
        outbox = await AsyncOutbox.open(path)
        for item in messages(0, 7):
            await outbox.put(item)
        await outbox.aclose()  # no writer ever ran
        assert outbox.health is OutboxHealth.CLOSED
        with pytest.raises(RuntimeError, match="closing"):
            await outbox.put(message(7))
        await outbox.aclose()

    asyncio.run(scenario())
    with Outbox.open(path) as outbox:
        assert event_ids(everything(outbox)) == [f"ev-{n}" for n in range(7)]


@pytest.mark.parametrize("yields", [0, 1, 2, 3, 5, 8, 13])
def test_cancelling_the_writer_anywhere_neither_loses_nor_repeats(path: Path, yields: int) -> None:
    async def scenario() -> None:
        outbox = await AsyncOutbox.open(path, max_batch=7)
        writer = asyncio.create_task(outbox.run())
        for item in messages(0, 40):
            await outbox.put(item)
        for _ in range(yields):
            await asyncio.sleep(0)
        writer.cancel()
        await asyncio.wait([writer])
        await outbox.aclose()

    asyncio.run(scenario())
    with Outbox.open(path) as outbox:
        assert event_ids(everything(outbox)) == [f"ev-{n}" for n in range(40)]


def test_the_publisher_side_runs_on_the_worker(path: Path) -> None:
    async def scenario() -> None:
        async with await AsyncOutbox.open(path, clock=lambda: 7.0) as outbox:
            writer = asyncio.create_task(outbox.run())
            for item in messages(0, 4):
                await outbox.put(item)
            await outbox.flush()
            rows = await outbox.pending(after=1, limit=2)
            assert [r.seq for r in rows] == [2, 3]
            assert await outbox.ack([1, 2]) == 2
            await outbox.retry_later(3)
            await outbox.park(4, "0x87")
            [row] = await outbox.pending(limit=10)
            assert (row.seq, row.attempts, row.accepted_at) == (3, 1, 7.0)
            stats = outbox.stats()
            assert (stats.depth, stats.parked) == (1, 1)
            assert "Ada" not in repr(outbox)
            writer.cancel()
            await asyncio.wait([writer])

    asyncio.run(scenario())


def test_put_refuses_a_bad_message_at_once(path: Path) -> None:
    async def scenario() -> None:
        async with await AsyncOutbox.open(path) as outbox:
            with pytest.raises(ValueError, match="qos"):
                await outbox.put(message(0, qos=5))
            assert outbox.queued == 0

    asyncio.run(scenario())


def test_opening_errors_surface_and_leave_no_thread(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    path.write_bytes(b"not a database" * 512)
    path.chmod(0o600)

    async def scenario() -> None:
        with pytest.raises(OutboxError) as caught:
            await AsyncOutbox.open(path)
        assert caught.value.reason is OutboxErrorReason.CORRUPT

    asyncio.run(scenario())
