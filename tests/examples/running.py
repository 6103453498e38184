"""Child processes for the examples' end-to-end tests: an example script and the real gateway.

Every wait is bounded and fails the test with what the process printed; every process started
is stopped (SIGINT, then SIGKILL) before the test ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Self

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
WAIT_S = 30.0
"""The longest any single wait may take; never a timing claim, only a bound."""
GATEWAY_LIMIT_S = 120.0
"""The most a whole gateway run may take (a 2-core machine, busy with other tests)."""


def _collect(stream: IO[str], lines: list[str], lock: threading.Lock) -> None:
    for line in stream:
        with lock:
            lines.append(line.rstrip("\n"))


class Example:
    """``python examples/<script> <args>`` with its stdout and stderr collected line by line."""

    def __init__(self, script: str, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.command = [sys.executable, str(EXAMPLES / script), *args]
        self.env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
        self._lock = threading.Lock()
        self._out: list[str] = []
        self._err: list[str] = []
        self._readers: list[threading.Thread] = []
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> Self:
        """Start it (from the repository's root)."""
        self._process = subprocess.Popen(
            self.command,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env,
        )
        for stream, lines in ((self._process.stdout, self._out), (self._process.stderr, self._err)):
            assert stream is not None
            reader = threading.Thread(target=_collect, args=(stream, lines, self._lock))
            reader.start()
            self._readers.append(reader)
        return self

    @property
    def process(self) -> subprocess.Popen[str]:
        """The running process."""
        assert self._process is not None, "not started"
        return self._process

    def stdout(self) -> list[str]:
        """Its stdout lines so far."""
        with self._lock:
            return list(self._out)

    def stderr(self) -> list[str]:
        """Its stderr lines so far."""
        with self._lock:
            return list(self._err)

    def transcript(self) -> str:
        """The tail of what it printed, for failure messages."""
        return "\n".join(["--- stdout", *self.stdout()[-40:], "--- stderr", *self.stderr()[-40:]])

    def wait_for(
        self, predicate: Callable[[Example], bool], what: str, *, limit_s: float = WAIT_S
    ) -> None:
        """Poll until ``predicate(self)``; fail (with its output) after ``limit_s`` or on exit."""
        deadline = time.monotonic() + limit_s
        while not predicate(self):
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the readers drain the pipes
                if predicate(self):
                    return
                pytest.fail(
                    f"{self.command[1]} exited ({self.process.returncode}) before {what}\n"
                    f"{self.transcript()}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"gave up after {limit_s} s waiting for {what}\n{self.transcript()}")
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGINT (Ctrl-C) and wait for it to exit; its exit status. Fails if it hangs."""
        process = self.process
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(WAIT_S)
                pytest.fail(f"{self.command[1]} ignored SIGINT; killed\n{self.transcript()}")
        self._close()
        return process.returncode

    def _close(self) -> None:
        """Wait for the readers to drain the pipes, then close them."""
        for reader in self._readers:
            reader.join(WAIT_S)
        process = self._process
        if process is not None:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(WAIT_S)
        self._close()


def subscribed(example: Example) -> bool:
    """Whether the example's subscriptions were granted (consumer.py logs it)."""
    return any("subscribed at QoS 1" in line for line in example.stderr())


def gateway_environment(port: int, state: Path) -> dict[str, str]:
    """The environment of a gateway publishing to the test broker, its outbox in ``state``."""
    return {
        **os.environ,
        "BEACON_GATEWAY__MQTT__HOST": "127.0.0.1",
        "BEACON_GATEWAY__MQTT__PORT": str(port),
        "BEACON_GATEWAY__OUTBOX__PATH": str(state / "outbox.sqlite3"),
        "BEACON_GATEWAY__HTTP__ENABLED": "false",
    }


def run_gateway(scene: Path, port: int, state: Path, *, speed: float) -> None:
    """``beacon-gateway run --scene SCENE --realtime --speed SPEED`` to the end of the scene."""
    command = [
        sys.executable,
        "-m",
        "gateway",
        "run",
        "--scene",
        str(scene),
        "--realtime",
        "--speed",
        f"{speed:g}",
    ]
    try:
        done = subprocess.run(
            command,
            cwd=REPO,
            env=gateway_environment(port, state),
            capture_output=True,
            timeout=GATEWAY_LIMIT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the gateway did not finish {scene.name} in {GATEWAY_LIMIT_S} s")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
