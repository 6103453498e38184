"""Fuzz the Eddystone wire format: frames, advertisements, URLs, telemetry (eid package).

Input: any bytes, read as service data (frame type first), as a whole advertisement payload,
and as an encoded URL. Allowed: :class:`eid.FrameError` from the parsers and
:class:`eid.IntegrityError` from eTLM decryption. Properties: a parsed frame encodes to the
canonical form of its input and parses back to itself; an advertisement built from a frame
gives that frame back; an error does not show the frame's bytes.

    .venv/bin/python fuzz/fuzz_frames.py -runs=100000 fuzz/corpus/frames
"""

from __future__ import annotations

import contextlib
from typing import Final

from contract import ContractError, instrumented, main, no_secret_in, total

with instrumented():
    import eid
    from eid import frames
    from eid.advertising import MAX_LEGACY_PAYLOAD, advertisement, eddystone_service_data
    from eid.url import MAX_BODY, decode_url, encode_url

IDENTITY_KEY: Final = bytes.fromhex("0102030405060708090a111213141516")
"""A published test key (configs/test-registry.toml, loyalty-0001)."""
_SIZES: Final = {
    frames.UidFrame: 18,
    frames.TlmFrame: 14,
    frames.EtlmFrame: 18,
    frames.EidFrame: 10,
}
"""Bytes of the input a canonical encoding repeats (UID: not the reserved tail)."""
_ADVERT_OVERHEAD: Final = 11
"""Flags (3), UUID list (4), service data header (4) around a frame in an advertisement."""


def _round_trip(data: bytes, frame: frames.Frame) -> None:
    canonical = frames.encode(frame)
    if frames.parse(canonical) != frame:
        msg = f"parse(encode(f)) != f for {frame!r}"
        raise ContractError(msg)
    size = _SIZES.get(type(frame))
    if size is None:  # URL: the encoder may find a shorter encoding of the same URL
        if len(canonical) > len(data):
            msg = "encode(parse(x)) is longer than x for a URL frame"
            raise ContractError(msg)
    elif canonical[:size] != data[:size]:
        msg = f"encode(parse(x)) does not repeat x for {type(frame).__name__}"
        raise ContractError(msg)
    fits = len(canonical) + _ADVERT_OVERHEAD <= MAX_LEGACY_PAYLOAD
    if fits and eddystone_service_data(advertisement(canonical)) != canonical:
        msg = "the advertisement of a frame does not give the frame back"
        raise ContractError(msg)


def _frame(data: bytes) -> None:
    try:
        frame = frames.parse(data)
    except eid.FrameError as exc:
        if len(data) >= 4:  # noqa: PLR2004 - a message may show a byte or two, never the frame
            no_secret_in(str(exc), data)
        return
    _round_trip(data, frame)
    if isinstance(frame, frames.EtlmFrame):
        try:
            telemetry = eid.decrypt_etlm(IDENTITY_KEY, 10, 2048, data)
        except eid.IntegrityError:
            return
        frames.TlmFrame.from_telemetry(telemetry)


def _url(data: bytes) -> None:
    try:
        url = decode_url(data[0], data[1:])
    except eid.FrameError:
        return
    scheme, body = encode_url(url)  # what decodes re-encodes, at most as long
    if decode_url(scheme, body) != url or len(body) > len(data) - 1:
        msg = "encode_url does not invert decode_url"
        raise ContractError(msg)


def check(data: bytes) -> None:
    """One input through every wire-format parser."""
    _frame(data)
    try:
        service_data = eddystone_service_data(data)
    except eid.FrameError:
        pass
    else:
        _frame(service_data)
    if len(data) > 1:  # a URL frame has a scheme byte and 1..17 body bytes
        _url(data[: 1 + MAX_BODY])
    with contextlib.suppress(eid.FrameError):
        frames.TlmFrame.from_telemetry(data)


if __name__ == "__main__":
    main(total(check, (eid.FrameError,)), max_len=64)
