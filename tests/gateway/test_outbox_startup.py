"""Start-up with an unusable outbox: wait (health red, systemd told why), never crash-loop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

import pytest
from structlog.testing import capture_logs

from gateway.config import Config, load_config
from gateway.delivery.outbox import Outbox
from gateway.delivery.outbox_errors import OutboxError, OutboxErrorReason
from gateway.ops.sdnotify import Notifier
from gateway.outbox_startup import open_outbox
from tests.mosquitto import free_port

if TYPE_CHECKING:
    from collections.abc import MutableMapping
    from pathlib import Path

WAIT_S = 20.0


def _config(tmp_path: Path, http_port: int) -> Config:
    path = tmp_path / "gateway.toml"
    path.write_text(
        'site = "s"\ngateway_id = "g"\n[[gateways]]\nid = "gw"\n'
        f'[outbox]\npath = "{tmp_path / "outbox.sqlite3"}"\n'
        f"[http]\nport = {http_port}\n",
        encoding="utf-8",
    )
    return load_config(path, {})


def _healthz(port: int) -> tuple[int, dict[str, object]] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
    except OSError:
        return None


def test_an_outbox_in_use_is_waited_for_with_health_red_and_systemd_told(
    tmp_path: Path,
) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(tmp_path / "notify"))
        notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})

        async def scenario() -> list[MutableMapping[str, Any]]:
            holder = Outbox.open(config.outbox.resolved_path())  # another process, say
            with capture_logs() as logs:
                opening = asyncio.create_task(open_outbox(config, notifier))
                health = None
                async with asyncio.timeout(WAIT_S):
                    while health is None or not any(
                        e["event"] == "outbox_unavailable" for e in logs
                    ):
                        await asyncio.sleep(0.01)
                        health = await asyncio.to_thread(_healthz, port)
                assert health is not None
                status, body = health
                assert status == 503
                assert body["ready"] is False
                assert body["outbox_health"] == "unavailable"
                assert "another gateway process" in str(body["outbox_error"])
                assert not opening.done()
                holder.close()
                outbox = await asyncio.wait_for(opening, WAIT_S)
                assert outbox is not None
                await outbox.aclose()
            assert await asyncio.to_thread(_healthz, port) is None, "the wait's server is gone"
            return logs

        logs = asyncio.run(scenario())
        notes = notify.recv(4096).decode()
    waiting = [e for e in logs if e["event"] == "outbox_unavailable"]
    assert waiting[0]["reason"] == "in-use"
    assert "another gateway process" in str(waiting[0]["error"])
    assert "READY=1" in notes
    assert "waiting for the outbox (in-use)" in notes


def test_a_corrupt_outbox_is_raised_at_once(tmp_path: Path) -> None:
    config = _config(tmp_path, 0)
    config.outbox.resolved_path().write_bytes(b"not a database, not at all" * 100)
    with pytest.raises(OutboxError) as caught:
        asyncio.run(open_outbox(config, Notifier({})))
    assert caught.value.reason is OutboxErrorReason.CORRUPT


def test_sigterm_while_waiting_ends_the_wait(tmp_path: Path) -> None:
    config = _config(tmp_path, 0)

    async def scenario() -> object:
        with Outbox.open(config.outbox.resolved_path()), capture_logs() as logs:
            opening = asyncio.create_task(open_outbox(config, Notifier({})))
            async with asyncio.timeout(WAIT_S):
                while not any(e["event"] == "outbox_unavailable" for e in logs):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
            return await asyncio.wait_for(opening, WAIT_S)

    assert asyncio.run(scenario()) is None
