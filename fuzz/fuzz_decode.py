"""Fuzz ``beacon-gateway decode``: the ``[@TIME] HEX`` line grammar (gateway/decode.py).

Input: a text file's bytes, read as the command reads its files (UTF-8, universal newlines;
bytes that are not UTF-8 are the command's "input is not UTF-8 text" refusal). Each line goes
through :meth:`Decoder.decode_line` with the test key registry, so EIDs resolve and eTLM
decrypts. Contract: a line never raises; a bad line is a ``DecodedLine`` with ``ok=False`` and
an ``error:`` text. The line helpers raise only :class:`InputError` or :class:`eid.FrameError`.

    .venv/bin/python fuzz/fuzz_decode.py -runs=100000 fuzz/corpus/decode
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from contract import ContractError, instrumented, main, no_secret_in, total

with instrumented():
    import eid
    from gateway.decode import Decoder, InputError, frame_from, parse_hex, parse_time
    from gateway.registry import KeyRegistry

REGISTRY = KeyRegistry.load(Path(__file__).parent.parent / "configs" / "test-registry.toml")
SECRETS = tuple(key.identity_key for key in REGISTRY)
DEFAULT_TIME = 1_767_225_600.0
"""2026-01-01T00:00:00Z, the time the sample files and the test keys are set up for."""


def _lines(data: bytes) -> list[str]:
    try:
        return list(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    except UnicodeDecodeError:
        return []  # the command refuses the file as a whole


def _helpers(line: str) -> None:
    stamp, _, rest = line.strip().removeprefix("@").partition(" ")
    with contextlib.suppress(InputError):
        parse_time(stamp)
    with contextlib.suppress(InputError, eid.FrameError):
        frame_from(parse_hex(rest))


def check(data: bytes) -> None:
    """Every line of one input file through a fresh decoder."""
    decoder = Decoder(REGISTRY, DEFAULT_TIME)
    for number, line in enumerate(_lines(data), start=1):
        decoded = decoder.decode_line(number, line)
        if decoded is None:
            continue
        if not decoded.ok and not decoded.text.startswith("error: "):
            msg = "a refused line does not say 'error:'"
            raise ContractError(msg)
        no_secret_in(decoded.text, *SECRETS)
        _helpers(line)


if __name__ == "__main__":
    main(total(check, ()), max_len=512, dictionaries=("decode",))
