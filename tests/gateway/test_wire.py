"""The fleet wire format (gateway/core/wire.py): known answers, round trips, a total decoder."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.wire import (
    MAX_AT_MS,
    Batch,
    BatchKind,
    HeardRecord,
    ObservedRecord,
    TelemetryValues,
    WireError,
    WireErrorReason,
    decode,
    encode,
)

U32 = 0xFFFF_FFFF
U64 = 0xFFFF_FFFF_FFFF_FFFF
LATEST_MS = MAX_AT_MS
"""The latest record time (ms) the generated batches use: the last ms of year 9999."""
MIN_SECRET_BYTES = 4
"""Shorter byte strings are too likely to appear as hex in a message by chance."""

EID_FRAME = bytes.fromhex("30ed8a8b7d4c2e1f09a7")  # an EID frame: type, tx power, 8-byte EID
ETLM_FRAME = bytes.fromhex("2001") + bytes(range(16))  # 18 bytes: header, ciphertext, salt, MIC
TLM_FRAME = bytes.fromhex("20000bb8f2400000123400005678")

# ---------------------------------------------------------------------------- known answers
# Built field by field from the byte table in wire.py's module docstring, not from its Structs.


def _header(  # noqa: PLR0917 - the header's fields, in wire order
    kind: int, gateway: bytes, boot: int, seq: int, base_ms: int, count: int
) -> bytes:
    return (
        b"BGW"
        + struct.pack(">BB", 1, kind)
        + struct.pack(">B", len(gateway))
        + gateway
        + struct.pack(">I", boot)
        + struct.pack(">I", seq)
        + struct.pack(">Q", base_ms)
        + struct.pack(">H", count)
    )


def _sized(data: bytes) -> bytes:
    return struct.pack(">B", len(data)) + data


SIGHTINGS = Batch(
    BatchKind.SIGHTINGS,
    "gw-entrée",  # not ASCII: the length counts UTF-8 bytes
    0xDEADBEEF,
    7,
    (
        HeardRecord(1_767_225_600_456, -61, 12, EID_FRAME),
        HeardRecord(1_767_225_600_123, -128, 1, ETLM_FRAME, EID_FRAME),  # the earliest: the base
        HeardRecord(1_767_225_601_000, 127, 255, TLM_FRAME),
    ),
)
SIGHTINGS_BYTES = (
    _header(1, "gw-entrée".encode(), 0xDEADBEEF, 7, 1_767_225_600_123, 3)
    + struct.pack(">I", 333)
    + struct.pack(">b", -61)
    + struct.pack(">B", 12)
    + _sized(EID_FRAME)
    + _sized(b"")
    + struct.pack(">I", 0)
    + struct.pack(">b", -128)
    + struct.pack(">B", 1)
    + _sized(ETLM_FRAME)
    + _sized(EID_FRAME)
    + struct.pack(">I", 877)
    + struct.pack(">b", 127)
    + struct.pack(">B", 255)
    + _sized(TLM_FRAME)
    + _sized(b"")
)

OBSERVATIONS = Batch(
    BatchKind.OBSERVATIONS,
    "resolver-1",
    1,
    U32,
    (
        ObservedRecord(5_000, -70, 9, -4, "loyalty-0001"),
        ObservedRecord(
            5_250,
            -80,
            1,
            3,
            "bag-tag-ü",
            TelemetryValues(3012, -12.25, 123_456, 98_765, encrypted=True),
        ),
        ObservedRecord(4_900, -90, 1, -128, "b", TelemetryValues(0, None, U32, 0, encrypted=False)),
    ),
)
OBSERVATIONS_BYTES = (
    _header(2, b"resolver-1", 1, U32, 4_900, 3)
    # an ID frame's observation: kind 0, no telemetry
    + struct.pack(">B", 0)
    + struct.pack(">I", 100)
    + struct.pack(">b", -70)
    + struct.pack(">B", 9)
    + struct.pack(">b", -4)
    + _sized(b"loyalty-0001")
    # telemetry, encrypted, -12.25 degC = -3136/256
    + struct.pack(">B", 1)
    + struct.pack(">I", 350)
    + struct.pack(">b", -80)
    + struct.pack(">B", 1)
    + struct.pack(">b", 3)
    + _sized("bag-tag-ü".encode())
    + struct.pack(">H", 3012)
    + struct.pack(">h", -3136)
    + struct.pack(">I", 123_456)
    + struct.pack(">I", 98_765)
    + struct.pack(">B", 1)
    # telemetry, plain, no temperature sensor: 0x8000
    + struct.pack(">B", 1)
    + struct.pack(">I", 0)
    + struct.pack(">b", -90)
    + struct.pack(">B", 1)
    + struct.pack(">b", -128)
    + _sized(b"b")
    + struct.pack(">H", 0)
    + bytes.fromhex("8000")
    + struct.pack(">I", U32)
    + struct.pack(">I", 0)
    + struct.pack(">B", 0)
)


@pytest.mark.parametrize(
    ("batch", "expected"),
    [(SIGHTINGS, SIGHTINGS_BYTES), (OBSERVATIONS, OBSERVATIONS_BYTES)],
    ids=["sightings", "observations"],
)
def test_known_answer(batch: Batch, expected: bytes) -> None:
    assert encode(batch) == expected
    assert decode(expected) == batch
    assert decode(expected).key == (batch.gateway, batch.boot, batch.seq)


def test_an_empty_batch_has_base_zero() -> None:
    batch = Batch(BatchKind.SIGHTINGS, "g", 0, 0)
    expected = _header(1, b"g", 0, 0, 0, 0)
    assert encode(batch) == expected
    assert decode(expected) == batch


def test_decode_takes_any_base_time() -> None:
    # An encoder need not pick the earliest record as the base: the reader adds dt to it.
    data = _header(1, b"g", 0, 0, 1000, 1) + struct.pack(">IbB", 5, -60, 1) + _sized(b"\x30")
    data += _sized(b"")
    assert decode(data).records == (HeardRecord(1005, -60, 1, b"\x30"),)


def test_reprs_do_not_show_frames() -> None:
    assert EID_FRAME.hex() not in repr(SIGHTINGS)
    assert all(EID_FRAME.hex() not in repr(record) for record in SIGHTINGS.records)
    assert repr(EID_FRAME) not in repr(SIGHTINGS.records[0])


# ---------------------------------------------------------------------------- round trips


def _utf8_text(max_bytes: int) -> st.SearchStrategy[str]:
    """Text of 1..max_bytes bytes of UTF-8: any characters, or ASCII up to the limit."""
    return st.one_of(
        st.text(min_size=1, max_size=max_bytes // 4),
        st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=max_bytes),
    )


gateways = _utf8_text(64)
beacon_ids = _utf8_text(255)
u8 = st.integers(0, 0xFF)
i8 = st.integers(-128, 127)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, U32)
frames_heard = st.binary(min_size=1, max_size=31)
paired_frames = st.binary(min_size=0, max_size=31)
temperatures = st.one_of(st.none(), st.integers(-0x7FFF, 0x7FFF).map(lambda raw: raw / 256))
"""Multiples of 1/256 degC in int16 range; -0x8000 (-128.0) is the wire's 'none' marker."""


