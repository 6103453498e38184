"""AD structures around Eddystone frames (eddystone-spec.md section 1 and the section 5 example)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eid import frames
from eid.advertising import advertisement, eddystone_service_data

# Spec section 5, example advert [CALC]: flags, UUID list, service data with an EID frame.
SPEC_EID_ADVERT = bytes.fromhex("0201060303aafe0d16aafe30f0a84b34e7d345d960")
SPEC_EID_FRAME = bytes.fromhex("30f0a84b34e7d345d960")


def test_service_data_is_extracted_from_the_spec_example() -> None:
    assert eddystone_service_data(SPEC_EID_ADVERT) == SPEC_EID_FRAME


def test_advertisement_rebuilds_the_spec_example() -> None:
    assert advertisement(SPEC_EID_FRAME) == SPEC_EID_ADVERT


def test_other_service_data_and_padding_are_skipped() -> None:
    other = bytes.fromhex("05160f18aa11")  # battery service data (UUID 0x180F) first
    padded = other + SPEC_EID_ADVERT[7:] + bytes(4)
    assert eddystone_service_data(padded) == SPEC_EID_FRAME


def test_zero_length_ends_the_significant_part() -> None:
    advert = bytes.fromhex("020106") + b"\x00" + SPEC_EID_ADVERT[7:]
    with pytest.raises(frames.FrameError) as caught:
        eddystone_service_data(advert)
    assert caught.value.reason is frames.FrameErrorReason.NOT_EDDYSTONE


def test_truncated_structure_is_a_length_error() -> None:
    with pytest.raises(frames.FrameError) as caught:
        eddystone_service_data(SPEC_EID_ADVERT[:-1])
    assert caught.value.reason is frames.FrameErrorReason.BAD_LENGTH
    assert "claims 13 bytes" in str(caught.value)


def test_not_bytes_is_a_frame_error() -> None:
    with pytest.raises(frames.FrameError) as caught:
        eddystone_service_data("0201")  # type: ignore[arg-type]
    assert caught.value.reason is frames.FrameErrorReason.NOT_BYTES


def test_an_advertisement_over_31_bytes_is_refused() -> None:
    with pytest.raises(frames.FrameError, match="over the 31 allowed"):
        advertisement(bytes(21))


@given(st.binary(max_size=20))
def test_wrapping_and_extracting_round_trips(frame: bytes) -> None:
    assert eddystone_service_data(advertisement(frame)) == frame


@given(st.binary(max_size=40))
def test_extraction_raises_only_frame_error(data: bytes) -> None:
    with contextlib.suppress(frames.FrameError):
        eddystone_service_data(data)
