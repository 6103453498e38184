"""The process's log context (``gateway_id``) is on every line, whichever thread wrote it."""

from __future__ import annotations

import contextlib
import io
import json
import threading
from typing import TYPE_CHECKING

import structlog

from gateway.delivery.mqtt_client import PAHO_LOGGER
from gateway.ops import logs
from tests.saved_logging import saved_logging

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def _logging_to(stream: io.StringIO) -> Iterator[None]:
    """The gateway's JSON logging into ``stream``, as the process was before afterwards."""
    with saved_logging():
        logs.configure("debug", "json", stream, gateway_id="gw-7")
        yield


def _lines(stream: io.StringIO) -> dict[str, dict[str, object]]:
    return {line["event"]: line for line in map(json.loads, stream.getvalue().splitlines())}


def test_lines_from_any_thread_and_library_carry_the_gateway_id() -> None:
    stream = io.StringIO()
    with _logging_to(stream):
        structlog.get_logger("tests.logs").info("from_structlog")

        def elsewhere() -> None:  # as paho's network thread: context variables of its own
            PAHO_LOGGER.info("from_paho_thread")
            structlog.get_logger("tests.logs").info("from_structlog_thread")

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join()
    lines = _lines(stream)
    assert set(lines) == {"from_structlog", "from_paho_thread", "from_structlog_thread"}
    assert {name: line.get("gateway_id") for name, line in lines.items()} == dict.fromkeys(
        lines, "gw-7"
    )


def test_what_a_line_says_itself_wins() -> None:
    stream = io.StringIO()
    with _logging_to(stream):
        structlog.get_logger("tests.logs").info("relayed", gateway_id="gw-other")
    assert _lines(stream)["relayed"]["gateway_id"] == "gw-other"