@st.composite
def times(draw: st.DrawFn, count: int) -> list[int]:
    """``count`` record times: at_ms >= 0, spanning less than 2**32 ms, below 2**64."""
    base = draw(st.one_of(st.integers(0, 1 << 45), st.integers(0, LATEST_MS - U32)))
    return [base + draw(st.one_of(st.integers(0, 5000), u32)) for _ in range(count)]


@st.composite
def sightings_batches(draw: st.DrawFn) -> Batch:
    count = draw(st.integers(0, 12))
    records = tuple(
        HeardRecord(at, draw(i8), draw(u8), draw(frames_heard), draw(paired_frames))
        for at in draw(times(count))
    )
    return Batch(BatchKind.SIGHTINGS, draw(gateways), draw(u32), draw(u32), records)


telemetry_values = st.builds(TelemetryValues, u16, temperatures, u32, u32, st.booleans())


@st.composite
def observations_batches(draw: st.DrawFn) -> Batch:
    count = draw(st.integers(0, 12))
    records = tuple(
        ObservedRecord(
            at,
            draw(i8),
            draw(u8),
            draw(i8),
            draw(beacon_ids),
            draw(st.one_of(st.none(), telemetry_values)),
        )
        for at in draw(times(count))
    )
    return Batch(BatchKind.OBSERVATIONS, draw(gateways), draw(u32), draw(u32), records)


batches = st.one_of(sightings_batches(), observations_batches())


@given(sightings_batches())
def test_sightings_round_trip(batch: Batch) -> None:
    assert decode(encode(batch)) == batch


@given(observations_batches())
def test_observations_round_trip(batch: Batch) -> None:
    assert decode(encode(batch)) == batch


