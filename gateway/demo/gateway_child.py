"""The real gateway as the demo runs it: ``beacon-gateway run --scene`` in a child process.

Configured the way an operator configures a gateway, with ``BEACON_GATEWAY__*`` variables
(gateway/config_env.py): the demo's broker, an outbox and JSON logs in the demo's directory,
the ops HTTP server on a free port. The console is left to the subscriber's view; the log file
is shown when the gateway fails, and its ``gateway_stopping`` line says whether every event was
delivered before the gateway exited.
"""

from __future__ import annotations

import json
import signal
import sys
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Final

from gateway.demo import children
from gateway.demo.errors import DemoError

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Mapping, Sequence
    from pathlib import Path

STOP_LIMIT_S: Final = 15.0
"""How long the gateway may take to stop on SIGTERM before it is killed: its own shutdown
gives the publisher 5 s to deliver and 5 s to say goodbye (gateway/daemon.py)."""
LOG_TAIL_LINES: Final = 15
ENV_PREFIX: Final = "BEACON_GATEWAY__"


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    """What the child is asked to do, and where its files and ports are."""

    scene: Path
    speed: float
    seed: int | None
    broker_port: int
    http_port: int
    directory: Path
    topic_prefix: str = "beacon-gateway"

    @property
    def outbox(self) -> Path:
        """The child's outbox file."""
        return self.directory / "outbox.sqlite3"

    @property
    def log(self) -> Path:
        """The child's log file (JSON lines)."""
        return self.directory / "gateway.log"


def command(options: GatewayOptions) -> list[str]:
    """The child's command line: the same ``run`` as on hardware, on a paced scene."""
    seed = () if options.seed is None else ("--seed", str(options.seed))
    return [
        sys.executable, "-m", "gateway", "run", "--scene", str(options.scene), *seed,
        "--realtime", "--speed", f"{options.speed:g}",
    ]  # fmt: skip


def environment(options: GatewayOptions, base: Mapping[str, str]) -> dict[str, str]:
    """``base`` (the user's own overrides stay) with the demo's settings on top."""
    overrides = {
        "MQTT__HOST": "127.0.0.1",
        "MQTT__PORT": str(options.broker_port),
        "MQTT__TOPIC_PREFIX": options.topic_prefix,
        "OUTBOX__PATH": json.dumps(str(options.outbox)),
        "HTTP__ENABLED": "true",
        "HTTP__HOST": "127.0.0.1",
        "HTTP__PORT": str(options.http_port),
        "LOGGING__LEVEL": "info",
        "LOGGING__FORMAT": "json",
    }
    ours = {ENV_PREFIX + name for name in overrides}
    kept = {k: v for k, v in base.items() if k.upper() not in ours}
    return kept | {ENV_PREFIX + name: value for name, value in overrides.items()}


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the gateway said when it stopped: every event delivered, or how many stayed."""

    delivered_all: bool
    outbox_depth: int


class GatewayChild:
    """The gateway process; :meth:`stop` always ends it (SIGTERM, then SIGKILL)."""

    def __init__(self, options: GatewayOptions, base_env: Mapping[str, str]) -> None:
        self.options = options
        self._env = environment(options, base_env)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's process id once started."""
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        """Start the gateway (it connects to the broker and plays the scene)."""
        self._log = self.options.log.open("ab")
        try:
            self._process = children.start(command(self.options), self._log, self._env)
        except OSError as exc:
            msg = f"cannot start the gateway ({sys.executable}): {exc.strerror}"
            raise DemoError(msg) from None

    def poll(self) -> int | None:
        """The exit status once the gateway has exited, else None."""
        return None if self._process is None else self._process.poll()

    def terminate(self) -> None:
        """Ask the gateway to stop (SIGTERM: it delivers what it can and says ``offline``)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the gateway and reap it."""
        if self._process is not None:
            if self._process.poll() is None:
                self._process.kill()
            self._process.wait()

    def close(self) -> None:
        """Make sure the process is gone and its log closed."""
        self.kill()
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_lines(self) -> list[str]:
        """Everything the gateway logged so far."""
        if not self.options.log.exists():
            return []
        return self.options.log.read_text(encoding="utf-8", errors="replace").splitlines()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last lines of the log, indented (for error messages)."""
        tail = self.log_lines()[-lines:]
        return "\n".join(f"  {line}" for line in tail) or "  (the gateway logged nothing)"

    def delivery(self) -> Delivery | None:
        """The gateway's last ``gateway_stopping`` report, if it logged one."""
        return delivery_from_log(self.log_lines())


def delivery_from_log(lines: Sequence[str]) -> Delivery | None:
    """The last ``gateway_stopping`` line of a JSON log, as a :class:`Delivery`."""
    for line in reversed(lines):
        if '"gateway_stopping"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "gateway_stopping":
            depth = entry.get("outbox_depth")
            return Delivery(
                delivered_all=entry.get("delivered_all") is True,
                outbox_depth=depth if isinstance(depth, int) else 0,
            )
    return None
