"""Property tests: eid's EID, IK derivation, eTLM and lock crypto against the independent oracle."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eid
from eid import frames
from eid.eax import eax_decrypt, eax_encrypt
from eid.lock import open_with_lock_code, seal_with_lock_code
from tests.eid import oracle

if TYPE_CHECKING:
    from collections.abc import Callable

keys = st.binary(min_size=16, max_size=16)
exponents = st.integers(min_value=0, max_value=15)
counters = st.integers(min_value=0, max_value=2**32 - 1)
privates = st.binary(min_size=32, max_size=32)
salts = st.binary(min_size=2, max_size=2)
telemetries = st.binary(min_size=12, max_size=12)
wrong_key_sizes = st.integers(min_value=0, max_value=40).filter(lambda n: n != 16)


def as_bytearray(data: bytes) -> bytes:
    """A bytearray typed as bytes: the API accepts any bytes-like value at runtime."""
    return cast("bytes", bytearray(data))


def _flip(data: bytes, bit: int) -> bytes:
    return (int.from_bytes(data, "big") ^ (1 << bit)).to_bytes(len(data), "big")


def _assert_no_secret(error: BaseException, secret: bytes) -> None:
    text = str(error) + repr(error)
    if len(secret) >= 4:  # shorter byte strings appear by chance in any text
        assert secret.hex() not in text.lower()
        assert repr(secret) not in text


# ------------------------------------------------------------------------------ EID and TK


@given(keys, exponents, counters)
def test_compute_eid_equals_oracle(ik: bytes, exponent: int, counter: int) -> None:
    assert eid.compute_eid(ik, exponent, counter) == oracle.compute_eid(ik, exponent, counter)


@given(keys, counters)
def test_temporary_key_equals_oracle(ik: bytes, counter: int) -> None:
    assert eid.temporary_key(ik, counter) == oracle.temporary_key(ik, counter)


@given(keys, exponents, counters, st.data())
def test_compute_eid_is_constant_within_a_rotation_period(
    ik: bytes, exponent: int, counter: int, data: st.DataObject
) -> None:
    start = (counter >> exponent) << exponent
    inside = data.draw(st.integers(min_value=start, max_value=start + (1 << exponent) - 1))
    assert eid.compute_eid(ik, exponent, inside) == eid.compute_eid(ik, exponent, start)


@given(keys, exponents, counters)
def test_compute_eid_accepts_a_bytearray_key(ik: bytes, exponent: int, counter: int) -> None:
    assert eid.compute_eid(as_bytearray(ik), exponent, counter) == oracle.compute_eid(
        ik, exponent, counter
    )
    assert eid.temporary_key(as_bytearray(ik), counter) == oracle.temporary_key(ik, counter)


@given(keys, st.lists(st.tuples(exponents, counters), min_size=1, max_size=20))
def test_eid_generator_equals_oracle_over_a_sequence_of_times(
    ik: bytes, times: list[tuple[int, int]]
) -> None:
    # One generator caches the TK of the current 65,536-second block: jumping between blocks
    # (forward and back) must never reuse a stale TK.
    generator = eid.EidGenerator(ik)
    for exponent, counter in times:
        assert generator.eid(exponent, counter) == oracle.compute_eid(ik, exponent, counter)
        assert generator.temporary_key(counter) == oracle.temporary_key(ik, counter)


@given(keys, exponents, st.integers(min_value=1, max_value=2**16 - 1))
def test_eid_generator_crosses_tk_rollover(ik: bytes, exponent: int, block: int) -> None:
    generator = eid.EidGenerator(ik)
    for counter in (block * 65536 - 1, block * 65536, block * 65536 - 1):
        assert generator.eid(exponent, counter) == oracle.compute_eid(ik, exponent, counter)


@given(keys)
def test_eid_generator_repr_hides_the_key(ik: bytes) -> None:
    text = repr(eid.EidGenerator(ik))
    assert ik.hex() not in text.lower()
    assert repr(ik) not in text


# ---------------------------------------------------------------------------- IK derivation


@given(privates)
def test_public_key_equals_oracle(private: bytes) -> None:
    public = eid.public_key(private)
    assert public == oracle.x25519_public(private)
    assert public == oracle.x25519_rfc7748(private, (9).to_bytes(32, "little"))


@given(privates, privates)
def test_both_sides_derive_the_oracle_identity_key(service: bytes, beacon: bytes) -> None:
    service_public = oracle.x25519_public(service)
    beacon_public = oracle.x25519_public(beacon)
    expected = oracle.resolver_identity_key(service, beacon_public)
    assert oracle.beacon_identity_key(beacon, service_public) == expected
    assert eid.resolver_identity_key(service, beacon_public) == expected
    assert eid.beacon_identity_key(beacon, service_public) == expected


@given(privates, privates)
def test_oracle_x25519_implementations_agree(private: bytes, peer: bytes) -> None:
    peer_public = oracle.x25519_public(peer)
    assert oracle.x25519(private, peer_public) == oracle.x25519_rfc7748(private, peer_public)


@pytest.mark.parametrize("size", [0, 31, 33])
@pytest.mark.parametrize(
    "derive", [eid.resolver_identity_key, eid.beacon_identity_key], ids=["resolver", "beacon"]
)
def test_derivations_reject_wrong_key_sizes(size: int, derive: Any) -> None:
    good = bytes(range(32))
    peer = oracle.x25519_public(bytes(range(1, 33)))
    with pytest.raises(eid.InvalidKeyError) as info:
        derive(bytes(range(size)), peer)
    _assert_no_secret(info.value, bytes(range(size)))
    with pytest.raises(eid.InvalidKeyError) as info:
        derive(good, bytes(size))
    _assert_no_secret(info.value, good)


@pytest.mark.parametrize("bad", ["0" * 64, None, 12345])
def test_derivations_reject_keys_that_are_not_bytes(bad: Any) -> None:
    peer = oracle.x25519_public(bytes(range(1, 33)))
    with pytest.raises(eid.InvalidKeyError):
        eid.resolver_identity_key(bad, peer)
    with pytest.raises(eid.InvalidKeyError):
        eid.beacon_identity_key(bytes(32), bad)
    with pytest.raises(eid.InvalidKeyError):
        eid.public_key(bad)


# ------------------------------------------------------------------------------------- eTLM


@given(keys, exponents, counters, salts, telemetries)
def test_encrypt_etlm_equals_oracle_and_decrypts_back(
    ik: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes
) -> None:
    frame = eid.encrypt_etlm(ik, exponent, counter, salt, telemetry)
    assert frame == oracle.encrypt_etlm(ik, exponent, counter, salt, telemetry)
    assert len(frame) == 18
    assert eid.decrypt_etlm(ik, exponent, counter, frame) == telemetry


@given(
    ik=keys, exponent=exponents, counter=counters, salt=salts, telemetry=telemetries, data=st.data()
)
def test_decrypt_etlm_accepts_any_counter_of_the_same_period(
    *, ik: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes, data: st.DataObject
) -> None:
    frame = oracle.encrypt_etlm(ik, exponent, counter, salt, telemetry)
    start = (counter >> exponent) << exponent
    other = data.draw(st.integers(min_value=start, max_value=start + (1 << exponent) - 1))
    assert eid.decrypt_etlm(ik, exponent, other, frame) == telemetry
    parsed = frames.parse(frame)
    assert isinstance(parsed, frames.EtlmFrame)
    assert eid.decrypt_etlm(ik, exponent, other, parsed) == telemetry


def _assert_decrypt_outcome(ik: bytes, exponent: int, counter: int, frame: bytes) -> None:
    """eid accepts exactly what the oracle accepts (a 2-byte MIC forges by chance 1 in 65536)."""
    expected = oracle.decrypt_etlm(ik, exponent, counter, frame)
    if expected is None:
        with pytest.raises(eid.IntegrityError) as info:
            eid.decrypt_etlm(ik, exponent, counter, frame)
        _assert_no_secret(info.value, ik)
    else:
        assert eid.decrypt_etlm(ik, exponent, counter, frame) == expected


@given(
    ik=keys,
    exponent=exponents,
    counter=counters,
    salt=salts,
    telemetry=telemetries,
    bit=st.integers(min_value=0, max_value=127),
)
def test_decrypt_etlm_rejects_a_flipped_bit_in_ciphertext_salt_or_mic(
    *, ik: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes, bit: int
) -> None:
    frame = oracle.encrypt_etlm(ik, exponent, counter, salt, telemetry)
    # Bits 0..127 of the 16 bytes after the frame type and version: ciphertext, salt, MIC.
    tampered = frame[:2] + _flip(frame[2:], bit)
    if bit < 16:  # the MIC is the last 16 bits, and the tag is deterministic
        with pytest.raises(eid.IntegrityError):
            eid.decrypt_etlm(ik, exponent, counter, tampered)
    _assert_decrypt_outcome(ik, exponent, counter, tampered)


@given(
    ik=keys,
    exponent=exponents,
    counter=counters,
    salt=salts,
    telemetry=telemetries,
    shift=st.integers(min_value=1, max_value=8),
)
def test_decrypt_etlm_rejects_another_rotation_period(
    *, ik: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes, shift: int
) -> None:
    frame = oracle.encrypt_etlm(ik, exponent, counter, salt, telemetry)
    other = (counter + (shift << exponent)) % 2**32
    _assert_decrypt_outcome(ik, exponent, other, frame)


@given(
    ik=keys, other_ik=keys, exponent=exponents, counter=counters, salt=salts, telemetry=telemetries
)
def test_decrypt_etlm_rejects_another_key(
    *, ik: bytes, other_ik: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes
) -> None:
    frame = oracle.encrypt_etlm(ik, exponent, counter, salt, telemetry)
    _assert_decrypt_outcome(other_ik, exponent, counter, frame)


@given(keys, exponents, counters, salts, telemetries)
def test_decrypt_etlm_rejects_the_same_counter_under_another_exponent(
    ik: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes
) -> None:
    frame = oracle.encrypt_etlm(ik, exponent, counter, salt, telemetry)
    _assert_decrypt_outcome(ik, (exponent + 1) % 16, counter, frame)


@given(keys, exponents, counters, salts, telemetries)
def test_decrypt_etlm_accepts_the_19_byte_nordic_frame(
    ik: bytes, exponent: int, counter: int, salt: bytes, telemetry: bytes
) -> None:
    frame = oracle.encrypt_etlm(ik, exponent, counter, salt, telemetry) + b"\x00"
    assert eid.decrypt_etlm(ik, exponent, counter, frame) == telemetry


UNKNOWN_TLM_VERSION = frames.FrameErrorReason.UNKNOWN_TLM_VERSION


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (bytes.fromhex("20000bb81780000003e800008ca0"), UNKNOWN_TLM_VERSION),
        (bytes.fromhex("30f0a84b34e7d345d960"), UNKNOWN_TLM_VERSION),
        (bytes.fromhex("2001") + bytes(15), frames.FrameErrorReason.BAD_LENGTH),
        (b"", frames.FrameErrorReason.EMPTY),
    ],
)
def test_decrypt_etlm_rejects_frames_that_are_not_etlm(
    frame: bytes, reason: frames.FrameErrorReason
) -> None:
    with pytest.raises(frames.FrameError) as info:
        eid.decrypt_etlm(bytes(16), 0, 0, frame)
    assert info.value.reason is reason


# -------------------------------------------------------------------------------------- EAX


@given(
    keys,
    st.binary(min_size=1, max_size=32),
    st.binary(max_size=40),
    st.binary(max_size=70),
    st.integers(min_value=2, max_value=16),
)
def test_eax_equals_oracle_and_round_trips(
    key: bytes, nonce: bytes, header: bytes, plaintext: bytes, tag_length: int
) -> None:
    ciphertext, tag = eax_encrypt(key, nonce, header, plaintext, tag_length=tag_length)
    assert (ciphertext, tag) == oracle.eax(key, nonce, header, plaintext, tag_length)
    assert eax_decrypt(key, nonce, header, ciphertext, tag) == plaintext


@pytest.mark.parametrize("tag_length", [0, 17, -1])
def test_eax_rejects_tag_lengths_outside_1_to_16(tag_length: int) -> None:
    with pytest.raises(eid.EidError):
        eax_encrypt(bytes(16), b"n", b"", b"p", tag_length=tag_length)
    with pytest.raises(eid.EidError):
        eax_decrypt(bytes(16), b"n", b"", b"p", bytes(max(tag_length, 0)))


def test_eax_rejects_a_wrong_key_size_without_echoing_it() -> None:
    key = bytes(range(15))
    with pytest.raises(eid.InvalidKeyError) as info:
        eax_encrypt(key, b"n", b"", b"p")
    _assert_no_secret(info.value, key)


# ------------------------------------------------------------------------------------- lock


@given(keys, st.binary(min_size=16, max_size=16))
def test_unlock_token_equals_oracle_aes_ecb(lock_code: bytes, challenge: bytes) -> None:
    assert eid.unlock_token(lock_code, challenge) == oracle.unlock_token(lock_code, challenge)


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_unlock_token_rejects_a_wrong_size_challenge(size: int) -> None:
    with pytest.raises(eid.EidError):
        eid.unlock_token(bytes(16), bytes(size))


@given(st.binary(max_size=40).filter(lambda code: len(code) != 16))
def test_unlock_token_rejects_a_wrong_size_lock_code_without_echoing_it(code: bytes) -> None:
    with pytest.raises(eid.InvalidKeyError) as info:
        eid.unlock_token(code, bytes(16))
    _assert_no_secret(info.value, code)


# ----------------------------------------------------------------------- bad arguments, messages


@given(wrong_key_sizes.flatmap(lambda n: st.binary(min_size=n, max_size=n)), exponents, counters)
def test_wrong_size_identity_keys_raise_without_echoing_the_key(
    ik: bytes, exponent: int, counter: int
) -> None:
    calls: list[Callable[[], object]] = [
        lambda: eid.compute_eid(ik, exponent, counter),
        lambda: eid.temporary_key(ik, counter),
        lambda: eid.EidGenerator(ik),
        lambda: eid.encrypt_etlm(ik, exponent, counter, b"\x00\x01", bytes(12)),
        lambda: eid.decrypt_etlm(ik, exponent, counter, b"\x20\x01" + bytes(16)),
    ]
    for call in calls:
        with pytest.raises(eid.InvalidKeyError) as info:
            call()
        assert isinstance(info.value, eid.EidError)
        _assert_no_secret(info.value, ik)


@pytest.mark.parametrize("size", [15, 17])
def test_identity_key_of_15_or_17_bytes_is_rejected(size: int) -> None:
    ik = bytes(range(100, 100 + size))
    with pytest.raises(eid.InvalidKeyError) as info:
        eid.compute_eid(ik, 0, 0)
    _assert_no_secret(info.value, ik)


@pytest.mark.parametrize("bad", ["00" * 16, None, 16, [0] * 16])
def test_identity_keys_that_are_not_bytes_are_rejected(bad: Any) -> None:
    with pytest.raises(eid.InvalidKeyError):
        eid.compute_eid(bad, 0, 0)
    with pytest.raises(eid.InvalidKeyError):
        eid.temporary_key(bad, 0)
    with pytest.raises(eid.InvalidKeyError):
        eid.encrypt_etlm(bad, 0, 0, b"\x00\x01", bytes(12))


IK = bytes.fromhex("0102030405060708090a111213141516")


@pytest.mark.parametrize("exponent", [16, -1, 255, 1.0, "3", None])
def test_exponents_outside_0_to_15_are_rejected(exponent: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: eid.compute_eid(IK, exponent, 0),
        lambda: eid.EidGenerator(IK).eid(exponent, 0),
        lambda: eid.encrypt_etlm(IK, exponent, 0, b"\x00\x01", bytes(12)),
        lambda: eid.decrypt_etlm(IK, exponent, 0, b"\x20\x01" + bytes(16)),
    ]
    for call in calls:
        with pytest.raises(eid.EidError) as info:
            call()
        _assert_no_secret(info.value, IK)


@pytest.mark.parametrize("counter", [-1, 2**32, 2**40, 1.5, "0", None])
def test_counters_outside_uint32_are_rejected(counter: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: eid.compute_eid(IK, 0, counter),
        lambda: eid.temporary_key(IK, counter),
        lambda: eid.encrypt_etlm(IK, 0, counter, b"\x00\x01", bytes(12)),
        lambda: eid.decrypt_etlm(IK, 0, counter, b"\x20\x01" + bytes(16)),
    ]
    for call in calls:
        with pytest.raises(eid.EidError) as info:
            call()
        _assert_no_secret(info.value, IK)


@pytest.mark.parametrize("salt", [b"", b"\x01", b"\x01\x02\x03", "ab", None])
def test_encrypt_etlm_rejects_a_salt_that_is_not_2_bytes(salt: Any) -> None:
    with pytest.raises(eid.EidError) as info:
        eid.encrypt_etlm(IK, 0, 0, salt, bytes(12))
    _assert_no_secret(info.value, IK)


@pytest.mark.parametrize("telemetry", [b"", bytes(11), bytes(13), "x" * 12, None])
def test_encrypt_etlm_rejects_telemetry_that_is_not_12_bytes(telemetry: Any) -> None:
    with pytest.raises(eid.EidError) as info:
        eid.encrypt_etlm(IK, 0, 0, b"\x00\x01", telemetry)
    _assert_no_secret(info.value, IK)


@given(keys, salts, telemetries)
def test_encrypt_etlm_accepts_bytearrays(ik: bytes, salt: bytes, telemetry: bytes) -> None:
    frame = eid.encrypt_etlm(as_bytearray(ik), 3, 1000, as_bytearray(salt), as_bytearray(telemetry))
    assert frame == oracle.encrypt_etlm(ik, 3, 1000, salt, telemetry)


@pytest.mark.parametrize(("exponent", "counter"), [(True, 0), (1, False), (1.0, 0), (1, 2.0)])
def test_booleans_and_floats_are_not_exponents_or_counters(
    exponent: object, counter: object
) -> None:
    with pytest.raises(eid.EidError):
        eid.compute_eid(bytes(range(16)), exponent, counter)  # type: ignore[arg-type]


@pytest.mark.parametrize("exponent", [True, 1.0])
def test_resolver_refuses_non_integer_exponents(exponent: object) -> None:
    with pytest.raises(eid.EidError):
        eid.Resolver().register("x", bytes(range(16)), exponent, 0)  # type: ignore[arg-type]


def test_shared_generator_across_threads_gives_the_oracle_eids() -> None:
    # compute_eid shares one generator per key; threads in different temporary-key blocks must
    # never see each other's temporary key.
    key = bytes(range(16, 32))
    counters = [block * 65536 + offset for block in range(8) for offset in (0, 1, 65535)]
    expected = {counter: oracle.compute_eid(key, 4, counter) for counter in counters}
    mismatches: list[int] = []

    def work(start: int) -> None:
        order = counters[start:] + counters[:start]
        for _ in range(200):
            mismatches.extend(c for c in order if eid.compute_eid(key, 4, c) != expected[c])

    threads = [threading.Thread(target=work, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


@given(lock_code=keys, secret=keys)
def test_lock_code_sealing_matches_the_oracle_and_round_trips(
    lock_code: bytes, secret: bytes
) -> None:
    sealed = seal_with_lock_code(lock_code, secret)
    assert sealed == oracle.unlock_token(lock_code, secret)  # the same AES-ECB block operation
    assert open_with_lock_code(lock_code, sealed) == secret
