"""beacon-sim scenes and beacon-sim run."""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

import pytest

from firmware_sim.capture import read_capture
from firmware_sim.cli import EXIT_USAGE, main
from gateway.registry import KeyRegistry

SCENES = Path(__file__).resolve().parents[2] / "configs" / "scenes"


def test_scenes_lists_the_shipped_scenes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scenes", "--dir", str(SCENES)]) == 0
    out = capsys.readouterr().out
    assert "store: Shoppers" in out
    assert "airport: EID bag tags" in out


@pytest.mark.parametrize("name", ["store", "airport"])
def test_run_writes_capture_truth_and_registry(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capture, truth, registry = tmp_path / "c.jsonl", tmp_path / "t.json", tmp_path / "r.toml"
    argv = [
        "run", str(SCENES / f"{name}.toml"), "--out", str(capture), "--truth", str(truth),
        "--registry", str(registry), "--duration", "120", "--seed", "3", "--progress",
    ]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"{name}: " in captured.out
    assert "100.0%" in captured.err
    with capture.open() as stream:
        meta, adverts = read_capture(stream)
        count = sum(1 for _ in adverts)
    assert meta["scene"] == name
    assert meta["seed"] == 3
    assert count > 0
    subjects = json.loads(truth.read_text())["subjects"]
    assert subjects
    assert stat.S_IMODE(registry.stat().st_mode) == 0o600
    keys = KeyRegistry.from_document(tomllib.loads(registry.read_text()))
    assert len(keys) == sum(1 for subject in subjects if subject["enrolled"])


def test_run_of_a_bad_scene_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "c.jsonl")]) == EXIT_USAGE
    assert "problem(s)" in capsys.readouterr().err
