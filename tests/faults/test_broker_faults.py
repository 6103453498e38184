"""The broker goes away under load: killed and restarted, or gone for a long outage.

Every test plays a scene through a real gateway process into a real mosquitto, with a
persistent-session subscriber, and compares what arrived with what the gateway produced (the
same scene and seed printed with ``--stdout``: event ids are stable). Counted, not eyeballed;
the figures go to the fault report (docs/reliability.md).
"""

from __future__ import annotations

import functools
import itertools
import random
import time
from typing import TYPE_CHECKING

import pytest

from tests.faults.gateway_run import (
    WINDOW,
    GatewayProcess,
    accepted_total,
    arrival_order,
    duplicates,
    expected_events,
    first_arrivals,
    outbox_seqs,
    outbox_state,
    settles,
    status_values,
    store_scene,
)
from tests.faults.measure import rss_kib
from tests.faults.report import long_mode
from tests.mosquitto import Mosquitto, Subscriber, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from tests.faults.report import FaultReport

TOPICS = "beacon-gateway/v1/store/store-sim/#"
LOG_LEVEL = "BEACON_GATEWAY__LOGGING__LEVEL"
DURABLE_BROKER = ("autosave_interval 1", "autosave_on_changes true")
"""mosquitto persistence that saves after every change (docs/mqtt.md, "The broker's own
durability")."""
DELIVERY_WAIT_S = 120.0
"""How long a backlog may take to arrive before the test gives up (never a timing claim)."""


def _ids(subscriber: Subscriber) -> set[str]:
    return set(arrival_order(subscriber.messages()))


def _at_least(subscriber: Subscriber, count: int) -> bool:
    return len(_ids(subscriber)) >= count


def test_broker_killed_and_restarted_under_load_loses_nothing(
    tmp_path: Path, fault_report: FaultReport
) -> None:
    """SIGKILL the broker again and again while events flow: the gateway loses nothing."""
    cycles = 50 if long_mode() else 10
    scene = store_scene(tmp_path, 3600 if long_mode() else 900)
    expected = expected_events(scene)
    expected_ids = [str(event["event_id"]) for event in expected]
    rng = random.Random(7)
    # mosquitto acknowledges a QoS 1 publish once it holds it in memory, and by default saves
    # that memory every 30 minutes: a SIGKILL then loses messages it had acknowledged (and the
    # gateway had deleted). A broker that must survive its own crash saves on every change.
    with (
        Mosquitto(extra=DURABLE_BROKER) as broker,
        Subscriber(broker.port, [TOPICS]) as subscriber,
        GatewayProcess(
            scene, broker.port, tmp_path, speed=30.0, settings={LOG_LEVEL: "debug"}
        ) as gateway,
    ):
        broker.save()  # the subscriber's session survives the first SIGKILL
        for cycle in range(cycles):
            # Load flows: wait for fresh events through the restarted broker before each kill.
            target = len(_ids(subscriber)) + rng.randint(3, 15)
            wait_until(
                functools.partial(_at_least, subscriber, target),
                f"events flowing before kill {cycle + 1}",
                limit_s=DELIVERY_WAIT_S,
            )
            assert gateway.running(), gateway.log_text()[-3000:]
            broker.kill()
            time.sleep(rng.uniform(0.0, 1.0))  # down for a while: the outbox takes the load
            broker.start()
        assert gateway.wait() == 0, gateway.log_text()[-3000:]
        accepted = accepted_total(gateway.outbox)
        kept = outbox_seqs(gateway.outbox)  # not delivered within the stop's flush: kept

        def accounted() -> set[int]:
            return {seq for seq, _ in first_arrivals(subscriber.messages())} | kept

        settles(lambda: len(accounted()) >= accepted, DELIVERY_WAIT_S)
        received = subscriber.messages()
        seqs = accounted()
        acked = gateway.acked_seqs()
    arrived = arrival_order(received)
    copies = duplicates(received)
    missing = set(range(1, accepted + 1)) - seqs
    # A missing event the broker had acknowledged is the broker's loss (mosquitto acknowledges
    # before it saves); one it had not is ours, and there must be none.
    lost_by_broker = len(missing & acked)
    fault_report.record(
        "broker killed and restarted under load",
        f"store scene at 30x, mosquitto (autosave on every change) SIGKILLed and restarted "
        f"{cycles} times",
        events_produced=len(expected_ids),
        events_accepted=accepted,
        events_received=len(set(arrived)),
        kept_in_outbox=len(kept),
        lost_by_gateway=len(missing) - lost_by_broker,
        lost_by_broker_after_its_puback=lost_by_broker,
        duplicated=copies.count,
        duplicates_identical=str(copies.identical),
        unexpected=len(set(arrived) - set(expected_ids)),
    )
    assert accepted == len(expected_ids)
    assert missing <= acked, f"lost by the gateway (never acknowledged): {missing - acked}"
    assert set(arrived) <= set(expected_ids)
    # Re-sends: the gateway's (at most its window per kill) and the restarted broker's own
    # (it delivers again what its saved sessions still hold): all byte-identical.
    assert copies.identical
    assert status_values(received)[-1] == "offline"


