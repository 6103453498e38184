"""Eddystone-URL compression (eddystone-spec.md section 3).

A URL is a scheme-prefix byte and up to 17 body bytes; a body byte is a printable ASCII character
(0x21..0x7E) or one of 14 expansion codes, usable anywhere. The encoder searches for the shortest
encoding over every scheme prefix and every way to use the codes (a small dynamic program).
"""

from __future__ import annotations

import re
from typing import Final

from eid.errors import FrameError, FrameErrorReason

SCHEMES: Final[tuple[str, ...]] = ("http://www.", "https://www.", "http://", "https://")
"""Scheme prefixes by their code 0x00..0x03."""
EXPANSIONS: Final[tuple[str, ...]] = (
    ".com/", ".org/", ".edu/", ".net/", ".info/", ".biz/", ".gov/",
    ".com", ".org", ".edu", ".net", ".info", ".biz", ".gov",
)  # fmt: skip
"""Expansion texts by their code 0x00..0x0D."""
MAX_BODY: Final = 17
"""Encoded bytes after the scheme byte (a 20-byte frame minus type, Tx power and scheme)."""

_FIRST_LITERAL: Final = 0x21
_LAST_LITERAL: Final = 0x7E
_RESERVED_BYTE: Final = re.compile(rb"[\x0e-\x20\x7f-\xff]")
_EXPAND: Final = dict(enumerate(EXPANSIONS))


def decode_url(scheme: int, body: bytes) -> str:
    """Expand a scheme code and encoded body into the URL; reserved bytes raise FrameError."""
    if not 0 <= scheme < len(SCHEMES):
        msg = f"URL scheme prefix 0x{scheme:02x} is reserved (defined: 0x00..0x03)"
        raise FrameError(FrameErrorReason.BAD_URL, msg)
    reserved = _RESERVED_BYTE.search(body)
    if reserved is not None:
        msg = (
            f"URL byte 0x{body[reserved.start()]:02x} at offset {reserved.start()} is reserved "
            "(neither printable ASCII nor an expansion code)"
        )
        raise FrameError(FrameErrorReason.BAD_URL, msg)
    return SCHEMES[scheme] + body.decode("ascii").translate(_EXPAND)


def _shortest_body(body: str) -> bytes | None:
    """The shortest encoding of ``body``, or None if a character cannot be encoded."""
    size = len(body)
    # best[i] = shortest encoding of body[i:]; filled from the end.
    best: list[bytes | None] = [None] * size + [b""]
    for i in range(size - 1, -1, -1):
        char = ord(body[i])
        tail = best[i + 1]
        candidate = (
            bytes((char,)) + tail
            if tail is not None and _FIRST_LITERAL <= char <= _LAST_LITERAL
            else None
        )
        if body[i] == ".":
            for code, text in enumerate(EXPANSIONS):
                rest = best[i + len(text)] if body.startswith(text, i) else None
                if rest is not None and (candidate is None or len(rest) + 1 < len(candidate)):
                    candidate = bytes((code,)) + rest
        best[i] = candidate
    return best[0]


def _require_str(url: object) -> str:
    if not isinstance(url, str):
        msg = f"URL must be a str, got {type(url).__name__}"
        raise FrameError(FrameErrorReason.BAD_URL, msg)
    return url


def encode_url(url: str) -> tuple[int, bytes]:
    """Compress ``url`` into ``(scheme code, body)``; raise FrameError if it cannot be carried."""
    url = _require_str(url)
    if not url.startswith(("http://", "https://")):
        msg = f"URL {url!r} must start with http://, https://, http://www. or https://www."
        raise FrameError(FrameErrorReason.BAD_URL, msg)
    best: tuple[int, bytes] | None = None
    for scheme, prefix in enumerate(SCHEMES):
        rest = url[len(prefix) :]
        if not url.startswith(prefix) or not rest:
            continue
        body = _shortest_body(rest)
        if body is not None and (best is None or len(body) < len(best[1])):
            best = (scheme, body)
    if best is None:
        if url in SCHEMES:
            msg = f"URL {url!r} has nothing after the scheme"
        else:
            msg = (
                f"URL {url!r} has a character Eddystone-URL cannot carry "
                "(only printable ASCII 0x21..0x7E; percent-encode the rest)"
            )
        raise FrameError(FrameErrorReason.BAD_URL, msg)
    if len(best[1]) > MAX_BODY:
        msg = (
            f"URL {url!r} needs {len(best[1])} bytes after the scheme; "
            f"Eddystone-URL carries at most {MAX_BODY}"
        )
        raise FrameError(FrameErrorReason.BAD_URL, msg)
    return best
