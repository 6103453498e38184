"""The examples end to end: a real mosquitto, the real gateway playing a scene, the example.

Each example runs as a child process, started (and subscribed) before the gateway; the gateway
plays a finite scene to its end, and a test subscriber records the same stream to check the
example's output against. The airport scene is an hour of virtual time, too much CPU for a
test, so the test plays a shortened copy of it: a quarter of an hour, fewer bags, short stays
and many bags left on a carousel; ``--still-after 5`` then catches those.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from tests.examples.running import REPO, WAIT_S, Example, run_gateway
from tests.mosquitto import Mosquitto, Received, Subscriber, make_test_ca, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SPEED = 300.0
"""The store's 30 minutes in 6 s, the shortened airport's 15 in 3 (plus start-up)."""
PREFIX = "beacon-gateway/v1"
STILL_AFTER_MIN = 5
AIRPORT_SHORTER = {
    "duration_s = 3600": "duration_s = 900",
    "arrivals_per_minute = 12.0": "arrivals_per_minute = 2.0",
    "initial = 20": "initial = 10",
    "dwell_s = [300.0, 900.0]": "dwell_s = [60.0, 120.0]",  # sorting
    "dwell_s = [60.0, 900.0]": "dwell_s = [60.0, 120.0]",  # on the carousel
    "stay = 0.03": "stay = 0.3",  # left on the carousel until the end
}


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as running:
        yield running


def is_subscribed(example: Example) -> bool:
    return any("subscribed at QoS 1" in line for line in example.stderr())


def offline(site: str) -> str:
    return f"gateway {site}/{site}-sim: offline"


def events(messages: list[Received]) -> list[dict[str, Any]]:
    return [json.loads(m.payload) for m in messages if not m.topic.endswith("/status")]


def saw_offline(subscriber: Subscriber) -> bool:
    status = [m for m in subscriber.messages() if m.topic.endswith("/status")]
    return bool(status) and json.loads(status[-1].payload)["status"] == "offline"


# --------------------------------------------------------------------------- store


def test_store_offers_turns_the_store_scenes_offer_triggers_into_offers(
    broker: Mosquitto, tmp_path: Path
) -> None:
    offers_app = "store/offers"
    topics = [f"{PREFIX}/store/+/trigger/#", f"{PREFIX}/store/+/status", f"{offers_app}/#"]
    example = Example(
        "store_offers.py",
        *("--port", str(broker.port), "--client-id", "offers-e2e"),
        *("--publish-to", f"{offers_app}/{{customer}}"),
    )
    with Subscriber(broker.port, topics) as watcher, example:
        example.wait_for(is_subscribed, "the example's subscription")
        run_gateway(REPO / "configs/scenes/store.toml", broker.port, tmp_path, speed=SPEED)
        example.wait_for(lambda e: offline("store") in e.stdout(), "the gateway's offline status")
        printed = [line for line in example.stdout() if line.startswith("offer  ")]
        wait_until(
            lambda: len(watcher.messages(offers_app)) >= len(printed) and saw_offline(watcher),
            "the published offers and the offline status at the test's subscriber",
            limit_s=WAIT_S,
        )
        assert example.stop() == 0, example.transcript()

    triggers = {event["event_id"]: event for event in events(watcher.messages(PREFIX))}
    offer_triggers = {i: e for i, e in triggers.items() if e["action"] == "offer"}
    published = watcher.messages(offers_app)
    offers = [json.loads(m.payload) for m in published]
    assert printed, example.transcript()
    assert len(offers) == len(printed)
    assert all(m.qos == 1 and not m.retain for m in published)
    assert len({o["offer_id"] for o in offers}) == len(offers)
    assert len({o["trigger_event_id"] for o in offers}) == len(offers)  # distinct triggers
    for message, offer in zip(published, offers, strict=True):
        cause = offer_triggers[offer["trigger_event_id"]]  # an offer trigger the gateway sent
        assert cause["subject"]["segment"] in {"gold", "silver"}
        assert offer["segment"] == cause["subject"]["segment"]
        assert offer["customer_id"] == cause["subject"]["id"]
        assert message.topic == f"{offers_app}/{offer['customer_id']}"
        assert any(offer["trigger_event_id"] in line for line in printed)
    # The scene is shorter than the cooldown: one offer per customer the gateway offered to.
    assert {o["customer_id"] for o in offers} == {
        e["subject"]["id"] for e in offer_triggers.values()
    }
    greetings = [line for line in example.stdout() if line.startswith("hello  ")]
    assert len(greetings) == sum(e["action"] == "notify" for e in triggers.values())
    assert example.stdout()[-1].startswith(f"offers {len(offers)}, greetings {len(greetings)};")


# --------------------------------------------------------------------------- airport

STILL = re.compile(r"^ALERT still  bag (\S+) .* in (\S+) for \d+ min")


def shortened_airport(directory: Path) -> Path:
    text = (REPO / "configs/scenes/airport.toml").read_text(encoding="utf-8")
    for old, new in AIRPORT_SHORTER.items():
        assert text.count(old) == 1, (
            f"configs/scenes/airport.toml changed: {old!r} is not there once; update "
            "AIRPORT_SHORTER in this test"
        )
        text = text.replace(old, new)
    scene = directory / "airport-short.toml"
    scene.write_text(text, encoding="utf-8")
    return scene


def left_on_a_carousel(scene: Path, directory: Path) -> dict[str, tuple[str, float]]:
    """Ground truth: beacon id -> (carousel, seconds before the end it got there)."""
    truth_path = directory / "truth.json"
    command = [sys.executable, "-m", "firmware_sim", "run", str(scene)]
    subprocess.run(
        [*command, "--out", str(directory / "capture.jsonl"), "--truth", str(truth_path)],
        check=True,
        capture_output=True,
        timeout=WAIT_S * 4,
    )
    truth = json.loads(truth_path.read_text(encoding="utf-8"))
    left = {}
    for subject in truth["subjects"]:
        stays = subject["stays"]
        if stays and stays[-1]["exit"] >= truth["end"] and stays[-1]["zone"].startswith("claim"):
            left[subject["id"]] = (stays[-1]["zone"], truth["end"] - stays[-1]["enter"])
    return left


def table_rows(lines: list[str]) -> dict[str, tuple[int, int]]:
    """The last table's rows: zone -> (bags here, bags that left it)."""
    start = max(i for i, line in enumerate(lines) if line.startswith("bags at "))
    rows = {}
    for line in lines[start + 2 :]:
        if line.startswith("collected "):
            break
        zone, here, _still, left, *_ = line.split()
        rows[zone] = (int(here), int(left))
    return rows


