"""Logging: structlog and the standard library (bleak, paho) through one stdout handler.

JSON lines for journald (one object per line, ``timestamp``, ``level``, ``logger``, ``event``),
or a console renderer on a terminal. Exceptions are rendered as plain tracebacks without frame
locals: a frame of the resolver holds identity keys, and ``dict_tracebacks`` would print them, as
would the console renderer's default (rich's traceback, with ``show_locals``, when rich is
installed).
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Final, Literal, TextIO

import structlog

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor

LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
Format = Literal["auto", "json", "console"]


def configure(
    level: str = "info", fmt: Format = "auto", stream: TextIO | None = None, **context: str
) -> None:
    """Set up logging for the process; ``context`` (e.g. ``gateway_id``) is added to every line.

    ``context`` is added by a processor, not bound in context variables: a thread the process
    did not start through asyncio (paho's network loop) has context variables of its own, and
    its lines would go without it.
    """
    stream = sys.stderr if stream is None else stream
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    shared: list[Processor] = [
        _add_context(dict(context)),
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
        if console
        else structlog.processors.JSONRenderer()
    )
    final: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if not console:
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    formatter = structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=final)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(LEVELS[level])
    structlog.configure(
        # filter_by_level first: a line below the level costs one check, not the whole chain
        # (the publisher logs every PUBACK at debug).
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.clear_contextvars()


def _add_context(context: dict[str, str]) -> Processor:
    """A processor adding ``context`` to every line (what a line says itself wins)."""

    def add(_logger: object, _method: str, event_dict: EventDict) -> EventDict:
        for key, value in context.items():
            event_dict.setdefault(key, value)
        return event_dict

    return add
