"""One demo run: start the broker, the subscriber and the gateway; watch; stop them all.

The order matters. The subscriber is subscribed before the gateway starts, so it receives
every event. On the way out the gateway stops first (SIGTERM: it delivers what it can and
publishes its retained ``offline`` status), the subscriber drains what is still coming, and
only then does the broker stop. Every wait is bounded; whatever happens, every process the
demo started is ended and reaped before the summary is printed (and the command removes the
run's directories).

The children run in sessions of their own, so a Ctrl-C at the terminal reaches the demo only
and the demo stops them in that order. A second Ctrl-C kills what is still running.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self, TextIO

from gateway.demo import lines
from gateway.demo.gateway_child import STOP_LIMIT_S
from gateway.demo.summary import Tally, assess, render
from gateway.demo.watch import Watcher

if TYPE_CHECKING:
    from types import FrameType

    from gateway.demo.broker import Broker
    from gateway.demo.gateway_child import Delivery, GatewayChild
    from gateway.demo.reference import Reference

EVENTS_HEADING: Final = (
    "Events as a subscriber receives them (scene time, event, subject, zone, details):"
)
TICK_S: Final = 0.1
"""How often the demo looks at the gateway and at signals between network reads."""
QUIET_S: Final = 0.3
"""Once the gateway said ``offline``, this long without a message means all has arrived."""
SILENT_S: Final = 3.0
"""Without its ``offline`` (a gateway that died), this long without a message ends the wait."""
DRAIN_LIMIT_S: Final = 10.0
"""The longest wait for messages after the gateway exited."""


STOP_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Ctrl-C, a polite kill, the terminal closing: each stops the demo and everything it started."""


class Stop:
    """The :data:`STOP_SIGNALS`, noted instead of acted on at once; their numbers are kept."""

    def __init__(self) -> None:
        self.signals: list[int] = []
        self._previous: dict[int, object] = {}

    def __enter__(self) -> Self:
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._note)
        return self

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.signals.append(signum)

    @property
    def requested(self) -> bool:
        """Whether a stop was asked for."""
        return bool(self.signals)

    @property
    def hurried(self) -> bool:
        """Whether it was asked for twice (kill, do not wait)."""
        return len(self.signals) > 1


@dataclass(slots=True)
class Outcome:
    """How the run ended."""

    gateway_status: int | None = None
    """The gateway's exit status (negative: the signal that killed it; None: never started)."""
    finished: bool = False
    """Whether the gateway exited by itself (the scene ended), not stopped by the demo."""
    interrupted: int | None = None
    """The signal that stopped the run early, if one did."""
    delivery: Delivery | None = None
    gateway_log: str = ""
    problems: list[str] = field(default_factory=list)


class Session:
    """The demo's processes, subscriber and directory for one run."""

    def __init__(
        self,
        reference: Reference,
        broker: Broker,
        gateway: GatewayChild,
        out: TextIO,
        *,
        quiet: bool = False,
        colour: bool = False,
    ) -> None:
        self.reference = reference
        self.broker = broker
        self.gateway = gateway
        self.tally = Tally()
        topic = f"{gateway.options.topic_prefix}/v1/#"
        self.watcher = Watcher(broker.port, topic, self._received)
        self._out = out
        self._quiet = quiet
        self._colour = colour
        self._offline = False

    def _print(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()

    def _received(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/status"):
            status = lines.parse(payload)
            self._offline = status is not None and status.get("status") == "offline"
            if not self._quiet:
                self._print(lines.status_line(topic, payload, colour=self._colour))
            return
        event = lines.parse(payload)
        if event is None:
            self.tally.unreadable += 1
            if not self._quiet:
                self._print(lines.unreadable_line(topic, payload, colour=self._colour))
            return
        if self.tally.add(event) and not self._quiet:
            self._print(lines.event_line(event, colour=self._colour))

    def run(self, stop: Stop, banner: list[str]) -> Outcome:
        """Start everything, watch until the scene ends or a stop is asked for, stop all."""
        gateway = self.gateway
        outcome = Outcome()
        try:
            self.broker.start(lambda: stop.requested)
            if not stop.requested:
                self.watcher.start(lambda: stop.requested)
            if not stop.requested:
                for line in banner:
                    self._print(line)
                if not self._quiet:
                    self._print("")
                    self._print(EVENTS_HEADING)
                gateway.start()
                self._watch(stop, outcome)
            self._finish(stop, outcome)
        finally:
            gateway.close()
            self.watcher.stop()
            self.broker.stop()
        outcome.interrupted = stop.signals[0] if stop.signals else None
        return outcome

    def _watch(self, stop: Stop, outcome: Outcome) -> None:
        while not stop.requested and self.gateway.poll() is None:
            if not self.broker.running:
                outcome.problems.append(
                    f"mosquitto exited during the run:\n{self.broker.log_tail()}"
                )
                return
            self.watcher.pump(TICK_S)

    def _finish(self, stop: Stop, outcome: Outcome) -> None:
        if self.gateway.pid is None:
            return  # stopped before the gateway started
        outcome.finished = self.gateway.poll() is not None
        if not outcome.finished:
            self.gateway.terminate()
            deadline = time.monotonic() + STOP_LIMIT_S
            while self.gateway.poll() is None and not stop.hurried:
                if time.monotonic() > deadline:
                    outcome.problems.append(
                        f"the gateway did not stop within {STOP_LIMIT_S:.0f} s; killed"
                    )
                    break
                self.watcher.pump(TICK_S)
            self.gateway.kill()
        outcome.gateway_status = self.gateway.poll()
        if not stop.hurried:
            self._drain(stop)
        outcome.delivery = self.gateway.delivery()
        outcome.gateway_log = self.gateway.log_tail()

    def _drain(self, stop: Stop) -> None:
        """Receive what the broker still has for us (bounded; see the constants)."""
        started = time.monotonic()
        while not stop.hurried and time.monotonic() - started < DRAIN_LIMIT_S:
            if not self.watcher.connected:
                return
            last = self.watcher.last_message or started
            quiet = time.monotonic() - max(last, started)
            if (self._offline and quiet >= QUIET_S) or quiet >= SILENT_S:
                return
            self.watcher.pump(TICK_S)

    def summary(self, outcome: Outcome) -> list[str]:
        """The summary of what was received."""
        whole = outcome.finished and outcome.gateway_status == 0 and outcome.interrupted is None
        assessment = assess(self.reference, self.tally, whole=whole)
        return render(self.reference, self.tally, assessment, outcome.delivery)


def work_directories() -> tuple[Path, Path]:
    """Fresh directories for the run: the gateway's (outbox, log) and the broker's.

    Side by side, not nested: as root the broker runs as the ``mosquitto`` user, which must
    reach its own directory but has no business in the gateway's (both are 0700).
    """
    directory = Path(tempfile.mkdtemp(prefix="beacon-gateway-demo-"))
    try:
        broker_dir = Path(tempfile.mkdtemp(prefix="beacon-gateway-demo-broker-"))
    except OSError:
        remove(directory)
        raise
    return directory, broker_dir


def remove(*directories: Path) -> None:
    """Remove the run's directories (everything in them is the demo's)."""
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
