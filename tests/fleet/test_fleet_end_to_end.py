"""The fleet end to end, in both modes: gateways -> (resolver workers) -> arbiter -> events.

Central mode: the store scene is played by ``beacon-gateway run --scene`` configured ``[fleet]
mode = "keyless"`` (no key registry: it publishes sightings batches); two ``beacon-gateway
resolve`` workers resolve them; ``beacon-gateway run --observations`` arbitrates and publishes
events. Edge mode: the gateway holds the keys (``mode = "edge"``) and publishes observations
straight to the arbiter's shards. Either way the events must be the arbiter's alone, each
beacon's zone decided once at a time (never entered twice without an exit between, whatever
number of gateways heard it), and they must name the scene's enrolled beacons in the zones the
scene's truth puts them in.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any, Final

import pytest

from gateway.sources.sim import SimScene
from tests.fleet.fleet_world import REPO, STORE_SCENE, WAIT_S, WorkerProcess, site_files
from tests.mosquitto import Mosquitto, subscribed, wait_until

if TYPE_CHECKING:
    from pathlib import Path

SEED: Final = 3
pytestmark = pytest.mark.timeout(300)


def _player_config(site: Path, directory: Path, mode: str) -> Path:
    """The site configuration as the scene's gateway in ``mode``: keys only at the edge."""
    dropped = ("gateway_id", "shards") + (("key_registry",) if mode == "keyless" else ())
    lines = [line for line in site.read_text().splitlines() if not line.startswith(dropped)]
    text = "\n".join(lines).replace("[fleet]", f'[fleet]\nmode = "{mode}"\nshards = 2')
    text = text.replace(str(directory / "outbox.sqlite"), str(directory / f"{mode}.sqlite"))
    config = directory / f"{mode}.toml"
    config.write_text(f'gateway_id = "{mode}-player"\n' + text)
    return config


def test_keyless_gateway_through_workers_to_one_arbiter(tmp_path: Path) -> None:
    scene = SimScene(STORE_SCENE, seed=SEED)
    with Mosquitto() as broker:
        broker.start()
        files = site_files(scene, tmp_path, broker.port, shards=2)
        keyless = _player_config(files.config, tmp_path, "keyless")
        assert "key_registry" not in keyless.read_text()
        with (
            subscribed(broker.port, ["fleet/v1/store/#"]) as events,
            WorkerProcess(files.config, "w1", tmp_path) as w1,
            WorkerProcess(files.config, "w2", tmp_path) as w2,
        ):
            w1.start()
            w2.start()
            _play_through_the_arbiter(files.config, keyless, tmp_path, events)
            assert w1.stop() == 0
            assert w2.stop() == 0
            received = events.messages()
    assert not [m.topic for m in received if "/keyless-player/presence/" in m.topic]
    _arbitrated_once(received, scene)


def test_edge_gateway_to_one_arbiter(tmp_path: Path) -> None:
    scene = SimScene(STORE_SCENE, seed=SEED)
    with Mosquitto() as broker:
        broker.start()
        files = site_files(scene, tmp_path, broker.port, shards=2)
        edge = _player_config(files.config, tmp_path, "edge")
        with subscribed(broker.port, ["fleet/v1/store/#"]) as events:
            _play_through_the_arbiter(files.config, edge, tmp_path, events)
            received = events.messages()
    assert not [m.topic for m in received if "/sightings" in m.topic]  # nothing to resolve
    assert [m.topic for m in received if "/fleet/observations/" in m.topic]
    assert not [m.topic for m in received if "/edge-player/presence/" in m.topic]
    _arbitrated_once(received, scene)


def _play_through_the_arbiter(site: Path, player_config: Path, tmp_path: Path, events: Any) -> None:
    """Start the arbiter, play the scene through the gateway configured so, let it settle."""
    arbiter_log = (tmp_path / "arbiter.log").open("wb")
    arbiter = subprocess.Popen(
        [sys.executable, "-m", "gateway", "run", "--observations", "--config", str(site)],
        stdout=arbiter_log, stderr=subprocess.STDOUT, cwd=REPO,
    )  # fmt: skip
    try:
        wait_until(
            lambda: "observations_subscribed" in (tmp_path / "arbiter.log").read_text(),
            "the arbiter's subscription",
        )
        player = subprocess.run(
            [sys.executable, "-m", "gateway", "run", "--scene", str(STORE_SCENE),
             "--seed", str(SEED), "--config", str(player_config), "--realtime", "--speed", "60"],
            cwd=REPO, capture_output=True, timeout=WAIT_S * 4, check=False,
        )  # fmt: skip
        assert player.returncode == 0, player.stderr.decode()[-2000:]
        _settled(events)
    finally:
        arbiter.terminate()
        arbiter.wait(timeout=WAIT_S)
        arbiter_log.close()
    assert arbiter.returncode == 0


def _arbitrated_once(received: list[Any], scene: SimScene) -> None:
    """The arbiter's events: each id one payload, one decision at a time, as the truth says."""
    by_id: dict[str, set[bytes]] = {}
    for message in received:
        if "/arbiter/presence/" in message.topic:
            by_id.setdefault(json.loads(message.payload)["event_id"], set()).add(message.payload)
    # At least once: a redelivery repeats an event's id and bytes, never its id alone.
    clashes = [sorted(p) for p in by_id.values() if len(p) > 1]
    assert not clashes, [json.loads(p) for c in clashes[:1] for p in c]
    published = [json.loads(next(iter(payloads))) for payloads in by_id.values()]
    _one_decision_at_a_time(published)
    _where_the_truth_says(published, scene)


def _settled(subscriber: Any) -> None:
    """Wait until the arbiter's events stop growing for a few seconds."""
    seen = -1
    quiet_since = time.monotonic()
    deadline = time.monotonic() + WAIT_S * 2
    while time.monotonic() - quiet_since < 3.0:
        now = len(subscriber.messages())
        if now != seen:
            seen, quiet_since = now, time.monotonic()
        assert time.monotonic() < deadline, "the arbiter kept publishing"
        time.sleep(0.2)


def _one_decision_at_a_time(events: list[dict[str, Any]]) -> None:
    inside: dict[str, str] = {}

    def moment(event: dict[str, Any]) -> tuple[dt.datetime, bool]:
        return dt.datetime.fromisoformat(event["event_time"]), event["type"] != "exit"

    for event in sorted(events, key=moment):
        beacon = event["subject"]["beacon"] or event["subject"]["id"]
        if event["type"] == "enter":
            assert beacon not in inside, (
                f"{beacon} entered {event['zone']} while in {inside.get(beacon)}"
            )
            inside[beacon] = event["zone"]
        elif event["type"] == "exit":
            assert inside.pop(beacon, None) == event["zone"]


def _where_the_truth_says(events: list[dict[str, Any]], scene: SimScene) -> None:
    """Enrolled beacons only, in the scene's zones, and most of the enrolled ones seen."""
    enrolled = {key.beacon_id for key in scene.registry()}
    zones = {zone["id"] for zone in scene.config_document()["zones"]}
    enters = [e for e in events if e["type"] == "enter"]
    assert {e["subject"]["beacon"] for e in events} <= enrolled
    assert {e["zone"] for e in enters} <= zones
    entered = {e["subject"]["beacon"] for e in enters}
    assert len(entered) >= len(enrolled) // 2, (len(entered), len(enrolled))
