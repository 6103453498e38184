"""What the outbox holds and the publisher sends: one MQTT message carrying one event."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, repr=False)
class Message:
    """A message to publish: its topic, its payload (JSON bytes) and the event's stable id.

    ``event_id`` is the consumers' dedup key; it also travels as an MQTT 5 user property. The
    repr leaves out the payload (it names customers).
    """

    topic: str
    payload: bytes
    event_id: str
    qos: int = 1
    retain: bool = False

    def __repr__(self) -> str:
        return (
            f"Message(topic={self.topic!r}, event_id={self.event_id!r}, "
            f"payload=<{len(self.payload)} bytes>, qos={self.qos}, retain={self.retain})"
        )


@dataclass(frozen=True, slots=True, repr=False)
class Stored:
    """A message accepted by the outbox: ``seq`` orders acceptance (it only grows)."""

    seq: int
    message: Message
    accepted_at: float
    attempts: int = 0

    def __repr__(self) -> str:
        return f"Stored(seq={self.seq}, {self.message!r}, attempts={self.attempts})"
