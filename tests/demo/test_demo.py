"""``beacon-gateway demo`` end to end: a real mosquitto, the real gateway child, no mocks.

Each run gets its own TMPDIR, so the test can see that the demo removed its directory. That
directory is world-traversable (0755): started as root, mosquitto drops to its own user, which
must reach its persistence directory (tests/mosquitto.py explains the pitfall). Every wait is
bounded; nothing asserts on how long anything took.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from tests.mosquitto import require_mosquitto

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT: Final = Path(__file__).resolve().parents[2]
SCENES: Final = ROOT / "configs" / "scenes"
RUN_LIMIT_S: Final = 300.0
"""A demo that has not ended after this long fails the test; never a timing claim."""
EVENT_LINE: Final = re.compile(r"^\d\d:\d\d:\d\d  (enter|dwell|exit|trigger|telemetry) ")


def demo(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", "demo", *args]


def run_demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The demo run to its end (bounded), its output captured."""
    return subprocess.run(
        demo(*args), capture_output=True, text=True, timeout=RUN_LIMIT_S, env=env, check=False
    )


@pytest.fixture
def tmpdir_env() -> Iterator[tuple[Path, dict[str, str]]]:
    """A private TMPDIR for the demo, and an environment without BEACON_GATEWAY__ overrides."""
    directory = Path(tempfile.mkdtemp(prefix="demo-test-"))
    directory.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BEACON_GATEWAY__")}
    env["TMPDIR"] = str(directory)
    try:
        yield directory, env
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def counts(summary_line: str) -> dict[str, int]:
    """``events     12 received: 3 enter, 9 dwell`` -> {"enter": 3, "dwell": 9}."""
    _, _, listed = summary_line.partition(": ")
    return {kind: int(n) for n, kind in (item.split(" ") for item in listed.split(", ") if item)}


def line_starting(output: str, prefix: str) -> str:
    found = [line for line in output.splitlines() if line.startswith(prefix)]
    assert found, f"no line starting {prefix!r} in:\n{output}"
    return found[0]


def f1_of(output: str) -> float:
    match = re.search(r"accuracy   F1 (\d\.\d\d)", output)
    assert match, output
    return float(match.group(1))


