"""The outbox's values (what a commit did, its figures, its bound) and argument checks.

Bad arguments are the caller's bug, not the storage's: they raise ``ValueError``/``TypeError``
before a transaction starts, so the asyncio writer can check a message when it is put and never
retries a batch that could not be stored whatever the disk did.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gateway.delivery.message import Message

WhenFull = Literal["drop-oldest", "drop-newest"]
"""What a full outbox does: evict its oldest rows, or refuse the newest events."""


@dataclass(frozen=True, slots=True)
class Accepted:
    """What :meth:`Outbox.accept` did with a batch.

    ``seqs`` are the sequence numbers of the batch's stored events, in batch order (an event
    refused or evicted by the bound has none). ``dropped`` counts every event the bound cost in
    this call: older rows evicted plus events of the batch not stored.
    """

    seqs: tuple[int, ...]
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """A snapshot of the outbox's figures, as of its last commit.

    ``depth`` rows wait with ``payload_bytes`` of payload; ``oldest_accepted_at`` is when the
    lowest-seq row (the one waiting longest) was accepted, ``None`` when empty.
    ``dropped`` and ``parked`` are totals since the file was created (they survive restarts, as
    Prometheus counters should); ``commits`` counts this process's write transactions (group
    commit shows as far fewer commits than events).
    """

    depth: int
    payload_bytes: int
    oldest_accepted_at: float | None
    dropped: int
    parked: int
    max_events: int
    max_bytes: int | None
    commits: int = 0


@dataclass(frozen=True, slots=True)
class Bound:
    """The outbox's limits: ``max_events`` rows and, if set, ``max_bytes`` of payload."""

    max_events: int
    max_bytes: int | None

    def holds(self, count: int, size: int) -> bool:
        """Whether ``count`` rows holding ``size`` payload bytes are within the bound."""
        return count <= self.max_events and (self.max_bytes is None or size <= self.max_bytes)

    def fits_alone(self, message: Message) -> bool:
        """Whether the message could be stored at all (its payload alone within ``max_bytes``)."""
        return self.max_bytes is None or len(message.payload) <= self.max_bytes


def check_options(
    max_events: int,
    max_bytes: int | None,
    when_full: str,
    synchronous: str,
    max_parked: int,
) -> None:
    """Refuse options the outbox cannot honour (``ValueError``), before touching the disk."""
    if max_events < 1:
        msg = f"max_events must be at least 1, not {max_events}"
        raise ValueError(msg)
    if max_bytes is not None and max_bytes < 1:
        msg = f"max_bytes must be at least 1 (or None), not {max_bytes}"
        raise ValueError(msg)
    if when_full not in {"drop-oldest", "drop-newest"}:
        msg = f"when_full must be 'drop-oldest' or 'drop-newest', not {when_full!r}"
        raise ValueError(msg)
    if synchronous not in {"full", "normal"}:
        msg = f"synchronous must be 'full' or 'normal', not {synchronous!r}"
        raise ValueError(msg)
    if max_parked < 0:
        msg = f"max_parked must not be negative, not {max_parked}"
        raise ValueError(msg)


def check_message(message: object) -> None:
    """Refuse what the table's constraints would refuse, before the transaction starts."""
    if not isinstance(message, Message):
        msg = f"expected a Message, got {type(message).__name__}"
        raise TypeError(msg)
    payload: object = message.payload
    retain: object = message.retain
    if not isinstance(payload, bytes):
        msg = f"payload must be bytes, got {type(payload).__name__} (event {message.event_id!r})"
        raise TypeError(msg)
    if message.qos not in {0, 1, 2} or not isinstance(retain, bool):
        msg = f"qos must be 0, 1 or 2 and retain a bool (event {message.event_id!r})"
        raise ValueError(msg)
    if not message.topic or not message.event_id:
        msg = f"topic and event_id must not be empty ({message!r})"
        raise ValueError(msg)


def check_seq(seq: object) -> int:
    """The sequence number, if it is an int."""
    if not isinstance(seq, int) or isinstance(seq, bool):
        msg = f"seq must be an int, got {type(seq).__name__}"
        raise TypeError(msg)
    return seq
