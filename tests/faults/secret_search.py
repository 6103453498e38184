"""Searching captured text for secrets in every encoding a program might print them in.

:func:`find_leaks` looks for each secret (bytes) in each captured text (str) as:

- ``hex`` / ``HEX``: lowercase and uppercase hex digits;
- ``hex:`` / ``HEX:`` / ``hex `` / ``HEX ``: hex with ":" or " " between the bytes;
- ``base64`` / ``base64url``: standard and URL-safe base64, padded or not. The base64 of a
  secret that sits inside longer data depends on where it starts within a 3-byte group, so the
  secret is encoded behind 0, 1 and 2 filler bytes and only the characters that depend on the
  secret alone (the stable middle) are searched for;
- ``bytes repr``: the inner text of Python's ``b'...'`` repr (both quoting conventions), also
  JSON-escaped (a repr inside a JSON log line has its backslashes doubled);
- ``decimal list``: the bytes as decimal numbers, ``", "`` or ``","`` separated (``list(b)``,
  JSON arrays);
- ``int``: the bytes as one big- or little-endian integer in decimal;
- ``raw``: the bytes themselves, read as Latin-1 (binary files are captured that way, and a
  text secret such as a password is found as itself).

Binary captures (database files) should be decoded with Latin-1, which maps each byte to one
character, so that both the raw bytes and any ASCII encoding of them are found.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

ENCODINGS: Final = (
    "hex",
    "HEX",
    "hex:",
    "HEX:",
    "hex ",
    "HEX ",
    "base64",
    "base64url",
    "bytes repr",
    "bytes repr (JSON-escaped)",
    "decimal list",
    "int",
    "raw",
)
"""Every encoding :func:`find_leaks` searches, by the name it reports."""

MIN_INT_BYTES: Final = 8
"""Shorter secrets are not searched as one integer: a few digits match too much by chance."""
CONTEXT: Final = 24
"""Characters of context shown either side of a leak."""

_ESCAPES: Final = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r", 0x5C: "\\\\"}


def _repr_inner(secret: bytes, quote: str) -> str:
    """What Python's repr of ``secret`` shows between the quotes, quoting with ``quote``."""
    out = []
    for byte in secret:
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif chr(byte) == quote:
            out.append("\\" + quote)
        elif 0x20 <= byte < 0x7F:  # printable ASCII
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def _base64_middles(secret: bytes) -> Iterator[str]:
    """The characters of the base64 of ``secret`` that do not depend on the bytes around it.

    Behind ``k`` filler bytes the secret starts at bit ``8k``; character ``i`` covers bits
    ``6i`` to ``6i + 6``, so the characters wholly inside the secret are the stable ones.
    """
    bits = 8 * len(secret)
    for filler in range(3):
        start_bit = 8 * filler
        encoded = base64.b64encode(bytes(filler) + secret).decode("ascii")
        first = -(-start_bit // 6)  # ceil
        last = (start_bit + bits) // 6  # exclusive
        if last > first:
            yield encoded[first:last]


def needles(secret: bytes) -> dict[str, str]:
    """Each text to search for, with the encoding it stands for."""
    found: dict[str, str] = {}

    def add(text: str, encoding: str) -> None:
        if text:
            found.setdefault(text, encoding)

    add(secret.decode("latin-1"), "raw")  # first: a text secret is named as itself
    add(secret.hex(), "hex")
    add(secret.hex().upper(), "HEX")
    for separator in (":", " "):
        add(secret.hex(separator), f"hex{separator}")
        add(secret.hex(separator).upper(), f"HEX{separator}")
    for middle in _base64_middles(secret):
        add(middle, "base64")
        add(middle.replace("+", "-").replace("/", "_"), "base64url")
    for quote in ("'", '"'):
        inner = _repr_inner(secret, quote)
        add(inner, "bytes repr")
        add(json.dumps(inner)[1:-1], "bytes repr (JSON-escaped)")
    add(", ".join(str(byte) for byte in secret), "decimal list")
    add(",".join(str(byte) for byte in secret), "decimal list")
    if len(secret) >= MIN_INT_BYTES:
        add(str(int.from_bytes(secret, "big")), "int")
        add(str(int.from_bytes(secret, "little")), "int")
    return found


def find_leaks(texts: Mapping[str, str], secrets: Mapping[str, bytes]) -> list[str]:
    """Every place a secret appears in a text, as ``"<secret> as <encoding> in <text>: ..."``.

    ``texts`` maps a name (where the text was captured) to the text; ``secrets`` maps a name
    (what the secret is) to its bytes. An empty list means no secret was found anywhere.
    """
    leaks = []
    searched = [(name, needles(secret)) for name, secret in secrets.items()]
    for source, text in texts.items():
        for secret_name, wanted in searched:
            for needle, encoding in wanted.items():
                at = text.find(needle)
                if at >= 0:
                    around = text[max(at - CONTEXT, 0) : at + len(needle) + CONTEXT]
                    leaks.append(f"{secret_name} as {encoding} in {source}: ...{around!r}...")
    return leaks


def scanned_bytes(texts: Mapping[str, str]) -> int:
    """How many characters the texts hold (what the report calls bytes scanned)."""
    return sum(len(text) for text in texts.values())
