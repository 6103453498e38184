"""The gateway itself dies: SIGKILLed under load (a power cut, an OOM kill) and started again.

Each run plays the store scene with its own seed, so every run's events are its own and the
events of a killed run that arrive later can only have come from the outbox. What counts:

- **accepted**: SQLite's AUTOINCREMENT high-water mark of the outbox (every event ever
  committed, delivered or not); every event also carries its ``seq`` as an MQTT 5 user property;
- **lost**: accepted events whose ``seq`` never arrived (must be 0);
- **duplicated**: copies beyond the first (bounded by the in-flight window per crash, and
  byte-identical, so ``event_id`` removes them).
"""

from __future__ import annotations

import functools
import random
from typing import TYPE_CHECKING

from tests.faults.gateway_run import (
    WINDOW,
    GatewayProcess,
    accepted_total,
    arrival_order,
    duplicates,
    expected_by_seed,
    first_arrivals,
    outbox_seqs,
    outbox_state,
    settles,
    status_values,
    store_scene,
)
from tests.faults.report import long_mode
from tests.mosquitto import Mosquitto, Subscriber, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.faults.report import FaultReport

TOPICS = "beacon-gateway/v1/store/store-sim/#"
DELIVERY_WAIT_S = 120.0
"""How long a backlog may take to arrive before the test gives up (never a timing claim)."""


def test_gateway_sigkilled_and_restarted_under_load_loses_no_accepted_event(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """Kill the gateway mid-stream again and again: every accepted event still arrives."""
    kills = 50 if long_mode() else 10
    scene = store_scene(tmp_path, 600)
    seeds = list(range(101, 101 + kills + 1))  # the last run is not killed
    expected = expected_by_seed(scene, seeds)
    produced_by = {str(e["event_id"]): seed for seed, events in expected.items() for e in events}
    rng = random.Random(11)
    with Mosquitto() as broker, Subscriber(broker.port, [TOPICS]) as subscriber:

        def arrived_from(seed: int, wanted: int) -> bool:
            ids = arrival_order(subscriber.messages())
            return sum(produced_by.get(i) == seed for i in ids) >= wanted

        for seed in seeds[:-1]:
            with GatewayProcess(scene, broker.port, tmp_path, seed=seed, speed=40.0) as gateway:
                # Kill at a random point once this run's own events flow (the previous run's
                # backlog goes first).
                wait_until(
                    functools.partial(arrived_from, seed, rng.randint(3, 25)),
                    f"events of run {seed}",
                    limit_s=DELIVERY_WAIT_S,
                )
                gateway.kill()
            assert outbox_state(gateway.outbox)["dropped_total"] == 0
        with GatewayProcess(scene, broker.port, tmp_path, seed=seeds[-1], speed=40.0) as last:
            assert last.wait() == 0, last.log_text()[-3000:]
        accepted = accepted_total(last.outbox)
        kept = outbox_seqs(last.outbox)  # not delivered within the last stop's flush: kept

        def accounted() -> set[int]:
            return {seq for seq, _ in first_arrivals(subscriber.messages())} | kept

        settles(lambda: len(accounted()) >= accepted, DELIVERY_WAIT_S)
        wait_until(lambda: status_values(subscriber.messages())[-1:] == ["offline"], "offline")
        received = subscriber.messages()
        seqs = accounted()
    arrived = set(arrival_order(received))
    copies = duplicates(received)
    lost = accepted - len(seqs & set(range(1, accepted + 1)))
    fault_report.record(
        "gateway SIGKILLed and restarted under load",
        f"store scene at 40x, gateway SIGKILLed mid-stream {kills} times, each restart another "
        "seed, the last run to its end",
        runs=len(seeds),
        events_accepted=accepted,
        events_received=len(arrived),
        kept_in_outbox=len(kept),
        lost=lost,
        duplicated=copies.count,
        duplicate_bound=kills * WINDOW,
        duplicates_identical=str(copies.identical),
        unexpected=len(arrived - produced_by.keys()),
    )
    assert lost == 0
    assert seqs == set(range(1, accepted + 1))
    assert arrived <= produced_by.keys(), "only events the scene produces"
    assert all(any(produced_by[i] == seed for i in arrived) for seed in seeds)
    assert copies.identical
    assert copies.count <= kills * WINDOW
