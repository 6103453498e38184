"""A small fleet for the tests: a scene's gateways as keyless gateways, a site config, workers.

:func:`site_files` writes what a resolver worker and an arbiter read (the scene's registry and a
site configuration pointing at a test broker); :class:`WorkerProcess` runs ``beacon-gateway
resolve`` as a child process and always kills it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, Self

from gateway.fleet.site import SiteFiles, write_site

if TYPE_CHECKING:
    from types import TracebackType

    from gateway.sources.sim import SimScene

REPO: Final = Path(__file__).resolve().parents[2]
STORE_SCENE: Final = REPO / "configs" / "scenes" / "store.toml"
WAIT_S: Final = 60.0
"""Every wait gives up (and fails the test) after this long; never a timing claim."""


def site_files(
    scene: SimScene, directory: Path, port: int, *, shards: int = 1, prefix: str = "fleet"
) -> SiteFiles:
    """A site configuration of the scene's floor (the broker on ``port``) and its registry."""
    return write_site(
        scene.config_document(),
        scene.run.registry_toml(),
        directory,
        port,
        shards=shards,
        prefix=prefix,
    )


class WorkerProcess:
    """``beacon-gateway resolve`` as a child process, its log in a file."""

    def __init__(self, config: Path, worker_id: str, log_dir: Path) -> None:
        self.config = config
        self.worker_id = worker_id
        self.log_path = log_dir / f"{worker_id}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self.starts = 0

    def start(self) -> Self:
        """Start it and wait until its subscription stands."""
        command = [
            sys.executable, "-m", "gateway", "resolve",
            "--config", str(self.config), "--worker-id", self.worker_id,
        ]  # fmt: skip
        self._log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("BEACON_GATEWAY__")}
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPO, env=env
        )
        self.starts += 1
        deadline = time.monotonic() + WAIT_S
        while self.log_text().count("resolver_subscribed") < self.starts:
            if self.process.poll() is not None:
                msg = f"worker {self.worker_id} exited: {self.log_text()[-2000:]}"
                raise AssertionError(msg)
            if time.monotonic() > deadline:
                msg = f"worker {self.worker_id} did not connect: {self.log_text()[-2000:]}"
                raise AssertionError(msg)
            time.sleep(0.05)
        return self

    def log_text(self) -> str:
        """Its log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no goodbye, nothing acknowledged that was not already."""
        self._end(signal.SIGKILL)

    def stop(self) -> int:
        """SIGTERM, and its exit status."""
        return self._end(signal.SIGTERM)

    def _end(self, how: signal.Signals) -> int:
        process = self.process
        if process is None:
            return 0
        if process.poll() is None:
            process.send_signal(how)
        try:
            code = process.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(Exception):
            self.kill()
