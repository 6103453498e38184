"""One readable line per event, as the demo's subscriber prints it.

Payloads come from the network: any text in them is cleaned before it reaches a terminal.
Escape sequences (which could move the cursor, retitle the window, or hide what follows) and
every other control or format character (bidirectional overrides included) are removed, and
long values are cut. Missing or mistyped fields print as ``?``; a payload that is not a JSON
object prints as one "unreadable" line. Colour is added only when asked (a TTY).
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from datetime import datetime
from typing import Any, Final

MAX_FIELD: Final = 32
"""Characters shown of any one payload value (an alias, a zone, a rule...)."""
_ESCAPES: Final = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC: window title, hyperlinks
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[ -/]*[0-~]?"  # any other escape
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Controls, format characters (bidi overrides, zero-width), surrogates, private use,
unassigned, line and paragraph separators."""
COLOURS: Final = {
    "enter": "32",  # green
    "dwell": "36",  # cyan
    "exit": "33",  # yellow
    "trigger": "1;35",  # bold magenta
    "telemetry": "2",  # dim
    "status": "2",
    "unreadable": "31",  # red
}
TYPE_WIDTH: Final = 9
SUBJECT_WIDTH: Final = 30
ZONE_WIDTH: Final = 10


def clean(value: object, limit: int = MAX_FIELD) -> str:
    """``value`` as text that is safe to print on a terminal, at most ``limit`` characters."""
    text = _ESCAPES.sub("", str(value))
    text = "".join(
        " " if ch.isspace() else "" if unicodedata.category(ch) in _DROPPED_CATEGORIES else ch
        for ch in text
    )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _number(event: dict[str, Any], key: str) -> float | None:
    value = event.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _text(event: dict[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    shown = clean(value)
    return shown or None


def clock(event: dict[str, Any]) -> str:
    """The event's time of day (HH:MM:SS, UTC: the scene's clock), or ``??:??:??``."""
    value = event.get("event_time")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value).strftime("%H:%M:%S")
        except ValueError:
            pass
    return "??:??:??"


def subject_text(subject: object) -> str:
    """Who: ``customer Ana Costa (gold)``, ``bag 0125123456 BA117->LHR``, ``unknown b-12``."""
    if not isinstance(subject, dict):
        return "?"
    kind = _text(subject, "kind") or "?"
    parts = [kind]
    if kind == "bag":
        parts.append(
            _text(subject, "tag") or _text(subject, "id") or _text(subject, "beacon") or ""
        )
        flight, destination = _text(subject, "flight"), _text(subject, "destination")
        if flight or destination:
            parts.append(f"{flight or '?'}->{destination or '?'}")
    else:
        name = _text(subject, "alias") or _text(subject, "id") or _text(subject, "beacon")
        parts.append(name or "(anonymous)")
        segment = _text(subject, "segment")
        if segment:
            parts.append(f"({segment})")
    return " ".join(part for part in parts if part)


def _seconds(value: float | None) -> str:
    return "?" if value is None else f"{value:.0f} s"


def details(event: dict[str, Any]) -> str:
    """What happened, by type: proximity, dwell, exit reason, rule and action, telemetry."""
    kind = event.get("type")
    if kind == "enter":
        distance = _number(event, "distance_m")
        where = "" if distance is None else f" {distance:.1f} m"
        return f"{_text(event, 'proximity') or '?'}{where}"
    if kind == "dwell":
        return f"{_seconds(_number(event, 'dwell_s'))} so far"
    if kind == "exit":
        reason = _text(event, "exit_reason")
        return f"after {_seconds(_number(event, 'dwell_s'))}" + (f" ({reason})" if reason else "")
    if kind == "trigger":
        rule, action = _text(event, "rule") or "?", _text(event, "action") or "?"
        return f"{action.upper()}  rule {rule} (on {_text(event, 'cause') or '?'})"
    if kind == "telemetry":
        battery, temperature = _number(event, "battery_mv"), _number(event, "temperature_c")
        shown = ["battery ?" if battery is None else f"battery {battery:.0f} mV"]
        if temperature is not None:
            shown.append(f"{temperature:.1f} degC")
        return ", ".join(shown)
    return ""


def paint(text: str, kind: str, *, colour: bool) -> str:
    """``text`` in the colour of ``kind`` when ``colour``; as it is otherwise."""
    code = COLOURS.get(kind)
    return f"\x1b[{code}m{text}\x1b[0m" if colour and code else text


def event_line(event: dict[str, Any], *, colour: bool = False) -> str:
    """One line for an event payload (already parsed to a dict)."""
    raw_type = event.get("type")
    kind = clean(raw_type, TYPE_WIDTH) if isinstance(raw_type, str) and raw_type else "?"
    zone = _text(event, "zone") or ""
    line = (
        f"{clock(event)}  {paint(f'{kind:<{TYPE_WIDTH}}', kind, colour=colour)}  "
        f"{subject_text(event.get('subject')):<{SUBJECT_WIDTH}}  {zone:<{ZONE_WIDTH}}  "
        f"{details(event)}"
    )
    return line.rstrip()


def status_line(topic: str, payload: bytes, *, colour: bool = False) -> str:
    """A gateway status message (``online``/``offline``) as a line."""
    status = parse(payload)
    value = None if status is None else _text(status, "status")
    gateway = clean(topic.split("/")[-2] if topic.count("/") >= 1 else topic)
    text = f"{'':8}  gateway {gateway} is {value or '?'}"
    return paint(text, "status", colour=colour)


def unreadable_line(topic: str, payload: bytes, *, colour: bool = False) -> str:
    """The line for a payload that is not a JSON object."""
    text = f"??:??:??  unreadable payload ({len(payload)} bytes) on {clean(topic, 120)}"
    return paint(text, "unreadable", colour=colour)


def parse(payload: bytes) -> dict[str, Any] | None:
    """The payload as a JSON object, or None."""
    try:
        value = json.loads(payload)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None