@given(batches)
def test_encoding_is_canonical(batch: Batch) -> None:
    data = encode(batch)
    assert encode(decode(data)) == data


# ---------------------------------------------------------------------------- a total decoder


def _frames_of(batch: Batch) -> list[bytes]:
    out: list[bytes] = []
    for record in batch.records:
        if isinstance(record, HeardRecord):
            out += [record.frame, record.paired]
    return [frame for frame in out if len(frame) >= MIN_SECRET_BYTES]


def _decodes_or_refuses(data: bytes, secrets: list[bytes]) -> Batch | WireError:
    """decode(data): a Batch, or a WireError with a reason and a message showing no frame."""
    try:
        return decode(data)
    except WireError as exc:
        refused = exc
    message = str(refused).lower()
    assert message.strip()
    assert isinstance(refused.reason, WireErrorReason)
    for secret in secrets:
        assert secret.hex() not in message
    if len(data) >= MIN_SECRET_BYTES:
        assert data.hex() not in message
    return refused


@given(st.binary(max_size=300))
def test_decode_is_total_on_any_bytes(data: bytes) -> None:
    _decodes_or_refuses(data, [])


@given(st.binary(max_size=200))
def test_decode_is_total_behind_a_valid_header(tail: bytes) -> None:
    for kind in (1, 2):
        _decodes_or_refuses(_header(kind, b"gw", 1, 2, 3, len(tail) % 4) + tail, [])


def _byte_changes(data: bytes) -> list[bytes]:
    """Every single-byte change of ``data``."""
    return [
        data[:at] + bytes((value,)) + data[at + 1 :]
        for at in range(len(data))
        for value in range(256)
        if value != data[at]
    ]


@pytest.mark.parametrize("batch", [SIGHTINGS, OBSERVATIONS], ids=["sightings", "observations"])
def test_every_truncation_and_byte_change_decodes_or_refuses(batch: Batch) -> None:
    data = encode(batch)
    secrets = _frames_of(batch)
    for end in range(len(data)):
        refused = _decodes_or_refuses(data[:end], secrets)
        assert isinstance(refused, WireError)
        assert refused.reason is WireErrorReason.TRUNCATED
    for mutated in _byte_changes(data):
        outcome = _decodes_or_refuses(mutated, secrets)
        if isinstance(outcome, Batch):  # what decodes re-encodes to an equal batch
            assert decode(encode(outcome)) == outcome
    refused = _decodes_or_refuses(data + b"\x00", secrets)
    assert isinstance(refused, WireError)
    assert refused.reason is WireErrorReason.TRAILING


@given(batches, st.data())
def test_mutated_encodings_decode_or_refuse(batch: Batch, data: st.DataObject) -> None:
    encoded = encode(batch)
    secrets = _frames_of(batch)
    end = data.draw(st.integers(0, len(encoded) - 1))
    assert isinstance(_decodes_or_refuses(encoded[:end], secrets), WireError)
    at = data.draw(st.integers(0, len(encoded) - 1))
    value = data.draw(u8)
    _decodes_or_refuses(encoded[:at] + bytes((value,)) + encoded[at + 1 :], secrets)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", WireErrorReason.TRUNCATED),
        (b"BGX\x01\x01", WireErrorReason.BAD_MAGIC),
        (b"BGW\x02\x01", WireErrorReason.BAD_VERSION),
        (b"BGW\x01\x03", WireErrorReason.BAD_KIND),
        (b"BGW\x01\x01\x00", WireErrorReason.BAD_VALUE),  # an empty gateway
        (b"BGW\x01\x01\x01\xff", WireErrorReason.BAD_TEXT),
        (b"BGW\x01\x01\x41" + b"g" * 65, WireErrorReason.BAD_VALUE),  # 65 bytes of gateway
        (
            _header(1, b"g", 0, 0, 0, 1) + struct.pack(">IbB", 0, 0, 1) + _sized(b""),
            WireErrorReason.BAD_VALUE,  # an empty frame
        ),
        (
            _header(1, b"g", 0, 0, 0, 1) + struct.pack(">IbB", 0, 0, 1) + _sized(bytes(32)),
            WireErrorReason.BAD_VALUE,  # a 32-byte frame
        ),
        (
            _header(1, b"g", 0, 0, 0, 1)
            + struct.pack(">IbB", 0, 0, 1)
            + _sized(b"\x30")
            + _sized(bytes(32)),
            WireErrorReason.BAD_VALUE,  # a 32-byte paired frame
        ),
        (
            _header(2, b"g", 0, 0, 0, 1) + struct.pack(">BIbBb", 2, 0, 0, 1, 0) + _sized(b"b"),
            WireErrorReason.BAD_KIND,  # observation kind 2
        ),
        (
            _header(2, b"g", 0, 0, 0, 1) + struct.pack(">BIbBb", 0, 0, 0, 1, 0) + _sized(b""),
            WireErrorReason.BAD_VALUE,  # an empty beacon id
        ),
        (
            _header(2, b"g", 0, 0, 0, 1)
            + struct.pack(">BIbBb", 1, 0, 0, 1, 0)
            + _sized(b"b")
            + struct.pack(">HhIIB", 0, 0, 0, 0, 2),
            WireErrorReason.BAD_VALUE,  # encrypted flag 2
        ),
        (_header(1, b"g", 0, 0, 0, 0xFFFF), WireErrorReason.TRUNCATED),
    ],
)
def test_decode_says_why(data: bytes, reason: WireErrorReason) -> None:
    with pytest.raises(WireError) as refused:
        decode(data)
    assert refused.value.reason is reason
    assert str(refused.value).strip()


