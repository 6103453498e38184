"""The contract every fuzz harness checks, and the entry point they share (docs/fuzzing.md).

A parser of outside bytes is total: for any input it returns a value or raises its own
documented error type, with a message. Any other exception, or a failed property (an
``AssertionError``), is a crash that libFuzzer reports with the input that caused it.

This module imports nothing of the project, so that a harness can import it before it opens
``atheris.instrument_imports()`` around the modules it fuzzes (a module imported before is not
instrumented, and its branches would not guide the fuzzer).
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import atheris

if TYPE_CHECKING:
    from collections.abc import Iterator

Check: TypeAlias = Callable[[bytes], None]

PROJECT_PACKAGES: Final = ("eid", "gateway", "firmware_sim")
"""What the harnesses instrument for coverage (besides any stdlib parser they name)."""
NOT_INSTRUMENTED: Final = ("gateway.core.floorplan", "eid.u64map")
"""Numeric code, no parser: atheris's comparison hooks leak the numpy arrays it compares
(about 7 KB an input through the zone fitter, gigabytes in a long run)."""
DICTIONARIES: Final = Path(__file__).resolve().parent / "dicts"
_MIN_SECRET_TEXT: Final = 8
"""Shorter hex is too likely to appear in a message by chance (an offset, a byte value)."""


def instrumented(*extra: str) -> contextlib.AbstractContextManager[object]:
    """Instrument the project's modules (and ``extra`` ones) imported in this block."""
    hooks: contextlib.AbstractContextManager[object] = atheris.instrument_imports(
        include=[*PROJECT_PACKAGES, *extra], exclude=list(NOT_INSTRUMENTED)
    )
    return hooks


class ContractError(AssertionError):
    """A parser broke its contract in a way that is not an exception of its own."""


def total(check: Check, allowed: tuple[type[Exception], ...]) -> Check:
    """``check`` as a fuzz target: ``allowed`` errors pass if they carry a message."""

    def one_input(data: bytes) -> None:
        try:
            check(data)
        except allowed as exc:
            if not str(exc).strip():
                msg = f"{type(exc).__name__} raised without a message"
                raise ContractError(msg) from exc

    return one_input


def no_secret_in(message: str, *secrets: bytes) -> None:
    """Fail if ``message`` shows one of ``secrets`` as hex (errors never carry secrets)."""
    lowered = message.lower()
    for secret in secrets:
        text = secret.hex()
        if len(text) >= _MIN_SECRET_TEXT and text in lowered:
            msg = "an error message shows secret bytes"
            raise ContractError(msg)


@contextlib.contextmanager
def scratch_file(name: str, data: bytes, mode: int = 0o600) -> Iterator[Path]:
    """``data`` in a fresh file called ``name`` (a parser that reads paths reads this one)."""
    with tempfile.TemporaryDirectory(prefix="beacon-gateway-fuzz-") as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        path.chmod(mode)
        yield path


def _dictionary(names: tuple[str, ...]) -> Path:
    """``fuzz/dicts/<name>.dict`` of every name, in one file (libFuzzer takes one ``-dict``)."""
    merged = Path(tempfile.gettempdir()) / f"beacon-gateway-fuzz-{'-'.join(names)}.dict"
    merged.write_text("".join((DICTIONARIES / f"{name}.dict").read_text() for name in names))
    return merged


def main(one_input: Check, *, max_len: int, dictionaries: tuple[str, ...] = ()) -> None:
    """Run libFuzzer on ``one_input`` with the command line's flags.

    ``-max_len`` defaults to ``max_len``, and ``-dict`` to the tokens of ``dictionaries``
    (``fuzz/dicts/<name>.dict``: the input format's syntax and field names, spliced in by
    mutations that could hardly guess them).
    """
    argv = list(sys.argv)
    if not any(arg.startswith("-max_len=") for arg in argv):
        argv.insert(1, f"-max_len={max_len}")
    if dictionaries and not any(arg.startswith("-dict=") for arg in argv):
        argv.insert(1, f"-dict={_dictionary(dictionaries)}")
    atheris.Setup(argv, one_input)
    atheris.Fuzz()
