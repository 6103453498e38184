"""The beacon-gateway command line, run in-process and as `python -m gateway`."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import EXIT_BAD_INPUT, EXIT_OK, EXIT_USAGE, main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "configs" / "samples"
REGISTRY = ROOT / "configs" / "test-registry.toml"


def test_demo_samples_decode_and_resolve(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["decode", str(SAMPLES / "mixed.txt"), "--registry", str(REGISTRY)])
    out = capsys.readouterr().out
    assert status == EXIT_OK
    # The sample EIDs are the spec's vectors; the registry's offsets place them at the sample time.
    for beacon in ("loyalty-0001", "bag-tag-0002", "bag-tag-0003", "loyalty-0004", "loyalty-0005"):
        assert f"-> beacon {beacon} (rotation period offset +0)" in out
    assert "temperature 28.25 degC  adv_count 72  uptime 11.5 s" in out  # spec section 9 eTLM
    assert out.count("unresolved") == 2  # the unknown EID and the replay an hour later
    assert "https://www.google.com/" in out
    assert "4144413e45fefa58" not in out  # raw EIDs are not echoed


def test_malformed_samples_each_get_an_error_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status = main(["decode", str(SAMPLES / "malformed.txt")])
    captured = capsys.readouterr()
    frame_lines = [
        line
        for line in (SAMPLES / "malformed.txt").read_text().splitlines()
        if line.split("#")[0].strip()
    ]
    assert status == EXIT_BAD_INPUT
    assert captured.out.count("  error: ") == len(frame_lines)
    assert "could not be decoded" in captured.err


def test_stdin_and_at_option(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("30f04144413e45fefa58\n"))
    status = main(["decode", "-", "--registry", str(REGISTRY), "--at", "2026-01-01T00:00:00Z"])
    assert status == EXIT_OK
    assert "<stdin>:1  EID   tx -16 dBm  -> beacon loyalty-0001" in capsys.readouterr().out


def test_invalid_registry_exits_2_before_decoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry = tmp_path / "r.toml"
    registry.write_text("version = 2\nbeacons = []\n")
    status = main(["decode", str(SAMPLES / "mixed.txt"), "--registry", str(registry)])
    captured = capsys.readouterr()
    assert status == EXIT_USAGE
    assert captured.out == ""
    assert "invalid" in captured.err
    assert "version" in captured.err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["decode", "--at", "soon"], "neither unix seconds nor ISO 8601"),
        (["decode", "/nonexistent/samples.txt"], "cannot read /nonexistent/samples.txt"),
    ],
)
def test_usage_errors_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_non_utf8_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bin.txt"
    path.write_bytes(b"\xff\xfe\x00")
    assert main(["decode", str(path)]) == EXIT_USAGE
    assert "not UTF-8" in capsys.readouterr().err


def test_python_dash_m_gateway_runs_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "decode", "--registry", str(REGISTRY)],
        input="@1767225600 30f04144413e45fefa58\n",
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == EXIT_OK, result.stderr
    assert "-> beacon loyalty-0001" in result.stdout
