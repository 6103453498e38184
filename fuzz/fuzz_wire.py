"""Fuzz the fleet wire format: sightings and observations batches (gateway/core/wire.py).

Input: an MQTT payload's bytes, read by :func:`gateway.core.wire.decode`. Allowed:
:class:`WireError` (with a reason), whose message never shows the payload's bytes. Properties:
a decoded batch encodes again, and those bytes decode to an equal batch, which encodes to the
same bytes (the encoding is canonical).

    .venv/bin/python fuzz/fuzz_wire.py -runs=100000 fuzz/corpus/wire
"""

from __future__ import annotations

from contract import ContractError, instrumented, main, no_secret_in, total

with instrumented():
    from gateway.core.wire import WireError, decode, encode


def check(data: bytes) -> None:
    """One payload through the decoder, and what it decodes to back through the encoder."""
    try:
        batch = decode(data)
    except WireError as exc:
        no_secret_in(str(exc), data)
        raise
    try:  # a WireError here is the encoder's fault: not the allowed error of the input
        again = encode(batch)
        if decode(again) != batch:
            msg = f"decode(encode(b)) != b for {batch!r}"
            raise ContractError(msg)
        if encode(decode(again)) != again:
            msg = "encode(decode(x)) is not canonical"
            raise ContractError(msg)
    except (ValueError, TypeError) as exc:
        msg = f"a decoded batch does not go through the wire again: {exc}"
        raise ContractError(msg) from exc


if __name__ == "__main__":
    main(total(check, (WireError,)), max_len=2048)
