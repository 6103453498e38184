"""A tiny HTTP/1.1 server on the event loop: ``GET /metrics`` and ``GET /healthz``, nothing else.

It runs on the gateway's asyncio loop (no thread) and is bound to loopback by default: metrics
name zones and counts that are nobody else's business. Requests are read with a size limit and
a timeout; anything but GET of the two paths gets 404/405. ``/healthz`` answers 200 when the
gateway is ready and 503 otherwise, with the checks as JSON either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, Final

MAX_REQUEST_BYTES: Final = 8192
"""A request line and headers longer than this are refused: nothing here needs more."""
READ_TIMEOUT_S: Final = 5.0
"""A client that sends nothing for this long is dropped (slowloris)."""
METRICS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

Health = Callable[[], tuple[bool, dict[str, Any]]]


class OpsServer:
    """Serves ``metrics()`` (Prometheus text) and ``health()`` (ready, checks) over HTTP."""

    def __init__(self, metrics: Callable[[], bytes], health: Health) -> None:
        self._metrics = metrics
        self._health = health
        self._server: asyncio.Server | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen; the address bound (port 0 picks a free one)."""
        self._server = await asyncio.start_server(self._handle, host, port)
        address = self._server.sockets[0].getsockname()
        return str(address[0]), int(address[1])

    async def close(self) -> None:
        """Stop listening and drop open connections."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(AttributeError):  # Python < 3.13 has no close_clients
                self._server.close_clients()  # type: ignore[attr-defined]
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            writer.close()
            return
        try:
            status, content_type, body = self._respond(head)
            await self._send(writer, status, content_type, body)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _respond(self, head: bytes) -> tuple[str, str, bytes]:
        if len(head) > MAX_REQUEST_BYTES:
            return "431 Request Header Fields Too Large", "text/plain", b"too large\n"
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3:  # noqa: PLR2004 - method, target, version
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target, _ = parts
        path = target.split("?", 1)[0]
        if path not in {"/metrics", "/healthz"}:
            return "404 Not Found", "text/plain", b"not found\n"
        if method != "GET":
            return "405 Method Not Allowed", "text/plain", b"GET only\n"
        if path == "/metrics":
            return "200 OK", METRICS_TYPE, self._metrics()
        ready, checks = self._health()
        body = json.dumps({"ready": ready, **checks}, sort_keys=True).encode() + b"\n"
        return ("200 OK" if ready else "503 Service Unavailable"), "application/json", body

    @staticmethod
    async def _send(
        writer: asyncio.StreamWriter, status: str, content_type: str, body: bytes
    ) -> None:
        head = (
            f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + body)
        with contextlib.suppress(OSError):
            await writer.drain()
