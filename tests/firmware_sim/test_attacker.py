"""The scene attacker: its configuration, what it sends, and that the beacons are untouched."""

from __future__ import annotations

import itertools
import random
import tomllib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eid
from eid import frames
from firmware_sim import attacker as attack
from firmware_sim.attacker import Attacker, malformed_frame, random_address
from firmware_sim.cli import main
from firmware_sim.run import prepare
from firmware_sim.scene import AttackerSettings, SceneError, load_scene, parse_scene

if TYPE_CHECKING:
    from firmware_sim.capture import CapturedAdvert
    from firmware_sim.scene import Scene

SCENES = Path(__file__).resolve().parents[2] / "configs" / "scenes"
START = 1_767_225_600.0
EID = bytes.fromhex("30f4") + bytes(range(8))


def store(duration: float = 300.0, **attacker: Any) -> Scene:
    scene = load_scene(SCENES / "store.toml")
    settings = AttackerSettings(**{"position": (21.0, 19.0), **attacker})
    return scene.model_copy(update={"duration_s": duration, "attacker": settings})


def quick(**changes: Any) -> AttackerSettings:
    """An attacker that only does what the test turns on."""
    off = {"replay": False, "forged_etlm": False, "flood": False, "malformed": False}
    return AttackerSettings(**{"position": (0.0, 0.0), **off, **changes})


def frames_until(attacker: Attacker, until: float) -> list[attack.Transmission]:
    sent = []
    while attacker.next_at() < until:
        sent.append(attacker.pop())
    return sent


# ----------------------------------------------------------------------------- configuration


def test_the_attacker_section_is_checked_and_errors_name_field_and_value() -> None:
    document = tomllib.loads((SCENES / "store-hostile.toml").read_text())
    document["attacker"] |= {
        "replay_delay_s": -1,
        "spoof_share": 2,
        "flood_frames_per_address": 0,
        "colour": "red",
    }
    with pytest.raises(SceneError) as caught:
        parse_scene(document, "store-hostile.toml")
    text = str(caught.value)
    assert "attacker.replay_delay_s" in text
    assert "(got -1)" in text
    assert "attacker.spoof_share" in text
    assert "attacker.flood_frames_per_address" in text
    assert "attacker.colour" in text
    document = tomllib.loads((SCENES / "store-hostile.toml").read_text())
    document["attacker"] |= {"flood_burst_s": 600, "flood_every_s": 300}
    with pytest.raises(SceneError, match="flood_burst_s must not be longer than flood_every_s"):
        parse_scene(document)
    del document["attacker"]["position"]
    with pytest.raises(SceneError, match=r"attacker\.position: Field required"):
        parse_scene(document)


def test_behaviours_are_on_by_default_and_scenes_without_the_table_have_none() -> None:
    settings = AttackerSettings(position=(1.0, 2.0))
    assert all((settings.replay, settings.forged_etlm, settings.flood, settings.malformed))
    assert settings.replay_delay_s == 3600
    assert settings.flood_addresses_per_minute == 10_000
    assert load_scene(SCENES / "store.toml").attacker is None
    assert load_scene(SCENES / "airport.toml").attacker is None


def test_the_hostile_store_is_the_store_plus_an_attacker() -> None:
    store_scene = load_scene(SCENES / "store.toml")
    hostile = load_scene(SCENES / "store-hostile.toml")
    assert hostile.attacker is not None
    same = {"start", "seed", "radio", "zones", "gateways", "flows"}
    assert hostile.model_dump(include=same) == store_scene.model_dump(include=same)
    # Replays come after two rotation periods (the resolver's window) and within the scene.
    periods = {flow.rotation_exponent for flow in hostile.flows}
    assert hostile.attacker.replay_delay_s > 2 * (1 << max(periods))
    assert hostile.attacker.replay_delay_s < hostile.duration_s


# ----------------------------------------------------------------------------- what it sends