def test_luggage_tracker_follows_the_bags_and_flags_those_left_on_a_carousel(
    broker: Mosquitto, tmp_path: Path
) -> None:
    scene = shortened_airport(tmp_path)
    left_behind = left_on_a_carousel(scene, tmp_path)
    topics = [f"{PREFIX}/airport/+/presence/#", f"{PREFIX}/airport/+/status"]
    example = Example(
        "luggage_tracker.py",
        *("--port", str(broker.port), "--client-id", "luggage-e2e"),
        *("--still-after", str(STILL_AFTER_MIN), "--lost-after", "5"),
    )
    with Subscriber(broker.port, topics) as watcher, example:
        example.wait_for(is_subscribed, "the example's subscription")
        run_gateway(scene, broker.port, tmp_path, speed=SPEED)
        example.wait_for(lambda e: offline("airport") in e.stdout(), "the gateway's offline status")
        wait_until(lambda: saw_offline(watcher), "the offline status at the test's subscriber")
        example.process.send_signal(signal.SIGUSR1)
        example.wait_for(
            lambda e: any(line.startswith("bags at ") for line in e.stdout()), "the table (USR1)"
        )
        assert example.stop() == 0, example.transcript()

    output = example.stdout()
    assert sum(line.startswith("bags at ") for line in output) == 2  # on SIGUSR1, and at exit
    # Last-seen zones: the zone of each bag's last enter or dwell in the stream.
    stream = events(watcher.messages(PREFIX))
    last_zone: dict[str, str] = {}
    beacon_of: dict[str, str] = {}
    for event in stream:
        bag_id = event["subject"]["id"]
        beacon_of[bag_id] = event["subject"]["beacon"]
        if event["type"] != "exit" or bag_id not in last_zone:
            last_zone[bag_id] = event["zone"]
    rows = table_rows(output)
    assert {zone: sum(counts) for zone, counts in rows.items()} == Counter(last_zone.values())
    assert f"{len(last_zone)} known" in next(line for line in output if line.startswith("bags at "))
    # Still: only bags the scene left on a carousel, and every one left there long enough.
    still = {match[1]: match[2] for line in output if (match := STILL.match(line))}
    assert still, example.transcript()
    for bag_id, zone in still.items():
        if zone.startswith("claim"):
            assert beacon_of[bag_id] in left_behind, f"{bag_id} was collected, yet still"
            assert left_behind[beacon_of[bag_id]][0] == zone
    margin_s = 90  # the gateway's enter debounce, a dwell event's period, the sweep
    due = {
        beacon
        for beacon, (_zone, before_end) in left_behind.items()
        if before_end >= STILL_AFTER_MIN * 60 + margin_s
    }
    assert due, "the shortened scene left no bag on a carousel long enough"
    assert due <= {beacon_of[bag_id] for bag_id in still}
    assert not any(line.startswith("ALERT lost") for line in output)  # none go missing here
    assert output[-1].startswith("alerts: ")


