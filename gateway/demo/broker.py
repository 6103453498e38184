"""A private mosquitto for the demo: its own config, directory and free loopback port.

The broker listens on 127.0.0.1 only, on a port nobody used a moment before, and keeps its
persistence in its own directory (removed by the demo at the end). Nothing else is read from
the system's mosquitto configuration, so a system broker on 1883 does not matter.

The root pitfall (../shared/docs/platform-notes.md 3.4, tests/mosquitto.py): started as root,
mosquitto drops to the ``mosquitto`` user, which cannot write a directory made by
``tempfile.mkdtemp`` (0700, root's). It would say so only in its log and lose what it had
acknowledged. So as root the directory is handed to that user, as the tests do, and the demo
starts mosquitto as that user itself: then mosquitto changes no credentials, which would clear
the kernel's promise to stop it should the demo be killed (gateway/demo/children.py).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from gateway.demo import children
from gateway.demo.errors import DemoError

if TYPE_CHECKING:
    from collections.abc import Callable

CANDIDATES: Final = ("mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
"""Debian installs mosquitto in /usr/sbin, which is not on a normal user's PATH."""
INSTALL_HINT: Final = (
    "install it (Debian/Raspberry Pi OS: sudo apt-get install mosquitto; `make demo` does it "
    "when run as root) or pass --mosquitto PATH"
)
START_LIMIT_S: Final = 10.0
"""How long the broker may take to accept connections before the demo gives up."""
STOP_LIMIT_S: Final = 5.0
"""How long the broker may take to exit on SIGTERM before it is killed."""
LOG_TAIL_LINES: Final = 10
MAX_QUEUED_MESSAGES: Final = 100_000
"""Per client, above those in flight: a demo's reconnecting subscriber loses nothing."""
DROPPED_NOTICE: Final = "Outgoing messages are being dropped for client"
"""What mosquitto logs (a notice) when a client's queue is full and it drops a message."""


def find_mosquitto(explicit: str | None = None) -> str:
    """The mosquitto executable: ``explicit``, or the first one found; DemoError if none."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            msg = f"mosquitto not found at {explicit}: {INSTALL_HINT}"
            raise DemoError(msg)
        if not os.access(path, os.X_OK):
            msg = f"{explicit} is not executable: pass the mosquitto program with --mosquitto"
            raise DemoError(msg)
        return str(path)
    for candidate in CANDIDATES:
        found = shutil.which(candidate)
        if found is not None:
            return found
    msg = f"mosquitto is not installed: {INSTALL_HINT}"
    raise DemoError(msg)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def config_text(directory: Path, port: int, max_queued: int = MAX_QUEUED_MESSAGES) -> str:
    """The broker's whole configuration: one loopback listener, persistence in ``directory``.

    ``max_queued`` is mosquitto's ``max_queued_messages``. Not 0, which the manual says is no
    limit: several 2.0 releases drop or refuse everything then (mosquitto #2879, #3244).
    """
    return "\n".join(
        [
            "# beacon-gateway demo: a private broker, removed when the demo ends",
            f"listener {port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {directory}/",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            f"max_queued_messages {max_queued}",
            "set_tcp_nodelay true",  # small PUBACKs and batches: no wait for a delayed ACK
            "",
        ]
    )


class Broker:
    """One mosquitto process in ``directory`` (which must exist and be empty).

    :meth:`start` returns once the listener accepts connections; :meth:`stop` always ends the
    process (SIGTERM, then SIGKILL after :data:`STOP_LIMIT_S`).
    """

    def __init__(
        self,
        binary: str,
        directory: Path,
        port: int | None = None,
        *,
        max_queued: int = MAX_QUEUED_MESSAGES,
    ) -> None:
        self.binary = binary
        self.max_queued = max_queued
        self.directory = directory
        self.port = free_port() if port is None else port
        self.config_path = directory / "mosquitto.conf"
        self.log_path = directory / "mosquitto.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it was started."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self, interrupted: Callable[[], bool] = lambda: False) -> None:
        """Write the config, start mosquitto, wait until it accepts connections.

        Raises :class:`DemoError` with the broker's log when it exits or does not listen in
        time; returns early (still starting) when ``interrupted()`` says so.
        """
        self.config_path.write_text(
            config_text(self.directory, self.port, self.max_queued), encoding="utf-8"
        )
        account = _broker_account()
        if account is not None:
            for path in (self.directory, *self.directory.iterdir()):
                os.chown(path, *account)
        self._log = self.log_path.open("ab")
        argv = [self.binary, "-c", str(self.config_path)]
        try:
            self._process = children.start(argv, self._log, account=account)
        except OSError as exc:
            msg = f"cannot start {self.binary}: {exc.strerror}; {INSTALL_HINT}"
            raise DemoError(msg) from None
        deadline = time.monotonic() + START_LIMIT_S
        while not self._accepts():
            if self._process.poll() is not None:
                status = self._process.returncode
                msg = f"{self.binary} exited at start-up (status {status}):\n{self.log_tail()}"
                if account is not None:
                    msg += f"\n  (it runs as user mosquitto, which must reach {self.directory})"
                raise DemoError(msg)
            if time.monotonic() > deadline:
                msg = (
                    f"mosquitto did not listen on 127.0.0.1:{self.port} in {START_LIMIT_S} s:\n"
                    f"{self.log_tail()}"
                )
                raise DemoError(msg)
            if interrupted():
                return
            time.sleep(0.02)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM, wait up to :data:`STOP_LIMIT_S`, then SIGKILL; idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_LIMIT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def dropped_clients(self) -> list[str]:
        """The clients the broker said it dropped messages for (its log), in log order."""
        if not self.log_path.exists():
            return []
        names: dict[str, None] = {}
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            _, found, rest = line.partition(DROPPED_NOTICE)
            if found:
                names[rest.strip().removesuffix(".")] = None
        return list(names)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines the broker logged (for error messages)."""
        if not self.log_path.exists():
            return "  (no log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(f"  {line}" for line in text[-lines:]) or "  (empty log)"


def _broker_account() -> tuple[int, int] | None:
    """As root, the ``mosquitto`` user's (uid, gid) to run the broker as (see module doc).

    None when not root (mosquitto runs as the demo's user) or when there is no such user
    (mosquitto then stays root, and can write anyway).
    """
    if os.geteuid() != 0:
        return None
    try:
        account = pwd.getpwnam("mosquitto")
    except KeyError:
        return None
    return account.pw_uid, account.pw_gid
