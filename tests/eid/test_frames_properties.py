"""Property tests of eid.frames: round trips, a total parser, lengths, reasons, the URL encoder.

The URL tables, lengths and layouts come from docs/eddystone-spec.md sections 1-5 (mirrored in
tests/eid/oracle.py), never from eid.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from eid import frames
from eid.frames import (
    EidFrame,
    EtlmFrame,
    Frame,
    FrameError,
    FrameErrorReason,
    TlmFrame,
    UidFrame,
    UrlFrame,
)
from tests.eid.oracle import EXPANSIONS, MAX_URL_BODY, SCHEMES

FRAME_CLASSES = (UidFrame, UrlFrame, TlmFrame, EtlmFrame, EidFrame)
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))

# ------------------------------------------------------------------------ independent URL model


@functools.cache
def _min_body(rest: str) -> int | None:
    """Fewest bytes that encode ``rest`` (literal printable chars or expansion codes), or None."""
    if not rest:
        return 0
    options = []
    if rest[0] in PRINTABLE:
        tail = _min_body(rest[1:])
        if tail is not None:
            options.append(1 + tail)
    for text in EXPANSIONS:
        if rest.startswith(text):
            tail = _min_body(rest[len(text) :])
            if tail is not None:
                options.append(1 + tail)
    return min(options, default=None)


def min_url_body(url: str) -> int | None:
    """Fewest body bytes over every scheme prefix that leaves a non-empty body."""
    lengths = [
        _min_body(url[len(prefix) :])
        for prefix in SCHEMES
        if url.startswith(prefix) and len(url) > len(prefix)
    ]
    return min((n for n in lengths if n is not None), default=None)


def decode_url(scheme: int, body: bytes) -> str:
    return SCHEMES[scheme] + "".join(EXPANSIONS[b] if b < len(EXPANSIONS) else chr(b) for b in body)


def encodable(url: str) -> bool:
    size = min_url_body(url)
    return size is not None and size <= MAX_URL_BODY


# ---------------------------------------------------------------------------------- strategies

tx_powers = st.integers(min_value=-128, max_value=127)
uint32 = st.integers(min_value=0, max_value=2**32 - 1)
url_pieces = st.one_of(
    st.text(alphabet=PRINTABLE, min_size=1, max_size=5),
    st.sampled_from(EXPANSIONS),
    st.sampled_from(["www.", ".", "/", "info", "com", ".co", ".au"]),
)
url_candidates = st.builds(
    lambda scheme, pieces: scheme + "".join(pieces),
    st.sampled_from(SCHEMES),
    st.lists(url_pieces, min_size=1, max_size=5),
)
urls = url_candidates.filter(encodable)
temperatures = st.one_of(
    st.none(), st.integers(min_value=-32767, max_value=32767).map(lambda k: k / 256)
)

uid_frames = st.builds(
    UidFrame,
    tx_power=tx_powers,
    namespace=st.binary(min_size=10, max_size=10),
    instance=st.binary(min_size=6, max_size=6),
)
url_frames = st.builds(UrlFrame, tx_power=tx_powers, url=urls)
tlm_frames = st.builds(
    TlmFrame,
    battery_mv=st.integers(min_value=0, max_value=0xFFFF),
    temperature_c=temperatures,
    adv_count=uint32,
    uptime_ds=uint32,
)
etlm_frames = st.builds(
    EtlmFrame,
    ciphertext=st.binary(min_size=12, max_size=12),
    salt=st.binary(min_size=2, max_size=2),
    mic=st.binary(min_size=2, max_size=2),
)
eid_frames = st.builds(EidFrame, tx_power=tx_powers, eid=st.binary(min_size=8, max_size=8))
all_frames: st.SearchStrategy[Frame] = st.one_of(
    uid_frames, url_frames, tlm_frames, etlm_frames, eid_frames
)

# Arbitrary bytes, biased to start like a real frame so the parser's inner checks get exercised.
frame_heads = st.sampled_from(
    [b"", b"\x00", b"\x10", b"\x20", b"\x20\x00", b"\x20\x01", b"\x20\x02", b"\x30", b"\x40"]
)
arbitrary_service_data = st.one_of(
    st.binary(max_size=40),
    st.builds(lambda head, rest: head + rest, frame_heads, st.binary(max_size=30)),
)


def parse_or_frame_error(data: bytes) -> Frame | None:
    """parse(data), or None on FrameError; any other exception fails the test."""
    error: FrameError | None = None
    try:
        frame = frames.parse(data)
    except FrameError as caught:
        error = caught
    if error is not None:
        assert isinstance(error.reason, FrameErrorReason)
        assert str(error)
        return None
    assert isinstance(frame, FRAME_CLASSES)
    return frame


# ---------------------------------------------------------------------------------- round trips


@given(all_frames)
def test_parse_of_encode_is_identity(frame: Frame) -> None:
    assert frames.parse(frames.encode(frame)) == frame


@given(all_frames)
def test_encode_has_the_canonical_length_and_type_byte(frame: Frame) -> None:
    data = frames.encode(frame)
    expected: dict[type, tuple[int, range]] = {
        UidFrame: (0x00, range(20, 21)),
        UrlFrame: (0x10, range(4, 21)),
        TlmFrame: (0x20, range(14, 15)),
        EtlmFrame: (0x20, range(18, 19)),
        EidFrame: (0x30, range(10, 11)),
    }
    frame_type, lengths = expected[type(frame)]
    assert data[0] == frame_type
    assert len(data) in lengths


@given(uid_frames)
def test_uid_encoding_layout(frame: UidFrame) -> None:
    data = frames.encode(frame)
    assert data == bytes((0x00, frame.tx_power & 0xFF)) + frame.namespace + frame.instance + bytes(
        2
    )


@given(eid_frames)
def test_eid_encoding_layout(frame: EidFrame) -> None:
    assert frames.encode(frame) == bytes((0x30, frame.tx_power & 0xFF)) + frame.eid


@given(etlm_frames)
def test_etlm_encoding_layout(frame: EtlmFrame) -> None:
    assert frames.encode(frame) == b"\x20\x01" + frame.ciphertext + frame.salt + frame.mic


@given(tlm_frames)
def test_tlm_encoding_layout(frame: TlmFrame) -> None:
    temperature = -0x8000 if frame.temperature_c is None else round(frame.temperature_c * 256)
    data = (
        b"\x20\x00"
        + frame.battery_mv.to_bytes(2, "big")
        + temperature.to_bytes(2, "big", signed=True)
        + frame.adv_count.to_bytes(4, "big")
        + frame.uptime_ds.to_bytes(4, "big")
    )
    assert frames.encode(frame) == data
    assert frame.telemetry == data[2:]
    assert TlmFrame.from_telemetry(data[2:]) == frame


@given(st.binary(max_size=20).filter(lambda b: len(b) != 12))
def test_tlm_from_telemetry_rejects_wrong_lengths(data: bytes) -> None:
    with pytest.raises(FrameError) as info:
        TlmFrame.from_telemetry(data)
    assert info.value.reason is FrameErrorReason.BAD_LENGTH


@given(url_frames)
def test_url_encoding_decodes_back_with_the_spec_tables(frame: UrlFrame) -> None:
    data = frames.encode(frame)
    assert data[:2] == bytes((0x10, frame.tx_power & 0xFF))
    body = data[3:]
    assert all(b < len(EXPANSIONS) or 0x21 <= b <= 0x7E for b in body)
    assert decode_url(data[2], body) == frame.url


# ----------------------------------------------------------------------------- a total parser


@given(arbitrary_service_data)
def test_parse_of_arbitrary_bytes_gives_a_frame_or_frame_error(data: bytes) -> None:
    frame = parse_or_frame_error(data)
    if frame is not None:
        # Whatever parses re-encodes canonically to the same frame.
        assert frames.parse(frames.encode(frame)) == frame


@given(arbitrary_service_data)
def test_parse_accepts_bytearray_and_memoryview_like_bytes(data: bytes) -> None:
    expected = parse_or_frame_error(data)
    assert parse_or_frame_error(bytearray(data)) == expected  # type: ignore[arg-type]
    assert parse_or_frame_error(memoryview(data)) == expected  # type: ignore[arg-type]


@given(all_frames)
def test_every_truncation_parses_or_raises_frame_error(frame: Frame) -> None:
    data = frames.encode(frame)
    for end in range(len(data)):
        parse_or_frame_error(data[:end])


@given(all_frames, st.binary(min_size=1, max_size=10))
def test_every_extension_parses_or_raises_frame_error(frame: Frame, extra: bytes) -> None:
    parse_or_frame_error(frames.encode(frame) + extra)


@pytest.mark.parametrize("data", ["30f0", 1234, None, [0x30, 0xF0], 3.5])
def test_parse_rejects_values_that_are_not_bytes(data: Any) -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(data)
    assert info.value.reason is FrameErrorReason.NOT_BYTES


def test_parse_rejects_empty_service_data() -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(b"")
    assert info.value.reason is FrameErrorReason.EMPTY


@pytest.mark.parametrize("thing", [object(), b"\x30" + bytes(9), "frame", None])
def test_encode_rejects_what_is_not_a_frame(thing: Any) -> None:
    with pytest.raises(FrameError) as info:
        frames.encode(thing)
    assert info.value.reason is FrameErrorReason.BAD_FIELD


# ----------------------------------------------------------------------------- legacy lengths


@given(uid_frames)
def test_uid_of_18_bytes_parses_like_the_canonical_20(frame: UidFrame) -> None:
    assert frames.parse(frames.encode(frame)[:18]) == frame


@given(eid_frames, st.binary(min_size=8, max_size=8))
def test_eid_of_18_bytes_parses_like_the_canonical_10(frame: EidFrame, tail: bytes) -> None:
    assert frames.parse(frames.encode(frame) + tail) == frame


@given(etlm_frames, st.binary(min_size=1, max_size=1))
def test_etlm_of_19_bytes_parses_like_the_canonical_18(frame: EtlmFrame, tail: bytes) -> None:
    assert frames.parse(frames.encode(frame) + tail) == frame


@given(tlm_frames, st.binary(min_size=6, max_size=6))
def test_tlm_padded_to_20_bytes_parses_like_the_canonical_14(frame: TlmFrame, tail: bytes) -> None:
    assert frames.parse(frames.encode(frame) + tail) == frame


# ------------------------------------------------------------------------------ wrong lengths

ACCEPTED_LENGTHS = {
    b"\x00": {18, 20},
    b"\x30": {10, 18},
    b"\x20\x00": {14, 20},
    b"\x20\x01": {18, 19},
    b"\x10\x00\x00": set(range(4, 21)),
}


@pytest.mark.parametrize(
    ("head", "length"),
    [
        (b"\x00", 19),
        (b"\x00", 21),
        (b"\x00", 17),
        (b"\x00", 2),
        (b"\x30", 9),
        (b"\x30", 11),
        (b"\x30", 17),
        (b"\x30", 19),
        (b"\x20\x01", 17),
        (b"\x20\x01", 20),
        (b"\x20\x00", 13),
        (b"\x20\x00", 15),
        (b"\x20\x00", 19),
        (b"\x20\x00", 21),
        (b"\x10\x00\x00", 3),
        (b"\x10\x00\x00", 21),
        (b"\x20", 1),
    ],
)
def test_wrong_lengths_raise_bad_length(head: bytes, length: int) -> None:
    data = (head + b"a" * 30)[:length]
    with pytest.raises(FrameError) as info:
        frames.parse(data)
    assert info.value.reason is FrameErrorReason.BAD_LENGTH


@given(st.sampled_from(sorted(ACCEPTED_LENGTHS)), st.integers(min_value=1, max_value=40), st.data())
def test_every_length_outside_the_accepted_set_raises_bad_length(
    head: bytes, length: int, data: st.DataObject
) -> None:
    assume(length >= len(head))
    assume(length not in ACCEPTED_LENGTHS[head])
    # Printable filler, so a URL body is valid and only its length is wrong.
    body = data.draw(st.text(alphabet=PRINTABLE, min_size=length, max_size=length))
    with pytest.raises(FrameError) as info:
        frames.parse((head + body.encode())[:length])
    assert info.value.reason is FrameErrorReason.BAD_LENGTH


# ----------------------------------------------------------------------------- error reasons


@given(
    st.sampled_from([0x00, 0x10, 0x20, 0x30]),
    st.integers(min_value=1, max_value=15),
    st.binary(max_size=25),
)
def test_nonzero_low_nibble_of_a_known_type_raises_reserved_bits(
    frame_type: int, low: int, rest: bytes
) -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(bytes((frame_type | low,)) + rest)
    assert info.value.reason is FrameErrorReason.RESERVED_BITS


@given(st.sampled_from(range(0x40, 0x100, 0x10)), st.binary(max_size=25))
def test_unknown_frame_types_raise_unknown_frame_type(frame_type: int, rest: bytes) -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(bytes((frame_type,)) + rest)
    assert info.value.reason is FrameErrorReason.UNKNOWN_FRAME_TYPE


@given(st.integers(min_value=0x41, max_value=0xFF), st.binary(max_size=25))
def test_types_with_an_unknown_high_nibble_are_rejected(frame_type: int, rest: bytes) -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(bytes((frame_type,)) + rest)
    assert info.value.reason in {
        FrameErrorReason.UNKNOWN_FRAME_TYPE,
        FrameErrorReason.RESERVED_BITS,
    }


@given(st.integers(min_value=2, max_value=0xFF), st.sampled_from([12, 16, 18, 19]))
def test_tlm_versions_other_than_0_and_1_raise_unknown_tlm_version(
    version: int, rest_size: int
) -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(bytes((0x20, version)) + bytes(rest_size))
    assert info.value.reason is FrameErrorReason.UNKNOWN_TLM_VERSION


def test_tlm_version_2_raises_unknown_tlm_version() -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(bytes.fromhex("20020bb81780000003e800008ca0"))
    assert info.value.reason is FrameErrorReason.UNKNOWN_TLM_VERSION


RESERVED_URL_BYTES = [*range(0x0E, 0x21), *range(0x7F, 0x100)]


@given(url_frames, st.sampled_from(RESERVED_URL_BYTES), st.data())
def test_reserved_url_bytes_raise_bad_url(
    frame: UrlFrame, reserved: int, data: st.DataObject
) -> None:
    encoded = frames.encode(frame)
    body = encoded[3:]
    if len(body) == MAX_URL_BODY:
        body = body[:-1]
    at = data.draw(st.integers(min_value=0, max_value=len(body)))
    tampered = encoded[:3] + body[:at] + bytes((reserved,)) + body[at:]
    with pytest.raises(FrameError) as info:
        frames.parse(tampered)
    assert info.value.reason is FrameErrorReason.BAD_URL


@given(url_frames, st.integers(min_value=4, max_value=0xFF))
def test_url_scheme_bytes_above_3_raise_bad_url(frame: UrlFrame, scheme: int) -> None:
    encoded = frames.encode(frame)
    with pytest.raises(FrameError) as info:
        frames.parse(encoded[:2] + bytes((scheme,)) + encoded[3:])
    assert info.value.reason is FrameErrorReason.BAD_URL


@pytest.mark.parametrize("byte", [0x0E, 0x20, 0x7F, 0x80, 0xFF])
def test_each_reserved_url_byte_boundary_raises_bad_url(byte: int) -> None:
    with pytest.raises(FrameError) as info:
        frames.parse(bytes((0x10, 0x00, 0x03, 0x61, byte, 0x62)))
    assert info.value.reason is FrameErrorReason.BAD_URL


@pytest.mark.parametrize("byte", [0x00, 0x0D, 0x21, 0x7E])
def test_url_byte_boundaries_just_inside_the_allowed_ranges_parse(byte: int) -> None:
    frame = frames.parse(bytes((0x10, 0x00, 0x03, 0x61, byte)))
    expected = EXPANSIONS[byte] if byte < len(EXPANSIONS) else chr(byte)
    assert frame == UrlFrame(tx_power=0, url="https://a" + expected)


# ------------------------------------------------------------------------------- URL encoder


@given(url_candidates)
def test_url_encoder_is_shortest_or_rejects_what_cannot_fit(url: str) -> None:
    size = min_url_body(url)
    if size is None or size > MAX_URL_BODY:
        with pytest.raises(FrameError) as info:
            UrlFrame(tx_power=0, url=url)
        assert info.value.reason is FrameErrorReason.BAD_URL
    else:
        data = frames.encode(UrlFrame(tx_power=0, url=url))
        assert len(data) - 3 == size
        assert decode_url(data[2], data[3:]) == url


NON_PRINTABLE = [*(chr(c) for c in range(0x21)), "\x7f", "\x80", "\u00e9", "\u2603", "\U0001f600"]


@given(urls, st.sampled_from(NON_PRINTABLE), st.data())
def test_urls_with_non_printable_characters_are_rejected(
    url: str, char: str, data: st.DataObject
) -> None:
    # Insert after the scheme, so the character lands in the encoded body.
    scheme = max((p for p in SCHEMES if url.startswith(p)), key=len)
    at = data.draw(st.integers(min_value=len(scheme), max_value=len(url)))
    with pytest.raises(FrameError) as info:
        UrlFrame(tx_power=0, url=url[:at] + char + url[at:])
    assert info.value.reason is FrameErrorReason.BAD_URL


@given(st.text(alphabet=PRINTABLE, min_size=18, max_size=40))
def test_urls_longer_than_17_bytes_after_the_scheme_are_rejected(body: str) -> None:
    assume(min_url_body("https://" + body) not in range(1, 18))
    with pytest.raises(FrameError) as info:
        UrlFrame(tx_power=0, url="https://" + body)
    assert info.value.reason is FrameErrorReason.BAD_URL


@pytest.mark.parametrize(
    "url",
    [
        "https://abcdefghijklmnopq",  # 17: fits
        "https://www.abcdefghijklmnopq",
        "http://abcdefghijklmno.com/",  # 15 + 1 code
        "https://" + ".com/" * 17,
    ],
)
def test_urls_of_exactly_17_body_bytes_fit(url: str) -> None:
    data = frames.encode(UrlFrame(tx_power=0, url=url))
    assert len(data) - 3 == min_url_body(url)
    assert len(data) <= 20


@pytest.mark.parametrize(
    "url",
    [
        "https://abcdefghijklmnopqr",  # 18
        "https://" + ".com/" * 18,
        "https://",
        "http://",
        "ftp://example.com",
        "HTTPS://example.com",
        "example.com",
        "",
        "https://exa mple.com",
        "https://example.com\x00",
    ],
)
def test_urls_that_cannot_be_carried_are_rejected(url: str) -> None:
    with pytest.raises(FrameError) as info:
        UrlFrame(tx_power=0, url=url)
    assert info.value.reason is FrameErrorReason.BAD_URL


def test_scheme_with_www_alone_is_carried_as_www_dot_after_the_short_scheme() -> None:
    # "https://www." leaves nothing after scheme 0x01, so only scheme 0x03 + "www." can carry it.
    assert frames.encode(UrlFrame(tx_power=0, url="https://www.")) == b"\x10\x00\x03www."
    assert frames.encode(UrlFrame(tx_power=0, url="http://www.")) == b"\x10\x00\x02www."


@pytest.mark.parametrize("url", [None, 42, b"https://a.com"])
def test_url_frame_rejects_a_url_that_is_not_a_str(url: Any) -> None:
    with pytest.raises(FrameError) as info:
        UrlFrame(tx_power=0, url=url)
    assert info.value.reason is FrameErrorReason.BAD_URL


# -------------------------------------------------------------------------------- EID privacy


@given(eid_frames)
def test_eid_frame_repr_never_shows_the_eid(frame: EidFrame) -> None:
    for text in (repr(frame), str(frame), f"{frame}", f"{frame!r}", repr([frame])):
        assert frame.eid.hex() not in text.lower()
        assert repr(frame.eid) not in text
        assert frame.eid.hex(" ") not in text.lower()
    assert str(frame.tx_power) in repr(frame)


# ------------------------------------------------------------------------ constructor checks

NS = bytes(10)
INST = bytes(6)

BAD_CONSTRUCTIONS = {
    "uid tx_power 128": lambda: UidFrame(tx_power=128, namespace=NS, instance=INST),
    "uid tx_power -129": lambda: UidFrame(tx_power=-129, namespace=NS, instance=INST),
    "uid tx_power bool": lambda: UidFrame(tx_power=True, namespace=NS, instance=INST),
    "uid tx_power float": lambda: UidFrame(tx_power=1.0, namespace=NS, instance=INST),  # type: ignore[arg-type]
    "uid namespace 9": lambda: UidFrame(tx_power=0, namespace=bytes(9), instance=INST),
    "uid namespace 11": lambda: UidFrame(tx_power=0, namespace=bytes(11), instance=INST),
    "uid namespace str": lambda: UidFrame(tx_power=0, namespace="a" * 10, instance=INST),  # type: ignore[arg-type]
    "uid instance 7": lambda: UidFrame(tx_power=0, namespace=NS, instance=bytes(7)),
    "uid instance bytearray": lambda: UidFrame(tx_power=0, namespace=NS, instance=bytearray(6)),  # type: ignore[arg-type]
    "url tx_power 128": lambda: UrlFrame(tx_power=128, url="https://a.com"),
    "tlm temperature -128": lambda: TlmFrame(3000, -128.0, 0, 0),
    "tlm temperature 128": lambda: TlmFrame(3000, 128.0, 0, 0),
    "tlm temperature 127.999": lambda: TlmFrame(3000, 127.999, 0, 0),
    "tlm temperature nan": lambda: TlmFrame(3000, math.nan, 0, 0),
    "tlm temperature inf": lambda: TlmFrame(3000, math.inf, 0, 0),
    "tlm temperature -inf": lambda: TlmFrame(3000, -math.inf, 0, 0),
    "tlm temperature str": lambda: TlmFrame(3000, "20", 0, 0),  # type: ignore[arg-type]
    "tlm temperature bool": lambda: TlmFrame(3000, temperature_c=True, adv_count=0, uptime_ds=0),
    "tlm battery 65536": lambda: TlmFrame(65536, 20.0, 0, 0),
    "tlm battery -1": lambda: TlmFrame(-1, 20.0, 0, 0),
    "tlm battery float": lambda: TlmFrame(3000.0, 20.0, 0, 0),  # type: ignore[arg-type]
    "tlm adv_count 2**32": lambda: TlmFrame(3000, 20.0, 2**32, 0),
    "tlm adv_count -1": lambda: TlmFrame(3000, 20.0, -1, 0),
    "tlm uptime 2**32": lambda: TlmFrame(3000, 20.0, 0, 2**32),
    "tlm uptime -1": lambda: TlmFrame(3000, 20.0, 0, -1),
    "etlm ciphertext 11": lambda: EtlmFrame(bytes(11), bytes(2), bytes(2)),
    "etlm ciphertext 13": lambda: EtlmFrame(bytes(13), bytes(2), bytes(2)),
    "etlm salt 3": lambda: EtlmFrame(bytes(12), bytes(3), bytes(2)),
    "etlm mic 1": lambda: EtlmFrame(bytes(12), bytes(2), bytes(1)),
    "eid 7": lambda: EidFrame(tx_power=0, eid=bytes(7)),
    "eid 9": lambda: EidFrame(tx_power=0, eid=bytes(9)),
    "eid tx_power 128": lambda: EidFrame(tx_power=128, eid=bytes(8)),
}


@pytest.mark.parametrize("construct", BAD_CONSTRUCTIONS.values(), ids=BAD_CONSTRUCTIONS.keys())
def test_constructors_reject_bad_fields(construct: Any) -> None:
    with pytest.raises(FrameError) as info:
        construct()
    assert info.value.reason is FrameErrorReason.BAD_FIELD


@pytest.mark.parametrize("tx_power", [-128, -100, 0, 20, 127])
def test_constructors_accept_tx_power_bounds(tx_power: int) -> None:
    assert UidFrame(tx_power=tx_power, namespace=NS, instance=INST).tx_power == tx_power
    assert EidFrame(tx_power=tx_power, eid=bytes(8)).tx_power == tx_power


@given(st.floats(min_value=-127.998, max_value=127.998))
def test_tlm_temperature_is_rounded_to_the_nearest_1_256(celsius: float) -> None:
    frame = TlmFrame(3000, celsius, 0, 0)
    assert frame.temperature_c is not None
    assert (frame.temperature_c * 256).is_integer()
    assert abs(frame.temperature_c - celsius) <= 1 / 512
    assert frames.parse(frames.encode(frame)) == frame


def test_tlm_temperature_extremes_of_the_wire_format_are_accepted() -> None:
    assert TlmFrame(0, 32767 / 256, 0, 0).temperature_c == 32767 / 256
    assert TlmFrame(0, -32767 / 256, 0, 0).temperature_c == -32767 / 256
    assert TlmFrame(0, 20, 0, 0).temperature_c == 20.0
    assert TlmFrame(0, None, 0, 0).temperature_c is None


@given(all_frames)
def test_frames_are_immutable(frame: Frame) -> None:
    for field in dataclasses.fields(frame):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(frame, field.name, getattr(frame, field.name))