# --------------------------------------------------------------------------- subscriber


def test_subscriber_prints_each_event_once_and_survives_malformed_payloads(
    broker: Mosquitto,
) -> None:
    topic = f"{PREFIX}/store/store-sim"
    event = {
        "event_id": "e-1",
        "event_time": "2026-01-01T00:00:05Z",
        "type": "enter",
        "zone": "aisle-2",
        "subject": {"kind": "customer", "id": "cust-00012"},
    }
    example = Example("subscriber.py", "--port", str(broker.port), "--client-id", "sub-e2e")
    with example:
        example.wait_for(is_subscribed, "the example's subscription")
        publisher = paho.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        try:
            for payload in (
                json.dumps(event),
                b"\xff not json",
                b"[1, 2]",
                json.dumps(event),  # a duplicate: dropped by event_id
                json.dumps({**event, "event_id": "e-2", "zone": "checkout", "new": 1}),
                json.dumps({"status": "offline"}),
            ):
                kind = "status" if b"status" in str(payload).encode() else "presence/cust-00012"
                publisher.publish(f"{topic}/{kind}", payload, qos=1).wait_for_publish(WAIT_S)
        finally:
            publisher.disconnect()
            publisher.loop_stop()
        example.wait_for(lambda e: offline("store") in e.stdout(), "the status line")
        assert example.stop() == 0, example.transcript()
    lines = example.stdout()
    printed = [line for line in lines if "cust-00012" in line]
    assert len(printed) == 2, example.transcript()
    assert printed[0].startswith("2026-01-01T00:00:05Z enter     cust-00012       aisle-2")
    assert "checkout" in printed[1]
    assert lines[-1] == offline("store")
    assert sum("skipped a malformed payload" in line for line in example.stderr()) == 2


# --------------------------------------------------------------------------- TLS and a password


def test_the_examples_connect_with_tls_and_a_password_and_give_up_on_a_wrong_one(
    tmp_path: Path,
) -> None:
    pki = make_test_ca(tmp_path / "pki")
    with Mosquitto(users={"offers": "right-password"}, tls=pki) as broker:
        options = [
            *("--host", "localhost", "--port", str(broker.tls_port), "--tls-ca", str(pki.ca_cert)),
            *("--tls-cert", str(pki.client_cert), "--tls-key", str(pki.client_key)),
            *("--username", "offers", "--client-id", "offers-tls"),
        ]
        with Example("store_offers.py", *options, env={"MQTT_PASSWORD": "right-password"}) as ok:
            ok.wait_for(is_subscribed, "the subscription over TLS with a password")
            assert ok.stop() == 0, ok.transcript()
        with Example("store_offers.py", *options, env={"MQTT_PASSWORD": "wrong"}) as refused:
            refused.wait_for(
                lambda e: e.process.poll() is not None, "the example to give up on a refusal"
            )
            assert refused.stop() == 1
        assert any("refused the connection" in line for line in refused.stderr())
        assert any("giving up" in line for line in refused.stderr())
