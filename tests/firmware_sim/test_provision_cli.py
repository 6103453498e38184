"""The command-line loop: keys init -> beacon-sim provision -> keys register -> frames -> decode."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
from typing import TYPE_CHECKING

from firmware_sim.cli import EXIT_USAGE
from firmware_sim.cli import main as sim
from gateway.cli import main as gateway

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

T0 = "2026-01-01T00:00:00Z"


def test_provisioned_beacon_resolves_through_the_command_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, record, beacon = tmp_path / "r.toml", tmp_path / "rec.json", tmp_path / "b.json"
    record.write_text("old")
    record.chmod(0o644)  # an existing, world-readable file is narrowed when overwritten
    assert gateway(["keys", "init", str(registry)]) == 0
    capsys.readouterr()
    assert gateway(["keys", "service-key", str(registry)]) == 0
    service_key = capsys.readouterr().out.strip()
    assert len(service_key) == 64
    argv = [
        "provision", "--service-public-key", service_key, "--beacon-id", "bag-1",
        "--exponent", "8", "--at", T0, "--record-out", str(record), "--beacon-out", str(beacon),
    ]  # fmt: skip
    assert sim(argv) == 0
    assert stat.S_IMODE(beacon.stat().st_mode) == 0o600
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert json.loads(record.read_text())["service_public_key"] == service_key
    assert gateway(["keys", "register", str(registry), "--record", str(record)]) == 0
    capsys.readouterr()
    frames_argv = ["frames", "--beacon", str(beacon), "--from", T0, "--count", "12"]
    assert sim([*frames_argv, "--every", "1800"]) == 0
    lines = tmp_path / "frames.txt"
    lines.write_text(capsys.readouterr().out)
    assert gateway(["decode", str(lines), "--registry", str(registry)]) == 0
    out = capsys.readouterr().out
    assert out.count("-> beacon bag-1") == 12


def test_provision_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = ["--record-out", str(tmp_path / "r.json"), "--beacon-out", str(tmp_path / "b.json")]
    assert sim(["provision", "--service-public-key", "00", "--beacon-id", "b", *out]) == EXIT_USAGE
    assert "64 hex digits" in capsys.readouterr().err
    weak = "00" * 32  # a low-order point: every beacon key gives an all-zero shared secret
    assert sim(["provision", "--service-public-key", weak, "--beacon-id", "b", *out]) == EXIT_USAGE
    assert "ATT error 0x0d" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{}")
    assert sim(["frames", "--beacon", str(tmp_path / "bad.json")]) == EXIT_USAGE
    assert "not a beacon file" in capsys.readouterr().err
    assert gateway(["keys", "service-key", str(tmp_path / "none.toml")]) == EXIT_USAGE


def _first_line_then_close(argv: list[str]) -> tuple[int, str]:
    """Run a command, read one line of its output and close it, as ``| head -1`` does."""
    child = subprocess.Popen(
        [sys.executable, "-m", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert child.stdout is not None
    assert child.stdout.readline()
    child.stdout.close()
    _, err = child.communicate(timeout=120)
    return child.returncode, err.decode()


def test_both_command_lines_stop_quietly_when_the_reader_goes_away(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry, record, beacon = tmp_path / "r.toml", tmp_path / "rec.json", tmp_path / "b.json"
    assert gateway(["keys", "init", str(registry)]) == 0
    capsys.readouterr()
    assert gateway(["keys", "service-key", str(registry)]) == 0
    service_key = capsys.readouterr().out.strip()
    assert sim([
        "provision", "--service-public-key", service_key, "--beacon-id", "bag-1",
        "--exponent", "8", "--at", T0, "--record-out", str(record), "--beacon-out", str(beacon),
    ]) == 0  # fmt: skip
    assert gateway(["keys", "register", str(registry), "--record", str(record)]) == 0
    frames = ["frames", "--beacon", str(beacon), "--from", T0, "--every", "256"]
    assert sim([*frames, "--count", "5000"]) == 0  # far more than a pipe's buffer
    lines = tmp_path / "frames.txt"
    lines.write_text(capsys.readouterr().out)
    for argv in (
        ["firmware_sim", *frames, "--count", "100000"],
        ["gateway", "decode", str(lines), "--registry", str(registry)],
    ):
        assert _first_line_then_close(argv) == (128 + signal.SIGPIPE, ""), argv[:2]