def expected(scene: Path) -> tuple[dict[str, int], float]:
    """The oracle: the gateway's events for ``scene`` printed with --stdout, and its score."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("BEACON_GATEWAY__")}
    run = [sys.executable, "-m", "gateway", "run", "--scene", str(scene), "--stdout"]
    printed = subprocess.run(run, capture_output=True, check=True, timeout=RUN_LIMIT_S, env=env)
    by_type: dict[str, int] = {}
    for line in printed.stdout.splitlines():
        kind = json.loads(line)["type"]
        by_type[kind] = by_type.get(kind, 0) + 1
    scored = subprocess.run(
        [sys.executable, "-m", "gateway", "score", str(scene), "--json"],
        capture_output=True, check=True, timeout=RUN_LIMIT_S, env=env,
    )  # fmt: skip
    return by_type, float(json.loads(scored.stdout)["beacon-gateway"]["f1"])


def short_scene(directory: Path, name: str, duration_s: int) -> Path:
    text = (SCENES / f"{name}.toml").read_text(encoding="utf-8")
    text, replaced = re.subn(r"(?m)^duration_s = \d+", f"duration_s = {duration_s}", text)
    assert replaced == 1
    path = directory / f"{name}-{duration_s}s.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_store_scene_start_to_finish(tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    require_mosquitto()
    directory, env = tmpdir_env
    done = run_demo(env, "--speed", "600")
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert "subscribe  mosquitto_sub -h 127.0.0.1 -p " in out
    assert re.search(r"live view  http://127\.0\.0\.1:\d+/", out)
    lines = [line for line in out.splitlines() if EVENT_LINE.match(line)]
    assert any(" enter " in line and "customer " in line for line in lines)
    assert any("NOTIFY  rule welcome" in line for line in lines)
    # Every event the gateway produces (the --stdout oracle) reached the subscriber, once.
    oracle, scored_f1 = expected(SCENES / "store.toml")
    received = counts(line_starting(out, "  events "))
    assert received == oracle
    assert len(lines) == sum(oracle.values())
    assert "the gateway delivered every event it produced" in out
    assert line_starting(out, "Summary: the store scene (seed 1), all 30 min 00 s")
    assert "customers" in line_starting(out, "  subjects ")
    assert re.search(r"truth      \d+ of the \d+ enrolled subjects", out)
    # The received stream scores like `beacon-gateway score` (which also counts the subjects
    # whose events are anonymous, so the two differ a little).
    assert abs(f1_of(out) - scored_f1) < 0.1
    assert "zone IoU" in out
    assert not list(directory.iterdir()), "the demo left files behind"


def test_the_airport_scene_by_path(tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    require_mosquitto()
    directory, env = tmpdir_env
    scene = short_scene(directory, "airport", 600)
    done = run_demo(env, "--scene", str(scene), "--speed", "600")
    out = done.stdout
    assert done.returncode == 0, f"{out}\n{done.stderr}"
    assert any(EVENT_LINE.match(line) and " bag " in line for line in out.splitlines())
    oracle, scored_f1 = expected(scene)
    assert counts(line_starting(out, "  events ")) == oracle
    assert re.search(r"subjects   \d+ seen: 0 customers, [1-9]\d* bags", out)
    assert abs(f1_of(out) - scored_f1) < 0.1
    scene.unlink()
    assert not list(directory.iterdir())


def children(pid: int) -> dict[int, list[str]]:
    """The processes whose parent is ``pid``, with their command lines (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found[int(entry.name)] = [part.decode() for part in cmdline if part]
    return found


def gone(pid: int) -> bool:
    """Whether ``pid`` has ended (a zombie nobody reaped yet has ended too)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def wait_gone(*pids: int) -> bool:
    deadline = time.monotonic() + RUN_LIMIT_S
    while not all(gone(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Output:
    """A child's stdout read on a thread, so the test can wait for lines with a bound."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._stream = process.stdout
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for_events(self, count: int, *, after: str = "00:00:00") -> None:
        """Wait for ``count`` event lines, the last at scene time ``after`` or later."""
        deadline = time.monotonic() + RUN_LIMIT_S
        while True:
            events = [line for line in list(self.lines) if EVENT_LINE.match(line)]
            if len(events) >= count and events[-1][:8] >= after:
                return
            assert time.monotonic() < deadline, "\n".join(self.lines)
            time.sleep(0.05)

    def text(self) -> str:
        self._thread.join(RUN_LIMIT_S)
        return "\n".join(self.lines)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)]
)
def test_a_signal_stops_everything_and_prints_the_summary(
    tmpdir_env: tuple[Path, dict[str, str]], signum: signal.Signals, status: int
) -> None:
    require_mosquitto()
    directory, env = tmpdir_env
    with subprocess.Popen(
        demo("--scene", "airport", "--speed", "60"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    ) as process:  # fmt: skip
        try:
            output = Output(process)
            # Past the time the gateway may take to settle a change (140 s), so there is some
            # scene time to score.
            output.wait_for_events(20, after="00:05:00")
            started = children(process.pid)
            broker = next(pid for pid, cmd in started.items() if "mosquitto.conf" in cmd[-1])
            gateway = next(p for p, cmd in started.items() if cmd[1:4] == ["-m", "gateway", "run"])
            assert Path(started[broker][-1]).parent.parent == directory
            assert len(list(directory.iterdir())) == 2  # the gateway's and the broker's
            process.send_signal(signum)
            assert process.wait(RUN_LIMIT_S) == status
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        out = output.text()
        assert process.stderr is not None
        err = process.stderr.read()
    assert f"stopped by {signum.name}; everything it started is stopped" in err
    assert "Summary: the airport scene (seed 1), stopped early: scored up to" in out
    assert line_starting(out, "  events ")
    assert "bags" in line_starting(out, "  subjects ")
    assert "accuracy " in out
    assert gone(broker)
    assert gone(gateway)
    assert not list(directory.iterdir())


def test_children_do_not_outlive_a_killed_demo(tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    # SIGKILL leaves the demo no time to stop anything: the kernel tells its children
    # (PR_SET_PDEATHSIG), which then stop on their own.
    require_mosquitto()
    _, env = tmpdir_env
    with subprocess.Popen(
        demo("--speed", "60"), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    ) as process:
        output = Output(process)
        output.wait_for_events(5)
        started = list(children(process.pid))
        assert len(started) == 2  # mosquitto and the gateway
        process.kill()
        process.wait(RUN_LIMIT_S)
        output.text()
    assert wait_gone(*started), "a child of the killed demo is still running"


def test_missing_mosquitto_says_how_to_install_and_starts_nothing(
    tmpdir_env: tuple[Path, dict[str, str]],
) -> None:
    directory, env = tmpdir_env
    done = run_demo(env, "--mosquitto", str(directory / "no-such-mosquitto"))
    assert done.returncode == 1
    assert "mosquitto not found at" in done.stderr
    assert "sudo apt-get install mosquitto" in done.stderr
    assert "--mosquitto PATH" in done.stderr
    assert done.stdout == ""
    assert not list(directory.iterdir())


def test_a_broker_that_will_not_start_is_reported_and_cleaned_up(
    tmpdir_env: tuple[Path, dict[str, str]],
) -> None:
    directory, env = tmpdir_env
    done = run_demo(env, "--mosquitto", shutil.which("false") or "/bin/false")
    assert done.returncode == 1
    assert "exited at start-up" in done.stderr
    assert not list(directory.iterdir())


def test_a_failing_gateway_shows_the_end_of_its_log(
    tmpdir_env: tuple[Path, dict[str, str]],
) -> None:
    require_mosquitto()
    directory, env = tmpdir_env
    env["BEACON_GATEWAY__MQTT__PASSWORD_FILE"] = str(directory / "no-such-password")
    done = run_demo(env, "--speed", "600")
    assert done.returncode == 1
    assert "the gateway exited with status 2; the end of its log:" in done.stderr
    assert "no-such-password" in done.stderr
    assert "Summary: the store scene" in done.stdout
    assert not list(directory.iterdir())


def test_an_unknown_scene_is_a_usage_error(tmpdir_env: tuple[Path, dict[str, str]]) -> None:
    require_mosquitto()
    directory, env = tmpdir_env
    done = run_demo(env, "--scene", "moon")
    assert done.returncode == 2
    assert "no scene named 'moon'" in done.stderr
    assert not list(directory.iterdir())
