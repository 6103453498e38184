"""The process's log context (``gateway_id``) is on every line, whichever thread wrote it."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import threading
from typing import TYPE_CHECKING

import structlog

from gateway.delivery.mqtt_client import PAHO_LOGGER
from gateway.ops import logs

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def _logging_to(stream: io.StringIO) -> Iterator[None]:
    """The gateway's JSON logging into ``stream``, as the process was before afterwards."""
    root = logging.getLogger()
    handlers, level, saved = list(root.handlers), root.level, structlog.get_config()
    logs.configure("debug", "json", stream, gateway_id="gw-7")
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        structlog.configure(**saved)


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
