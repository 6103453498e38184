"""Opening the outbox at start-up, and waiting (not crash-looping) while its disk is not usable.

A state directory that is read-only or full at boot is usually fixed by an operator, or by a
log rotation, while the gateway waits. Exiting instead would make systemd restart it every few
seconds (a crash loop that floods the journal and hides the reason) or give up for good. So a
failure a retry can heal (``disk-full``, ``read-only``, ``io``, ``in-use``) is logged with its
remedy and retried with capped backoff, while the process stays up and says why:

- ``/healthz`` answers 503 with ``outbox_health: unavailable`` and the error;
- ``/metrics`` serves ``beacon_gateway_outbox_healthy 0``;
- systemd gets READY (the process is up, degraded), WATCHDOG pings (the loop is alive) and a
  STATUS line naming the reason.

Nothing is sensed meanwhile: with nowhere to keep an event, none is accepted. A corrupt file or
a newer schema cannot heal by waiting: that error is raised at once (exit status 2, which the
systemd unit does not restart). SIGTERM or SIGINT while waiting ends the wait: ``None``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import TYPE_CHECKING, Any, Final

import structlog

from gateway.delivery.outbox_async import AsyncOutbox
from gateway.delivery.outbox_errors import OutboxError, OutboxErrorReason
from gateway.ops.http import Health, OpsServer

if TYPE_CHECKING:
    from gateway.config import Config
    from gateway.ops.sdnotify import Notifier

OPEN_RETRY_S: Final = (1.0, 30.0)
"""Backoff (first, cap) between attempts to open the outbox: freed space is used within 30 s."""
HEALS_BY_WAITING: Final = frozenset(
    {
        OutboxErrorReason.DISK_FULL,
        OutboxErrorReason.READ_ONLY,
        OutboxErrorReason.IO,
        OutboxErrorReason.IN_USE,
    }
)
"""Reasons that an operator (or the previous process ending) fixes while the gateway waits."""
WAITING_METRICS: Final = (
    b"# HELP beacon_gateway_outbox_healthy 1 when the outbox commits "
    b"(0 while commits fail: disk full, read-only).\n"
    b"# TYPE beacon_gateway_outbox_healthy gauge\n"
    b"beacon_gateway_outbox_healthy 0.0\n"
)

_log = structlog.get_logger(__name__)


async def open_outbox(config: Config, notifier: Notifier) -> AsyncOutbox | None:
    """The opened outbox; waits while its disk is unusable (see the module docstring).

    Returns None if asked to stop while waiting. Raises :class:`OutboxError` for a failure that
    waiting cannot heal.
    """
    section = config.outbox
    path = section.resolved_path()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    problem: list[OutboxError] = []
    server: OpsServer | None = None
    delay = OPEN_RETRY_S[0]
    try:
        while True:
            try:
                return await AsyncOutbox.open(
                    path,
                    max_events=section.max_events,
                    max_bytes=None if section.max_mb is None else int(section.max_mb * 2**20),
                    when_full=section.when_full,
                    synchronous=section.synchronous,
                )
            except OutboxError as exc:
                if exc.reason not in HEALS_BY_WAITING:
                    raise
                if not problem:
                    notifier.ready(f"waiting for the outbox ({exc.reason})")
                    server = await _waiting_server(config, lambda: _health(problem[-1]))
                problem[:] = [exc]
                _log.error(
                    "outbox_unavailable", reason=str(exc.reason), error=str(exc), retry_in_s=delay
                )
                notifier.status(f"outbox unavailable ({exc.reason}), retrying: {exc}")
            if await _sleep_or_stop(delay, stop, notifier):
                _log.info("outbox_wait_stopped")
                return None
            delay = min(delay * 2, OPEN_RETRY_S[1])
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signum)
        if server is not None:
            await server.close()


def _health(error: OutboxError) -> tuple[bool, dict[str, Any]]:
    return False, {"outbox_health": "unavailable", "outbox_error": str(error)}


async def _waiting_server(config: Config, health: Health) -> OpsServer | None:
    if not config.http.enabled:
        return None
    server = OpsServer(lambda: WAITING_METRICS, health)
    await server.start(config.http.host, config.http.port)
    return server


async def _sleep_or_stop(delay_s: float, stop: asyncio.Event, notifier: Notifier) -> bool:
    """Sleep ``delay_s`` pinging the watchdog; True if asked to stop meanwhile."""
    period = notifier.watchdog_s
    step = delay_s if period is None else min(delay_s, period / 2)
    remaining = delay_s
    while remaining > 0:
        notifier.watchdog()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(step, remaining)):
                await stop.wait()
        if stop.is_set():
            return True
        remaining -= step
    return False
