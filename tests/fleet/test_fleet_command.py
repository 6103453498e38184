"""``beacon-gateway fleet``: a scene's fleet on this machine, as the docs tell users to run it.

The real command in a child process (its own mosquitto, workers, an arbiter per shard), on the
first four minutes of the store scene (``--duration``): it must end, report what it played and
the arbiters' accuracy against the scene's truth, and exit 0 with every child exiting 0.
"""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.fleet.run import process_cpu_seconds
from tests.fleet.fleet_world import REPO, STORE_SCENE, WAIT_S
from tests.mosquitto import wait_until

pytestmark = pytest.mark.timeout(300)


def _fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "fleet", "--scene", str(STORE_SCENE), *args],
        cwd=REPO, capture_output=True, text=True, timeout=WAIT_S * 4, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("workers", "shards", "children"),
    [
        ("1", "1", "arbiter exit 0, worker-1 exit 0"),
        ("2", "2", "arbiter-1 exit 0, arbiter-0 exit 0, worker-2 exit 0, worker-1 exit 0"),
    ],
)
def test_the_fleet_command_plays_part_of_a_scene_and_scores_the_arbiters(
    workers: str, shards: str, children: str
) -> None:
    # One arbiter per shard, each with its own id (its own MQTT session) and outbox.
    run = _fleet("--duration", "240", "--speed", "60", "--workers", workers, "--shards", shards)
    assert run.returncode == 0, run.stdout + run.stderr[-2000:]
    played = re.search(r"played\s+(\d+) sightings -> (\d+) reports in (\d+) batches", run.stdout)
    assert played is not None, run.stdout
    assert int(played[1]) > 0
    assert int(played[3]) > 0
    accuracy = re.search(r"accuracy\s+F1 ([\d.]+) .* zone IoU ([\d.]+)", run.stdout)
    assert accuracy is not None, run.stdout
    assert 0.0 < float(accuracy[1]) <= 1.0  # the arbiter's events matched some of the truth
    assert f"children   {children}" in run.stdout
    cpu = re.search(r"cpu\s+(.*)", run.stdout)
    assert cpu is not None, run.stdout
    names = [name for name, _ in re.findall(r"(\S+) (\d+) s", cpu[1])]
    assert sorted(names) == sorted(["player", *re.findall(r"(\S+) exit 0", children)])


def test_cpu_time_of_a_live_process_and_of_none() -> None:
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        wait_until(
            lambda: (process_cpu_seconds(busy.pid) or 0.0) >= 0.2, "the busy child's CPU time"
        )
    finally:
        busy.kill()
        busy.wait()
    assert process_cpu_seconds(busy.pid) is None  # reaped: no such process


def test_the_fleet_command_names_every_bad_option() -> None:
    run = _fleet("--duration", "0", "--workers", "0", "--speed", "-1")
    assert run.returncode == 2  # the CLI's usage-error code
    for option, value in (("--workers", "0"), ("--duration", "0.0"), ("--speed", "-1.0")):
        assert f"{option}: must be" in run.stderr
        assert f"(got {value})" in run.stderr


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    found.add(int(child))
                    todo.append(int(child))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_fleet_command_stops_everything_it_started(signum: int) -> None:
    fleet = subprocess.Popen(
        [sys.executable, "-m", "gateway", "fleet", "--scene", str(STORE_SCENE), "--speed", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert fleet.stdout is not None
        assert fleet.stdout.readline().startswith("fleet: store:")  # everything is running
        started = _descendants(fleet.pid)
        assert len(started) >= 4  # mosquitto, two workers, an arbiter
        fleet.send_signal(signum)
        out, err = fleet.communicate(timeout=WAIT_S * 2)
    finally:
        fleet.kill()
        fleet.wait()
    assert fleet.returncode == 128 + signum, err[-2000:]
    assert f"stopped by {signal.Signals(signum).name}" in out
    wait_until(lambda: not any(_alive(pid) for pid in started), "every child to end")
