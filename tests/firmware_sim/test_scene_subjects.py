"""A scene's back office: the subjects file of its enrolled beacons and its gateway settings."""

from __future__ import annotations

import json
import stat
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from firmware_sim.cli import main as sim_main
from firmware_sim.run import prepare
from firmware_sim.scene import Scene, SceneError, load_scene, parse_scene
from gateway.config import parse_config
from gateway.sensing_cli import _scene_config
from gateway.sources.sim import SimScene
from gateway.subjects_file import parse_subjects

SCENES = Path(__file__).resolve().parents[2] / "configs" / "scenes"


def scene(name: str, duration: float = 900.0) -> Scene:
    return load_scene(SCENES / f"{name}.toml").model_copy(update={"duration_s": duration})


def records(text: str) -> dict[str, Any]:
    return tomllib.loads(text)


def test_every_enrolled_subject_has_a_record_and_no_one_else() -> None:
    run = prepare(scene("store"), None)
    document = records(run.subjects_toml())
    beacons = [customer["beacon"] for customer in document["customers"]]
    enrolled = [subject.id for subject in run.subjects if subject.enrolled]
    assert sorted(beacons) == sorted(enrolled)
    assert len(enrolled) < len(run.subjects)  # the store has unenrolled shoppers
    assert len(set(beacons)) == len(beacons)
    ids = [customer["id"] for customer in document["customers"]]
    assert len(set(ids)) == len(ids)
    assert "bags" not in document
    # The gateway reads it as its own subjects file, every beacon in the scene's registry.
    directory = parse_subjects(document, "scene subjects")
    registry = SimScene.from_scene(scene("store")).registry()
    assert len(directory) == len(registry)


def test_records_are_the_same_for_a_seed_and_drawn_from_the_settings() -> None:
    first = prepare(scene("store"), 7).subjects_toml()
    assert prepare(scene("store"), 7).subjects_toml() == first
    assert prepare(scene("store"), 8).subjects_toml() != first
    settings = scene("store").flows[0].subjects
    assert settings is not None
    customers = records(first)["customers"]
    assert {c["segment"] for c in customers} <= set(settings.segments)
    assert all(isinstance(c["consent"], bool) for c in customers)


def test_segments_and_consent_follow_their_weights() -> None:
    """Over many shoppers the draws follow the weights (bounds far outside chance)."""
    long = scene("store", duration=6 * 3600.0)
    customers = records(prepare(long, 3).subjects_toml())["customers"]
    settings = long.flows[0].subjects
    assert settings is not None
    counts = Counter(c["segment"] for c in customers)
    total = sum(settings.segments.values())
    for segment, weight in settings.segments.items():
        share = counts[segment] / len(customers)
        assert abs(share - weight / total) < 0.08, (segment, share)
    consent = sum(c["consent"] for c in customers) / len(customers)
    assert abs(consent - settings.consent) < 0.06


def test_bags_have_tag_numbers_and_a_flight_with_its_destination() -> None:
    airport = scene("airport")
    bags = records(prepare(airport, None).subjects_toml())["bags"]
    settings = airport.flows[0].subjects
    assert settings is not None
    assert bags
    for bag in bags:
        assert len(bag["tag"]) == 10
        assert bag["tag"].isdigit()
        assert settings.flights[bag["flight"]] == bag["destination"]
    assert len({bag["tag"] for bag in bags}) == len(bags)


def test_a_flow_without_subjects_stays_anonymous() -> None:
    plain = scene("store")
    plain = plain.model_copy(
        update={"flows": [f.model_copy(update={"subjects": None}) for f in plain.flows]}
    )
    text = prepare(plain, None).subjects_toml()
    assert records(text) == {"version": 1}
    assert len(parse_subjects(records(text))) == 0


def test_subject_settings_errors_name_the_field() -> None:
    document = tomllib.loads((SCENES / "store.toml").read_text())
    document["flows"][0]["subjects"] = {"kind": "customer", "flights": {"BA117": "JFK"}}
    with pytest.raises(SceneError, match=r"flows\[0\]\.subjects: flights are for bags"):
        parse_scene(document)
    document["flows"][0]["subjects"] = {"kind": "bag", "flights": {"ba117": "JFK"}}
    with pytest.raises(SceneError, match=r"flows\[0\]\.subjects\.flights\.ba117"):
        parse_scene(document)
    document["flows"][0]["subjects"] = {"kind": "customer", "segments": {"gold": 0.0}}
    with pytest.raises(SceneError, match="segments need a positive weight"):
        parse_scene(document)


def test_the_scenes_gateway_settings_reach_the_gateway_configuration() -> None:
    sim = SimScene.from_scene(scene("store"))
    document = sim.config_document()
    assert document["publish"]["subject_fields"] == ["id", "beacon", "alias", "segment"]
    # Merged table by table: the floor's own presence settings stay.
    assert document["presence"]["path_loss_exponent"] == scene("store").radio.path_loss_exponent
    config = _scene_config(document)
    assert {trigger.id for trigger in config.triggers} >= {"welcome", "aisle-2-offer"}
    merged = {**document, "presence": {**document["presence"], "filter": "median"}}
    assert parse_config(merged).presence.path_loss_exponent == 2.4


def test_a_bad_gateway_setting_is_the_gateways_error_naming_the_field() -> None:
    bad = scene("store").model_copy(update={"gateway": {"publish": {"subject_fields": ["eid"]}}})
    with pytest.raises(Exception, match=r"publish\.subject_fields") as caught:
        _scene_config(SimScene.from_scene(bad).config_document())
    assert "eid" in str(caught.value)


def test_run_scene_events_name_the_subjects(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main  # noqa: PLC0415

    assert main(["run", "--scene", str(SCENES / "store.toml"), "--seed", "2"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    customers = [e["subject"] for e in events if e["subject"]["kind"] == "customer"]
    assert customers
    named = [s for s in customers if s["beacon"] is not None]
    assert named
    assert all(s["id"] and s["alias"] for s in named)
    # A customer without consent shows only its kind.
    anonymous = [s for s in customers if s["beacon"] is None]
    assert anonymous
    assert all(set(s.values()) == {"customer", None} for s in anonymous)
    assert {e["rule"] for e in events if e["type"] == "trigger"} >= {"welcome"}
    assert "raw_eid" not in {k for e in events for k, v in e.items() if v is not None}


def test_beacon_sim_run_writes_the_subjects_file_private(tmp_path: Path) -> None:
    out = tmp_path / "subjects.toml"
    code = sim_main(
        ["run", str(SCENES / "airport.toml"), "--out", str(tmp_path / "capture.jsonl"),
         "--duration", "300", "--subjects", str(out)]
    )  # fmt: skip
    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert records(out.read_text())["bags"]