def test_decode_refuses_record_times_beyond_max_at_ms() -> None:
    data = _header(1, b"g", 0, 0, MAX_AT_MS, 1) + struct.pack(">IbB", 1, -60, 1)
    data += _sized(b"\x30") + _sized(b"")
    try:
        decode(data)
    except WireError as exc:
        reason: WireErrorReason | None = exc.reason
    else:
        reason = None
    assert reason is WireErrorReason.BAD_VALUE


# ---------------------------------------------------------------------------- encode's errors


def _heard(*, rssi: int = -60, frame: bytes = EID_FRAME, paired: bytes = b"") -> Batch:
    return Batch(BatchKind.SIGHTINGS, "gw", 0, 0, (HeardRecord(0, rssi, 1, frame, paired),))


@pytest.mark.parametrize(
    ("batch", "field"),
    [
        (Batch(BatchKind.SIGHTINGS, "g" * 65, 0, 0), "gateway"),
        (Batch(BatchKind.SIGHTINGS, "é" * 33, 0, 0), "gateway"),  # 66 bytes of UTF-8
        (Batch(BatchKind.SIGHTINGS, "", 0, 0), "gateway"),
        (_heard(frame=b""), "frame"),
        (_heard(frame=bytes(32)), "frame"),
        (_heard(paired=bytes(32)), "paired"),
    ],
)
def test_encode_names_the_field_it_cannot_carry(batch: Batch, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        encode(batch)


@pytest.mark.parametrize("rssi", [-129, 128])
def test_encode_names_rssi_out_of_range(rssi: int) -> None:
    with pytest.raises(ValueError, match="rssi"):
        encode(_heard(rssi=rssi))


@pytest.mark.parametrize("rssi", [-129, 128, 1000])
def test_encode_refuses_rssi_out_of_range(rssi: int) -> None:
    with pytest.raises(ValueError, match=r"\b-?\d+\b"):
        encode(_heard(rssi=rssi))


def test_encode_refuses_a_span_beyond_u32_and_mixed_records() -> None:
    records = (HeardRecord(0, -60, 1, EID_FRAME), HeardRecord(U32 + 1, -60, 1, EID_FRAME))
    with pytest.raises(ValueError, match="spans"):
        encode(Batch(BatchKind.SIGHTINGS, "g", 0, 0, records))
    with pytest.raises(TypeError, match="sightings batch cannot hold"):
        encode(Batch(BatchKind.SIGHTINGS, "g", 0, 0, OBSERVATIONS.records))
    with pytest.raises(TypeError, match="observations batch cannot hold"):
        encode(Batch(BatchKind.OBSERVATIONS, "g", 0, 0, SIGHTINGS.records))


def test_encode_refuses_the_no_temperature_marker_as_a_value() -> None:
    values = TelemetryValues(3000, -128.0, 1, 1, encrypted=False)
    batch = Batch(BatchKind.OBSERVATIONS, "g", 0, 0, (ObservedRecord(0, -60, 1, 0, "b", values),))
    try:
        data = encode(batch)
    except ValueError:
        return
    assert decode(data) == batch


def test_encode_refuses_an_infinite_temperature() -> None:
    values = TelemetryValues(3000, float("inf"), 1, 1, encrypted=False)
    batch = Batch(BatchKind.OBSERVATIONS, "g", 0, 0, (ObservedRecord(0, -60, 1, 0, "b", values),))
    with pytest.raises(ValueError, match="temperature"):
        encode(batch)
