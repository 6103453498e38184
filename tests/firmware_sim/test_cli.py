"""beacon-sim encode: the frames it prints are the spec's (eddystone-spec.md sections 3-6, 9)."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from firmware_sim.cli import EXIT_USAGE, main

if TYPE_CHECKING:
    from pathlib import Path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out.strip()


@pytest.fixture
def radius_key(tmp_path: Path) -> Path:
    path = tmp_path / "ik.hex"
    path.write_text("01020304 05060708 090a1112 13141516\n")
    return path


def test_url_frame(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "encode", "url", "--tx-power", "-18", "https://www.google.com/") == (
        "10ee" + "01676f6f676c6500"
    )


def test_uid_frame_and_advertisement(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("uid", "--tx-power", "-25", "--namespace", "8b0ca750095477cb3e77")
    frame = "00e78b0ca750095477cb3e770000000000010000"
    assert run(capsys, "encode", *args, "--instance", "000000000001") == frame
    advert = run(capsys, "encode", "--advertisement", *args, "--instance", "000000000001")
    assert advert == "0201060303aafe" + "1716aafe" + frame


def test_tlm_frame(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(
        capsys, "encode", "tlm", "--battery-mv", "3000", "--temperature", "23.5",
        "--adv-count", "1000", "--uptime-ds", "36000",
    )  # fmt: skip
    assert out == "20000bb81780000003e800008ca0"


def test_eid_frame_from_key_file(capsys: pytest.CaptureFixture[str], radius_key: Path) -> None:
    out = run(
        capsys, "encode", "eid", "--tx-power", "-16", "--identity-key-file", str(radius_key),
        "--exponent", "10", "--counter", "2000",
    )  # fmt: skip
    assert out == "30f0" + "4144413e45fefa58"


def test_etlm_frame_with_fixed_salt(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    key = tmp_path / "nordic.hex"
    key.write_text("589417b0324b1b71d7a6751852867ae8")
    out = run(
        capsys, "encode", "etlm", "--identity-key-file", str(key), "--exponent", "0",
        "--counter", str(0x10000), "--salt", "f683", "--battery-mv", "0",
        "--temperature", "28.25", "--adv-count", "72", "--uptime-ds", "115",
    )  # fmt: skip
    assert out == "2001d5d89979ae79ebee4e385fa5f6830efb"


@pytest.mark.parametrize("content", ["0102", "not hex at all", ""])
def test_bad_key_file_is_refused_without_echoing_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    key = tmp_path / "k.hex"
    key.write_text(content)
    argv = ["encode", "eid", "--identity-key-file", str(key), "--exponent", "1", "--counter", "1"]
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "must hold 32 hex digits" in err
    if content:
        assert content not in err


def test_missing_key_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["encode", "eid", "--identity-key-file", str(tmp_path / "none"), "--exponent", "1",
            "--counter", "1"]  # fmt: skip
    assert main(argv) == EXIT_USAGE
    assert "cannot read identity key file" in capsys.readouterr().err


def test_url_too_long_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["encode", "url", "https://www.example.com/very/long/path"]) == EXIT_USAGE
    assert "carries at most 17" in capsys.readouterr().err


def test_python_dash_m_firmware_sim() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "firmware_sim", "encode", "url", "https://goo.gl/S6zT6P"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10ee" + "03676f6f2e676c2f53367a543650"
