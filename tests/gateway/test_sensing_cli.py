"""Config checks, events and their schemas, and the run / score / schemas commands end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from firmware_sim.cli import main as sim_main
from gateway.cli import main
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.events import json_schemas

ROOT = Path(__file__).resolve().parents[2]
SCENE = """
name = "tiny"
duration_s = 240
seed = 3
[[zones]]
id = "left"
rect = [0.0, 0.0, 8.0, 8.0]
[[zones]]
id = "right"
rect = [8.0, 0.0, 16.0, 8.0]
[[gateways]]
id = "gw-left"
position = [4.0, 4.0]
zone = "left"
[[gateways]]
id = "gw-right"
position = [12.0, 4.0]
zone = "right"
[[flows]]
id = "bag"
arrivals_per_minute = 2.0
initial = 2
[[flows.steps]]
zones = ["left"]
dwell_s = [40.0, 60.0]
[[flows.steps]]
zones = ["right"]
dwell_s = [40.0, 60.0]
"""


def test_schemas_in_the_repository_match_the_models() -> None:
    for name, text in json_schemas().items():
        assert (ROOT / "schemas" / name).read_text("utf-8") == text, (
            f"run beacon-gateway schemas ({name})"
        )
    assert main(["schemas", "--check", "--out", str(ROOT / "schemas")]) == 0


def test_schemas_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    (tmp_path / "presence-event.schema.json").write_text("{}", encoding="utf-8")
    assert main(["schemas", "--check", "--out", str(tmp_path)]) == 1


def test_config_errors_name_the_field_and_the_value() -> None:
    document = {
        "site": "s", "gateway_id": "g",
        "gateways": [{"id": "gw-1", "position": [0, 0]}, {"id": "gw-1"}],
        "zones": [{"id": "z", "gateways": ["gw-9"], "radius_m": -1}],
        "presence": {"filter": "average"},
        "triggers": [{"id": "t", "on": "unseen", "action": "alert"}],
    }  # fmt: skip
    with pytest.raises(ConfigError) as caught:
        parse_config(document, "site.toml")
    text = str(caught.value)
    assert "zones[0].radius_m" in text
    assert "(got -1)" in text
    assert "presence.filter" in text
    assert "'average'" in text
    assert "an 'unseen' rule needs unseen_s" in text
    document["zones"] = [{"id": "z", "gateways": ["gw-9"]}]
    document["presence"] = {}
    document["triggers"] = []
    with pytest.raises(ConfigError) as caught:
        parse_config(document, "site.toml")
    assert "gateways[1].id: duplicate" in str(caught.value)
    assert "zones[0].gateways[0]: names no gateway" in str(caught.value)


def test_score_a_scene_beats_the_baseline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE, encoding="utf-8")
    assert main(["score", str(scene), "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)
    ours, naive = scores["beacon-gateway"], scores["naive baseline"]
    assert ours["hits"] > 0
    assert ours["f1"] > naive["f1"]
    assert ours["spurious_exits_per_subject_hour"] < naive["spurious_exits_per_subject_hour"]


def test_run_a_scene_prints_valid_events_without_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE, encoding="utf-8")
    assert main(["run", "--scene", str(scene)]) == 0
    lines = capsys.readouterr().out.splitlines()
    events = [json.loads(line) for line in lines]
    types = {event["type"] for event in events}
    assert {"enter", "exit", "telemetry"} <= types
    assert len({event["event_id"] for event in events}) == len(events)
    assert all(event["schema_version"] == 1 and event["site"] == "tiny" for event in events)
    assert all(event.get("raw_eid") is None for event in events)
    assert all("identity_key" not in line for line in lines)


def test_run_replays_a_capture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = tmp_path / "tiny.toml"
    scene.write_text(SCENE, encoding="utf-8")
    capture, registry = tmp_path / "tiny.jsonl", tmp_path / "keys.toml"
    truth = tmp_path / "truth.json"
    assert sim_main(["run", str(scene), "--out", str(capture), "--registry", str(registry),
                     "--truth", str(truth)]) == 0  # fmt: skip
    capsys.readouterr()
    config = tmp_path / "gateway.toml"
    config.write_text(
        'site = "tiny"\ngateway_id = "gw"\nkey_registry = "keys.toml"\n'
        '[[gateways]]\nid = "gw-left"\n[[gateways]]\nid = "gw-right"\n',
        encoding="utf-8",
    )
    assert main(["check-config", str(config)]) == 0
    assert "2 zone(s)" in capsys.readouterr().out
    assert main(["run", "--config", str(config), "--replay", str(capture)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["zone"] for e in events if e["type"] == "enter"} <= {"gw-left", "gw-right"}
    assert any(e["type"] == "enter" for e in events)


def test_run_bleak_refuses_a_radio_in_no_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The radio's sightings carry gateway_id: in no zone, they would place nobody, silently.
    config = tmp_path / "site.toml"
    config.write_text(
        'site = "s"\ngateway_id = "gw-ceiling"\n'
        '[[gateways]]\nid = "gw-entrance"\n'
        '[[zones]]\nid = "entrance"\ngateways = ["gw-entrance"]\n',
        encoding="utf-8",
    )
    assert main(["run", "--bleak", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "gateway_id: is in no zone" in err
    assert "'gw-ceiling'" in err
