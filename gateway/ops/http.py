"""A tiny HTTP/1.1 server on the event loop: metrics, health, and the operators' live view.

``GET /metrics`` (Prometheus text) and ``GET /healthz`` always; with a live view
(docs/live-view.md), ``GET /`` (the page), its static files under ``/live/`` (shipped in
``gateway/ops/live_page/``) and ``GET /live/state`` (a JSON snapshot the page polls).

It runs on the gateway's asyncio loop (no thread) and is bound to loopback by default: metrics
and the live view name zones and counts that are nobody else's business. Requests are read with
a size limit and a timeout; anything but GET of a known path gets 404/405. ``/healthz`` answers
200 when the gateway is ready and 503 otherwise, with the checks as JSON either way. The page
and its files are served with a Content Security Policy that allows nothing but this origin (no
inline script or style, nothing from elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, Final

import structlog

MAX_REQUEST_BYTES: Final = 8192
"""A request line and headers longer than this are refused: nothing here needs more."""
READ_TIMEOUT_S: Final = 5.0
"""A client that sends nothing for this long is dropped (slowloris)."""
METRICS_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
JSON_TYPE: Final = "application/json"
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
"""Only this origin's own files: no inline script or style, no CDN, no framing."""
PAGE_FILES: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/live/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/live/app.css": ("app.css", "text/css; charset=utf-8"),
    "/live/icon.svg": ("icon.svg", "image/svg+xml"),
}
"""Path -> (file in gateway/ops/live_page/, content type)."""
LIVE_STATE_PATH: Final = "/live/state"

Health = Callable[[], tuple[bool, dict[str, Any]]]
LiveView = Callable[[], dict[str, Any]]

_PAGE_HEADERS: Final = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
)
_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    """One response: status line text, content type, body and extra headers."""

    status: str
    content_type: str
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: str, body: bytes) -> Reply:
    return Reply(status, "text/plain", body)


def _page_file(body: bytes, content_type: str) -> Reply:
    return Reply("200 OK", content_type, body, (*_PAGE_HEADERS, ("Cache-Control", "no-cache")))


def _live_state(live: LiveView) -> Reply:
    body = json.dumps(live(), sort_keys=True).encode() + b"\n"
    return Reply("200 OK", JSON_TYPE, body, (*_PAGE_HEADERS, ("Cache-Control", "no-store")))


def load_page() -> dict[str, tuple[bytes, str]]:
    """The live page's files from the package: path -> (body, content type)."""
    folder = resources.files("gateway.ops").joinpath("live_page")
    return {
        path: (folder.joinpath(name).read_bytes(), content_type)
        for path, (name, content_type) in PAGE_FILES.items()
    }


class OpsServer:
    """Serves ``metrics()``, ``health()`` and, when given, ``live()`` over HTTP."""

    def __init__(
        self, metrics: Callable[[], bytes], health: Health, live: LiveView | None = None
    ) -> None:
        """``live``: the live view's snapshot; without it there is no page."""
        self._metrics = metrics
        self._health = health
        self._routes: dict[str, Callable[[], Reply]] = {
            "/metrics": self._get_metrics,
            "/healthz": self._get_health,
        }
        if live is not None:
            self._routes[LIVE_STATE_PATH] = functools.partial(_live_state, live)
            for path, (body, content_type) in load_page().items():
                self._routes[path] = functools.partial(_page_file, body, content_type)
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
            try:
                reply = self._respond(head)
            except Exception:  # noqa: BLE001 - a failing snapshot still gets an answer
                _log.exception("ops_request_failed")
                reply = _text("500 Internal Server Error", b"internal error\n")
            await self._send(writer, reply)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def _respond(self, head: bytes) -> Reply:
        if len(head) > MAX_REQUEST_BYTES:
            return _text("431 Request Header Fields Too Large", b"too large\n")
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = line.split(" ")
        if len(parts) != 3:  # noqa: PLR2004 - method, target, version
            return _text("400 Bad Request", b"bad request\n")
        method, target, _ = parts
        route = self._routes.get(target.split("?", 1)[0])
        if route is None:
            return _text("404 Not Found", b"not found\n")
        if method != "GET":
            return _text("405 Method Not Allowed", b"GET only\n")
        return route()

    def _get_metrics(self) -> Reply:
        return Reply("200 OK", METRICS_TYPE, self._metrics())

    def _get_health(self) -> Reply:
        ready, checks = self._health()
        body = json.dumps({"ready": ready, **checks}, sort_keys=True).encode() + b"\n"
        return Reply("200 OK" if ready else "503 Service Unavailable", JSON_TYPE, body)

    @staticmethod
    async def _send(writer: asyncio.StreamWriter, reply: Reply) -> None:
        extra = "".join(f"{name}: {value}\r\n" for name, value in reply.headers)
        head = (
            f"HTTP/1.1 {reply.status}\r\nContent-Type: {reply.content_type}\r\n"
            f"Content-Length: {len(reply.body)}\r\n{extra}Connection: close\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + reply.body)
        with contextlib.suppress(OSError):
            await writer.drain()
