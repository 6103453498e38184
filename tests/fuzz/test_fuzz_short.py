"""A short, deterministic fuzz run of every harness in fuzz/ over its seed corpus.

Each harness runs as a subprocess for a fixed number of inputs (``-runs``) with a fixed seed
and hash seed, so a run repeats exactly; the new inputs it finds go to a temporary directory,
never into the seed corpus. A crash fails the test with the input that caused it (docs/
fuzzing.md: how it becomes a regression test). The long runs are ``make fuzz``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
FUZZ: Final = ROOT / "fuzz"
TARGETS: Final = sorted(path.stem.removeprefix("fuzz_") for path in FUZZ.glob("fuzz_*.py"))
RUNS: Final = {"frames": 10_000, "gatt": 2_000, "advert": 300}
"""Inputs per harness: what a few seconds give on a small machine (the slowest run fewest)."""
DEFAULT_RUNS: Final = 1_000


def test_every_harness_has_a_seed_corpus() -> None:
    assert len(TARGETS) >= 10
    for target in TARGETS:
        seeds = list((FUZZ / "corpus" / target).iterdir())
        assert seeds, target
        assert all(seed.stat().st_size < 8192 for seed in seeds), target


def _crash_report(run: Run) -> str:
    lines = [f"fuzz_{run.target} crashed; the end of its output:", *run.output.splitlines()[-30:]]
    for crash in sorted(run.artifacts.glob("crash-*")) + sorted(run.artifacts.glob("timeout-*")):
        data = crash.read_bytes()
        lines += [
            f"crashing input ({len(data)} bytes): {data!r}",
            f"base64: {base64.b64encode(data).decode()}",
            f"reproduce: .venv/bin/python fuzz/fuzz_{run.target}.py FILE_WITH_THOSE_BYTES",
        ]
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Run:
    """One harness's short run: its exit status, output and artifacts directory."""

    target: str
    returncode: int
    output: str
    artifacts: Path


def _fuzz(target: str, artifacts: Path) -> Run:
    found = artifacts / "corpus"
    found.mkdir(parents=True)
    command = [
        sys.executable,
        str(FUZZ / f"fuzz_{target}.py"),
        f"-runs={RUNS.get(target, DEFAULT_RUNS)}",
        "-seed=1",
        "-timeout=120",
        f"-artifact_prefix={artifacts}/",
        str(found),
        str(FUZZ / "corpus" / target),
    ]
    # Scratch files and the merged dictionary go to the run's own directory, not /tmp.
    environment = {**os.environ, "PYTHONHASHSEED": "0", "TMPDIR": str(artifacts)}
    result = subprocess.run(
        command, capture_output=True, text=True, errors="replace", env=environment, check=False
    )
    return Run(target, result.returncode, result.stdout + result.stderr, artifacts)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every harness's run, two at a time (one per core of a small machine)."""
    root = tmp_path_factory.mktemp("fuzz")
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda target: _fuzz(target, root / target), TARGETS)
        return {run.target: run for run in done}


@pytest.mark.parametrize("target", TARGETS)
def test_harness_finds_no_crash(target: str, runs: dict[str, Run]) -> None:
    run = runs[target]
    assert run.returncode == 0, _crash_report(run)
    assert "Done " in run.output, run.output[-2000:]