@pytest.mark.parametrize("when_full", ["drop-oldest", "drop-newest"])
def test_a_long_outage_keeps_the_configured_backlog_and_delivers_it_in_order(
    tmp_path: Path, fault_report: FaultReport, when_full: str
) -> None:
    """The broker is away while the outbox overflows: exactly the policy's events arrive."""
    capacity = 1000 if long_mode() else 100
    scene = store_scene(tmp_path, 7200 if long_mode() else 1200)
    expected = [str(event["event_id"]) for event in expected_events(scene)]
    assert len(expected) > 3 * capacity, "the scene must overflow the outbox"
    settings = {
        "BEACON_GATEWAY__OUTBOX__MAX_EVENTS": str(capacity),
        "BEACON_GATEWAY__OUTBOX__WHEN_FULL": when_full,
    }
    rss: list[int] = []
    with Mosquitto() as broker:
        with Subscriber(broker.port, [TOPICS]):
            pass  # the persistent session exists; messages queue for it while it is away
        broker.stop()
        with GatewayProcess(scene, broker.port, tmp_path, speed=60.0, settings=settings) as gw:
            # The outage: the outbox fills and then drops, by the policy, until twice its size.
            def overflowing() -> bool:
                sample = gw.metric("beacon_gateway_outbox_dropped_total")
                if sample and gw.running():  # full from here on: memory must stay flat
                    rss.append(rss_kib(gw.pid))
                return sample is not None and sample >= 2 * capacity

            wait_until(overflowing, "the outbox to overflow", limit_s=DELIVERY_WAIT_S)
            dropped_during_outage = gw.metric("beacon_gateway_outbox_dropped_total")
            broker.start()
            with Subscriber(broker.port, [TOPICS]) as subscriber:
                assert gw.wait() == 0, gw.log_text()[-3000:]
                state = outbox_state(gw.outbox)
                dropped = state["dropped_total"]
                accepted = accepted_total(gw.outbox)
                wait_until(
                    lambda: len(_ids(subscriber)) >= len(expected) - dropped,
                    "the backlog and the rest of the run",
                    limit_s=DELIVERY_WAIT_S,
                )
                received = subscriber.messages()
    arrivals = first_arrivals(received)
    seqs = [seq for seq, _ in arrivals]
    arrived = {event_id for _, event_id in arrivals}
    # drop-oldest deletes numbered rows (a gap at the start); drop-newest refuses events before
    # they are numbered, so what was kept is numbered without a gap. Once the broker is back,
    # drop-oldest may evict a row already handed to it (the oldest rows are the ones in flight):
    # counted as dropped, yet delivered; at most a window of them.
    first = dropped + 1 if when_full == "drop-oldest" else 1
    kept = set(range(first, accepted + 1))
    evicted_in_flight = [seq for seq in seqs if seq < first]
    quarter = max(len(rss) // 4, 1)
    fault_report.record(
        f"long broker outage, outbox {when_full}",
        f"broker down while the outbox (max_events={capacity}) overflowed by "
        f"{dropped_during_outage:.0f} events, then back; store scene at 60x",
        events_produced=len(expected),
        events_accepted=accepted,
        dropped_by_policy=dropped,
        evicted_in_flight_yet_delivered=len(evicted_in_flight),
        events_received=len(arrived),
        lost=len(kept - set(seqs)),
        out_of_order=sum(b <= a for a, b in itertools.pairwise(seqs)),
        duplicated=duplicates(received).count,
        rss_kib_when_full=max(rss[:quarter]),
        rss_kib_max=max(rss),
        rss_samples=len(rss),
    )
    assert state["depth"] == 0
    assert arrived <= set(expected)
    assert kept <= set(seqs), "every event the policy kept arrives"
    assert seqs == sorted(seqs), "in order"
    assert len(arrived) + dropped >= len(expected), "only the policy may drop"
    assert len(evicted_in_flight) <= WINDOW
    # Bounded memory: once full, the rest of the outage (all of it dropping) grew nothing that
    # scales with the backlog; 8 MiB is allocator noise, far below one event per KiB dropped.
    assert max(rss) - max(rss[:quarter]) < 8 * 1024
