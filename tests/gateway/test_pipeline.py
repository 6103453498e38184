"""The pipeline's clock: time is settled on a fixed grid, whatever else is heard."""

from __future__ import annotations

import random

from eid import frames
from gateway.core.identity import Identifier
from gateway.core.pipeline import CATCH_UP_LIMIT_S, Pipeline
from gateway.core.presence import ChangeKind, PresenceChange, PresenceEngine, ZoneSpec
from gateway.core.sighting import Sighting

NAMESPACE = bytes(10)
SHELF = bytes.fromhex("0102030405ff")
START = 1_767_225_600.0


def pipeline() -> Pipeline:
    identifier = Identifier(uid_beacons={NAMESPACE + SHELF: "shelf-1"})
    return Pipeline(identifier, PresenceEngine([ZoneSpec("a", frozenset({"gw-a"}))]))


def uid(instance: bytes, at: float, address: str = "C0:00:00:00:00:01") -> Sighting:
    data = frames.encode(frames.UidFrame(-12, NAMESPACE, instance))
    return Sighting(address=address, rssi=-60, service_data=data, at=at, gateway="gw-a")


def visit() -> list[Sighting]:
    """A registered beacon that stays 30 s and goes quiet."""
    return [uid(SHELF, START + 0.37 + second) for second in range(30)]


def run(sightings: list[Sighting], end: float) -> list[PresenceChange]:
    engine = pipeline()
    outputs = [o for s in sightings for o in engine.process(s)] + engine.tick(end)
    return [o for o in outputs if isinstance(o, PresenceChange)]


def test_unknown_traffic_does_not_move_what_time_decides() -> None:
    quiet = run(visit(), START + 200.0)
    rng = random.Random(1)
    noise = [
        uid(
            rng.randbytes(6),
            START + rng.uniform(0, 200),
            f"D0:00:00:00:{n // 256:02X}:{n % 256:02X}",
        )
        for n in range(3000)
    ]
    busy = run(sorted(visit() + noise, key=lambda s: s.at), START + 200.0)
    assert busy == quiet
    exit_ = next(change for change in quiet if change.kind == ChangeKind.EXIT)
    assert exit_.decided_at == round(exit_.decided_at)  # on the one-second grid
    assert exit_.decided_at > exit_.at


def test_a_clock_set_forward_by_years_is_settled_at_once() -> None:
    engine = pipeline()
    for sighting in visit():
        engine.process(sighting)
    later = START + 10 * 365 * 86_400.0  # a Pi without a real-time clock meeting NTP
    changes = [c for c in engine.tick(later) if isinstance(c, PresenceChange)]
    assert [c.kind for c in changes] == [ChangeKind.EXIT]
    assert all(c.decided_at >= later - CATCH_UP_LIMIT_S for c in changes)
    assert engine.tick(later - 5.0) == []  # time settled is not settled again
