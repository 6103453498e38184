"""Tests that set up the gateway's logging put the process's logging back afterwards."""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import structlog

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def saved_logging() -> Iterator[None]:
    """Put the root logger and structlog back as they were afterwards."""
    root = logging.getLogger()
    handlers, level, saved = list(root.handlers), root.level, structlog.get_config()
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        structlog.configure(**saved)
        structlog.contextvars.clear_contextvars()