@given(st.integers(0, 2**32))
def test_malformed_frames_are_never_valid_eddystone(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(20):
        data = malformed_frame(rng)
        assert data
        with pytest.raises(frames.FrameError):
            frames.parse(data)


def test_addresses_are_random_static_ones() -> None:
    rng = random.Random(1)
    addresses = [random_address(rng) for _ in range(1000)]
    assert len(set(addresses)) == len(addresses)
    for address in addresses:
        octets = address.split(":")
        assert len(octets) == 6
        assert all(len(octet) == 2 for octet in octets)
        assert int(octets[0], 16) & 0xC0 == 0xC0


def test_replays_resend_what_was_heard_later_from_an_address_of_its_own() -> None:
    attacker = Attacker(
        quick(replay=True, replay_delay_s=100.0, replay_repeats=3, replay_interval_s=2.0),
        seed=1,
        start=START,
        enrolled={"shopper-1"},
    )
    attacker.hear(START + 5, "shopper-1", (1.0, 1.0), "C1:00:00:00:00:01", EID)
    attacker.hear(START + 6, "shopper-1", (1.0, 1.0), "C1:00:00:00:00:01", EID)  # known
    attacker.hear(START + 7, "shopper-2", (1.0, 1.0), "C1:00:00:00:00:02", EID[:2] + bytes(8))
    attacker.hear(START + 8, "shopper-1", (1.0, 1.0), "C1:00:00:00:00:01", b"\x20\x01" + bytes(16))
    sent = frames_until(attacker, START + 1000)
    assert [round(frame.at - START) for frame in sent] == [105, 107, 107, 109, 109, 111]
    mine = [frame for frame in sent if frame.origin == "shopper-1"]
    assert {frame.kind for frame in mine} == {attack.REPLAY}
    assert {frame.service_data for frame in mine} == {EID}
    assert len({frame.address for frame in mine}) == 1
    assert mine[0].address != "C1:00:00:00:00:01"
    other = [frame for frame in sent if frame.origin == "shopper-2"]
    assert {frame.kind for frame in other} == {attack.REPLAY_UNREGISTERED}
    assert attacker.counts.recorded_eids == 2
    assert attacker.counts.sent == Counter({attack.REPLAY: 3, attack.REPLAY_UNREGISTERED: 3})
    assert attacker.next_at() == float("inf")


def test_forged_etlm_comes_from_heard_addresses_and_from_random_ones() -> None:
    attacker = Attacker(
        quick(forged_etlm=True, forged_etlm_per_minute=600.0, spoof_share=0.5),
        seed=2,
        start=START,
    )
    beacon = "C1:00:00:00:00:09"
    sent = []
    for second in range(600):
        sent += frames_until(attacker, START + second)
        attacker.hear(START + second, "shopper-1", (0.0, 0.0), beacon, EID)
    spoofed = [f for f in sent if f.kind == attack.FORGED_SPOOFED]
    other = [f for f in sent if f.kind == attack.FORGED_RANDOM]
    assert spoofed
    assert other
    assert {f.address for f in spoofed} == {beacon}
    assert beacon not in {f.address for f in other}
    for frame in sent:
        assert isinstance(frames.parse(frame.service_data), frames.EtlmFrame)


def test_it_spoofs_only_what_it_heard_lately_and_within_range() -> None:
    attacker = Attacker(
        quick(forged_etlm=True, forged_etlm_per_minute=600.0, spoof_share=1.0, spoof_memory_s=5),
        seed=3,
        start=START,
    )
    attacker.hear(START, "shopper-1", (0.0, 0.0), "C1:00:00:00:00:09", EID)
    later = [f for f in frames_until(attacker, START + 60) if f.at > START + 5]
    assert later
    assert {f.kind for f in later} == {attack.FORGED_RANDOM}
    deaf = Attacker(quick(replay=True, listen_range_m=5.0), seed=3, start=START)
    deaf.hear(START, "shopper-1", (6.0, 0.0), "C1:00:00:00:00:09", EID)
    assert deaf.next_at() == float("inf")


def test_the_flood_sends_fresh_addresses_in_its_bursts() -> None:
    settings = quick(
        flood=True,
        flood_addresses_per_minute=6000.0,
        flood_frames_per_address=3,
        flood_burst_s=10.0,
        flood_every_s=60.0,
    )
    attacker = Attacker(settings, seed=4, start=START)
    sent = frames_until(attacker, START + 600)
    by_address = Counter(frame.address for frame in sent)
    assert set(by_address.values()) == {3}
    assert attacker.counts.flood_addresses == len(by_address)
    assert 9000 < len(by_address) < 11_000  # 100 a second, 10 s a minute, 10 minutes
    for frame in sent:
        assert frame.kind == attack.FLOOD
        assert (frame.at - START) % 60 < 10 + 2 * 0.1 + 1e-9  # in a burst (plus its frames)
        assert isinstance(frames.parse(frame.service_data), frames.UidFrame | frames.EidFrame)


# ----------------------------------------------------------------------------- in a scene


def test_a_scene_attacker_is_heard_and_leaves_the_beacons_traffic_alone() -> None:
    hostile_scene = store(
        300.0, replay_delay_s=120.0, flood_addresses_per_minute=600.0, flood_burst_s=None
    )
    clean_scene = hostile_scene.model_copy(update={"attacker": None})
    hostile_run = prepare(hostile_scene)
    hostile: list[CapturedAdvert] = list(hostile_run.adverts())
    clean = list(prepare(clean_scene).adverts())
    counts = hostile_run.attack
    assert counts is not None
    assert all(
        counts.heard[kind] > 0 for kind in attack.KINDS if kind != attack.REPLAY_UNREGISTERED
    )
    assert len(hostile) - len(clean) == sum(counts.heard.values())
    # The beacons' adverts come out the same, in the same order, the attacker's in between.
    remaining = iter(hostile)
    assert all(any(advert == other for other in remaining) for advert in clean)
    assert [advert.at for advert in hostile] == sorted(advert.at for advert in hostile)
    # Deterministic: the same seed gives the same attack.
    again = list(itertools.islice(prepare(hostile_scene).adverts(), 5000))
    assert again == hostile[:5000]


def test_beacon_sim_run_reports_the_attack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture = tmp_path / "c.jsonl"
    argv = ["run", str(SCENES / "store-hostile.toml"), "--out", str(capture), "--duration", "60"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "attacker: " in out
    assert "flood" in out
    assert "heard by the gateways" in out


def test_replayed_eids_of_enrolled_beacons_are_what_the_resolver_calls_stale() -> None:
    scene = store(3000.0, replay_delay_s=2400.0, forged_etlm=False, flood=False, malformed=False)
    run = prepare(scene)
    resolver = eid.Resolver()
    for beacon_id, (key, exponent, offset) in run.keys.items():
        resolver.register(beacon_id, key, exponent, offset)
    reasons: Counter[str] = Counter()
    for advert in run.adverts():
        data = next(iter(advert.service_data.values()))
        if data[0] != frames.FrameType.EID:
            continue
        frame = frames.parse(data)
        assert isinstance(frame, frames.EidFrame)
        reasons[resolver.lookup(frame.eid, advert.at).reason.value] += 1
    counts = run.attack
    assert counts is not None
    assert reasons["stale"] == counts.heard[attack.REPLAY] > 0
