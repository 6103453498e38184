"""Known-answer tests: every [3P], [STD] and [CALC] vector of eddystone-spec.md, as literal hex.

Each vector is checked twice: against ``eid`` (the code under test) and against the independent
oracle (so a vector typo and an oracle bug cannot hide each other).
"""

from __future__ import annotations

import uuid
from typing import NamedTuple

import pytest

import eid
from eid import frames
from eid.eax import eax_decrypt, eax_encrypt
from eid.frames import EidFrame, EtlmFrame, FrameErrorReason, TlmFrame, UidFrame, UrlFrame
from tests.eid import oracle

h = bytes.fromhex

# ------------------------------------------------------------------------ EID, spec section 6.1

RADIUS_IK = h("0102030405060708090a111213141516")
RADIUS_EID_T0 = h("a9b76a71c5f89290")
RADIUS_EID_T1024_2047 = h("4144413e45fefa58")

NODE_IK = h("00112233445566778899aabbccddeeff")
NODE_K = 12
NODE_T = 1518080946
NODE_TK_BLOCK = h("0000000000000000000000ff00005a7c")
NODE_TK = h("b7c2d909d27d22df8343271162480210")
NODE_EID_BLOCK = h("00000000000000000000000c5a7c1000")
NODE_EID = h("7dd8169dae94258c")


@pytest.mark.parametrize(
    ("counter", "expected"),
    [
        (0, RADIUS_EID_T0),
        (1023, RADIUS_EID_T0),
        (2000, RADIUS_EID_T1024_2047),
        (1024, RADIUS_EID_T1024_2047),
        (2047, RADIUS_EID_T1024_2047),
    ],
)
def test_compute_eid_matches_radiusnetworks_vector_k10(counter: int, expected: bytes) -> None:
    assert eid.compute_eid(RADIUS_IK, 10, counter) == expected
    assert oracle.compute_eid(RADIUS_IK, 10, counter) == expected


def test_compute_eid_changes_after_radiusnetworks_period() -> None:
    assert eid.compute_eid(RADIUS_IK, 10, 2048) != RADIUS_EID_T1024_2047


def test_node_eddystone_counter_literal_is_the_hex_in_the_spec() -> None:
    assert NODE_T == 0x5A7C13B2


def test_oracle_builds_node_eddystone_tk_and_eid_blocks() -> None:
    assert oracle.tk_block(NODE_T) == NODE_TK_BLOCK
    assert oracle.eid_block(NODE_K, NODE_T) == NODE_EID_BLOCK
    assert oracle.aes_ecb(NODE_IK, NODE_TK_BLOCK) == NODE_TK
    assert oracle.aes_ecb(NODE_TK, NODE_EID_BLOCK)[:8] == NODE_EID


def test_temporary_key_matches_node_eddystone_vector() -> None:
    assert eid.temporary_key(NODE_IK, NODE_T) == NODE_TK


def test_compute_eid_matches_node_eddystone_vector_k12() -> None:
    assert eid.compute_eid(NODE_IK, NODE_K, NODE_T) == NODE_EID


def test_eid_generator_matches_node_eddystone_vector() -> None:
    generator = eid.EidGenerator(NODE_IK)
    assert generator.temporary_key(NODE_T) == NODE_TK
    assert generator.eid(NODE_K, NODE_T) == NODE_EID


# --------------------------------------------------------------- IK derivation, spec section 7.1

SET1_RESOLVER_PRIVATE = h("61136adab1bf302f1c49e860196aeefd8fbaa41518b4c226372d6cc469c47278")
SET1_RESOLVER_PUBLIC = h("29769a045dcb811ba3025985b9de91eb9a57dadbceb68a1e6a3c2b1af4868e1f")
SET1_BEACON_PRIVATE = h("6ea13b5ef3cc642fd6102c1d85c096b510f56efc488114a4562a987bf4525628")
SET1_BEACON_PUBLIC = h("c63e6f89aab47552c8d621a59c81d0af203f6570a4bd7a267a08a17561c8bc2b")
SET1_SHARED = h("690821890fffb83bb348fb620d0a10e625fe3d919b5594e7b9258d50f829b90b")
SET1_IK = h("f40d6f18e5882260e847e99ca33ac44f")
SET1_IK_SWAPPED_SALT = h("b0cfcfed5acbf11b6a090fec8b71c9d7")

SET2_RESOLVER_PRIVATE = h("4041414141414141414141414141414141414141414141414141414141414141")
SET2_RESOLVER_PUBLIC = h("7a1a4e709bf085ac494aba0469b9b1eda0ab1f78b16aabb79ffeda90623e8522")
SET2_BEACON_PUBLIC = h("5f2ff6357762b9c188343259a9bd899a9a667d170143c0bc1ae905e877914a0e")
SET2_SHARED = h("80722c34967ab7d613c5549224c662aed7cdf5369ec051bcede788a4a29b7677")
SET2_IK = h("7c91330e61dfea4606b5b3ecb4457d76")
SET2_EID_K0_T0 = h("436bfe57d5a09505")


def test_oracle_reproduces_ik_set1_shared_secret_and_both_salt_orders() -> None:
    assert oracle.x25519(SET1_RESOLVER_PRIVATE, SET1_BEACON_PUBLIC) == SET1_SHARED
    assert oracle.x25519(SET1_BEACON_PRIVATE, SET1_RESOLVER_PUBLIC) == SET1_SHARED
    assert oracle.x25519_rfc7748(SET1_RESOLVER_PRIVATE, SET1_BEACON_PUBLIC) == SET1_SHARED
    ik = oracle.identity_key_from_shared(SET1_SHARED, SET1_RESOLVER_PUBLIC, SET1_BEACON_PUBLIC)
    swapped = oracle.identity_key_from_shared(SET1_SHARED, SET1_BEACON_PUBLIC, SET1_RESOLVER_PUBLIC)
    assert ik == SET1_IK
    assert swapped == SET1_IK_SWAPPED_SALT


def test_oracle_reproduces_ik_set2() -> None:
    assert oracle.x25519_public(SET2_RESOLVER_PRIVATE) == SET2_RESOLVER_PUBLIC
    assert oracle.x25519(SET2_RESOLVER_PRIVATE, SET2_BEACON_PUBLIC) == SET2_SHARED
    assert oracle.resolver_identity_key(SET2_RESOLVER_PRIVATE, SET2_BEACON_PUBLIC) == SET2_IK
    assert oracle.compute_eid(SET2_IK, 0, 0) == SET2_EID_K0_T0


@pytest.mark.parametrize(
    ("private", "public"),
    [
        (SET1_RESOLVER_PRIVATE, SET1_RESOLVER_PUBLIC),
        (SET1_BEACON_PRIVATE, SET1_BEACON_PUBLIC),
        (SET2_RESOLVER_PRIVATE, SET2_RESOLVER_PUBLIC),
    ],
)
def test_public_key_matches_spec_vectors(private: bytes, public: bytes) -> None:
    assert eid.public_key(private) == public


def test_resolver_identity_key_matches_ik_set1() -> None:
    ik = eid.resolver_identity_key(SET1_RESOLVER_PRIVATE, SET1_BEACON_PUBLIC)
    assert ik == SET1_IK
    assert ik != SET1_IK_SWAPPED_SALT


def test_beacon_identity_key_matches_ik_set1() -> None:
    ik = eid.beacon_identity_key(SET1_BEACON_PRIVATE, SET1_RESOLVER_PUBLIC)
    assert ik == SET1_IK
    assert ik != SET1_IK_SWAPPED_SALT


def test_resolver_identity_key_matches_ik_set2_and_its_eid() -> None:
    ik = eid.resolver_identity_key(SET2_RESOLVER_PRIVATE, SET2_BEACON_PUBLIC)
    assert ik == SET2_IK
    assert eid.compute_eid(ik, 0, 0) == SET2_EID_K0_T0


_P = 2**255 - 19
LOW_ORDER_POINTS = [
    pytest.param(bytes(32), id="u=0"),
    pytest.param(b"\x01" + bytes(31), id="u=1"),
    pytest.param((_P - 1).to_bytes(32, "little"), id="u=p-1"),
    pytest.param(_P.to_bytes(32, "little"), id="u=p"),
    pytest.param((_P + 1).to_bytes(32, "little"), id="u=p+1"),
]


@pytest.mark.parametrize("low_order", LOW_ORDER_POINTS)
def test_oracle_confirms_low_order_point_gives_all_zero_shared_secret(low_order: bytes) -> None:
    assert oracle.x25519_rfc7748(SET1_RESOLVER_PRIVATE, low_order) == bytes(32)
    assert oracle.x25519_rfc7748(SET1_BEACON_PRIVATE, low_order) == bytes(32)


@pytest.mark.parametrize("low_order", LOW_ORDER_POINTS)
def test_resolver_identity_key_rejects_low_order_beacon_key(low_order: bytes) -> None:
    with pytest.raises(eid.InvalidKeyError) as info:
        eid.resolver_identity_key(SET1_RESOLVER_PRIVATE, low_order)
    assert isinstance(info.value, eid.EidError)
    assert SET1_RESOLVER_PRIVATE.hex() not in str(info.value)


@pytest.mark.parametrize("low_order", LOW_ORDER_POINTS)
def test_beacon_identity_key_rejects_low_order_service_key(low_order: bytes) -> None:
    with pytest.raises(eid.InvalidKeyError) as info:
        eid.beacon_identity_key(SET1_BEACON_PRIVATE, low_order)
    assert isinstance(info.value, eid.EidError)
    assert SET1_BEACON_PRIVATE.hex() not in str(info.value)


def test_invalid_key_error_is_an_eid_error_and_a_value_error() -> None:
    assert issubclass(eid.InvalidKeyError, eid.EidError)
    assert issubclass(eid.IntegrityError, eid.EidError)
    assert issubclass(eid.FrameError, eid.EidError)
    assert issubclass(eid.EidError, ValueError)
    assert frames.FrameError is eid.FrameError


# ---------------------------------------------------------------- EAX paper, spec section 9.1


class EaxVector(NamedTuple):
    key: bytes
    nonce: bytes
    header: bytes
    plaintext: bytes
    ciphertext: bytes
    tag: bytes


# key / nonce / header / plaintext -> ciphertext / tag, in the order of section 9.1.
EAX_PAPER_VECTORS = [
    EaxVector(
        h("233952dee4d5ed5f9b9c6d6ff80ff478"),
        h("62ec67f9c3a4a407fcb2a8c49031a8b3"),
        h("6bfb914fd07eae6b"),
        h(""),
        h(""),
        h("e037830e8389f27b025a2d6527e79d01"),
    ),
    EaxVector(
        h("91945d3f4dcbee0bf45ef52255f095a4"),
        h("becaf043b0a23d843194ba972c66debd"),
        h("fa3bfd4806eb53fa"),
        h("f7fb"),
        h("19dd"),
        h("5c4c9331049d0bdab0277408f67967e5"),
    ),
    EaxVector(
        h("01f74ad64077f2e704c0f60ada3dd523"),
        h("70c3db4f0d26368400a10ed05d2bff5e"),
        h("234a3463c1264ac6"),
        h("1a47cb4933"),
        h("d851d5bae0"),
        h("3a59f238a23e39199dc9266626c40f80"),
    ),
    EaxVector(
        h("d07cf6cbb7f313bdde66b727afd3c5e8"),
        h("8408dfff3c1a2b1292dc199e46b7d617"),
        h("33cce2eabff5a79d"),
        h("481c9e39b1"),
        h("632a9d131a"),
        h("d4c168a4225d8e1ff755939974a7bede"),
    ),
    EaxVector(
        h("35b6d0580005bbc12b0587124557d2c2"),
        h("fdb6b06676eedc5c61d74276e1f8e816"),
        h("aeb96eaebe2970e9"),
        h("40d0c07da5e4"),
        h("071dfe16c675"),
        h("cb0677e536f73afe6a14b74ee49844dd"),
    ),
    EaxVector(
        h("bd8e6e11475e60b268784c38c62feb22"),
        h("6eac5c93072d8e8513f750935e46da1b"),
        h("d4482d1ca78dce0f"),
        h("4de3b35c3fc039245bd1fb7d"),
        h("835bb4f15d743e350e728414"),
        h("abb8644fd6ccb86947c5e10590210a4f"),
    ),
    EaxVector(
        h("7c77d6e813bed5ac98baa417477a2e7d"),
        h("1a8c98dcd73d38393b2bf1569deefc19"),
        h("65d2017990d62528"),
        h("8b0a79306c9ce7ed99dae4f87f8dd61636"),
        h("02083e3979da014812f59f11d52630da30"),
        h("137327d10649b0aa6e1c181db617d7f2"),
    ),
    EaxVector(
        h("5fff20cafab119ca2fc73549e20f5b0d"),
        h("dde59b97d722156d4d9aff2bc7559826"),
        h("54b9f04e6a09189a"),
        h("1bda122bce8a8dbaf1877d962b8592dd2d56"),
        h("2ec47b2c4954a489afc7ba4897edcdae8cc3"),
        h("3b60450599bd02c96382902aef7f832a"),
    ),
    EaxVector(
        h("a4a4782bcffd3ec5e7ef6d8c34a56123"),
        h("b781fcf2f75fa5a8de97a9ca48e522ec"),
        h("899a175897561d7e"),
        h("6cf36720872b8513f6eab1a8a44438d5ef11"),
        h("0de18fd0fdd91e7af19f1d8ee8733938b1e8"),
        h("e7f6d2231618102fdb7fe55ff1991700"),
    ),
    EaxVector(
        h("8395fcf1e95bebd697bd010bc766aac3"),
        h("22e7add93cfc6393c57ec0b3c17d6b44"),
        h("126735fcc320d25a"),
        h("ca40d7446e545ffaed3bd12a740a659ffbbb3ceab7"),
        h("cb8920f87a6c75cff39627b56e3ed197c552d295a7"),
        h("cfc46afc253b4652b1af3795b124ab6e"),
    ),
]
EAX_IDS = [f"paper-{i}" for i in range(1, len(EAX_PAPER_VECTORS) + 1)]


@pytest.mark.parametrize("v", EAX_PAPER_VECTORS, ids=EAX_IDS)
def test_eax_encrypt_matches_paper_vector(v: EaxVector) -> None:
    assert eax_encrypt(v.key, v.nonce, v.header, v.plaintext, tag_length=16) == (
        v.ciphertext,
        v.tag,
    )
    assert oracle.eax(v.key, v.nonce, v.header, v.plaintext) == (v.ciphertext, v.tag)


@pytest.mark.parametrize("v", EAX_PAPER_VECTORS, ids=EAX_IDS)
def test_eax_decrypt_matches_paper_vector(v: EaxVector) -> None:
    assert eax_decrypt(v.key, v.nonce, v.header, v.ciphertext, v.tag) == v.plaintext


@pytest.mark.parametrize("v", EAX_PAPER_VECTORS, ids=EAX_IDS)
def test_eax_truncated_tag_is_a_prefix_of_the_paper_tag(v: EaxVector) -> None:
    truncated = eax_encrypt(v.key, v.nonce, v.header, v.plaintext, tag_length=2)
    assert truncated == (v.ciphertext, v.tag[:2])
    assert eax_decrypt(v.key, v.nonce, v.header, v.ciphertext, v.tag[:2]) == v.plaintext


@pytest.mark.parametrize("v", EAX_PAPER_VECTORS, ids=EAX_IDS)
@pytest.mark.parametrize("bit", [0, 7, 64, 127])
def test_eax_decrypt_rejects_paper_vector_with_flipped_tag_bit(v: EaxVector, bit: int) -> None:
    bad_tag = (int.from_bytes(v.tag, "big") ^ (1 << bit)).to_bytes(16, "big")
    with pytest.raises(eid.IntegrityError):
        eax_decrypt(v.key, v.nonce, v.header, v.ciphertext, bad_tag)


@pytest.mark.parametrize("v", EAX_PAPER_VECTORS, ids=EAX_IDS)
def test_eax_decrypt_rejects_paper_vector_with_flipped_header_bit(v: EaxVector) -> None:
    bad_header = bytes((v.header[0] ^ 0x01,)) + v.header[1:]
    with pytest.raises(eid.IntegrityError):
        eax_decrypt(v.key, v.nonce, bad_header, v.ciphertext, v.tag)


@pytest.mark.parametrize("v", EAX_PAPER_VECTORS[1:], ids=EAX_IDS[1:])
def test_eax_decrypt_rejects_paper_vector_with_flipped_ciphertext_bit(v: EaxVector) -> None:
    bad_ciphertext = bytes((v.ciphertext[0] ^ 0x80,)) + v.ciphertext[1:]
    with pytest.raises(eid.IntegrityError):
        eax_decrypt(v.key, v.nonce, v.header, bad_ciphertext, v.tag)


# ---------------------------------------------------------------------- eTLM, spec section 9

ETLM_IK = h("589417b0324b1b71d7a6751852867ae8")
ETLM_NONCE = h("00010000f683")
ETLM_SALT = h("f683")
ETLM_PLAINTEXT = h("00001c400000004800000073")
ETLM_CIPHERTEXT = h("d5d89979ae79ebee4e385fa5")
ETLM_FULL_TAG = h("0efb21fad714a25b44145f79221a2c9a")
ETLM_MIC = h("0efb")
ETLM_FRAME = h("2001d5d89979ae79ebee4e385fa5f6830efb")

# (K, counter) pairs whose K-masked counter is 0x00010000.
ETLM_TIMES = [
    (0, 0x0001_0000),
    (4, 0x0001_000F),
    (10, 0x0001_0000),
    (10, 0x0001_0000 + 517),
    (10, 0x0001_03FF),
    (15, 0x0001_7FFF),
    (15, 0x0001_0000),
]


def test_etlm_vector_nonce_and_full_tag_via_eax() -> None:
    assert oracle.etlm_nonce(0, 0x0001_0000, ETLM_SALT) == ETLM_NONCE
    assert eax_encrypt(ETLM_IK, ETLM_NONCE, b"", ETLM_PLAINTEXT) == (ETLM_CIPHERTEXT, ETLM_FULL_TAG)
    assert ETLM_FULL_TAG[:2] == ETLM_MIC
    assert oracle.encrypt_etlm(ETLM_IK, 0, 0x0001_0000, ETLM_SALT, ETLM_PLAINTEXT) == ETLM_FRAME


@pytest.mark.parametrize(("exponent", "counter"), ETLM_TIMES)
def test_encrypt_etlm_matches_spec_vector(exponent: int, counter: int) -> None:
    frame = eid.encrypt_etlm(ETLM_IK, exponent, counter, ETLM_SALT, ETLM_PLAINTEXT)
    assert frame == ETLM_FRAME


@pytest.mark.parametrize(("exponent", "counter"), ETLM_TIMES)
def test_decrypt_etlm_matches_spec_vector(exponent: int, counter: int) -> None:
    assert eid.decrypt_etlm(ETLM_IK, exponent, counter, ETLM_FRAME) == ETLM_PLAINTEXT


def test_decrypt_etlm_accepts_the_parsed_frame_object() -> None:
    parsed = frames.parse(ETLM_FRAME)
    assert parsed == EtlmFrame(ciphertext=ETLM_CIPHERTEXT, salt=ETLM_SALT, mic=ETLM_MIC)
    assert isinstance(parsed, EtlmFrame)
    assert eid.decrypt_etlm(ETLM_IK, 0, 0x0001_0000, parsed) == ETLM_PLAINTEXT


def test_etlm_vector_plaintext_is_the_documented_telemetry() -> None:
    # 0 mV, 28.25 degC, 72 PDUs, 11.5 s.
    expected = TlmFrame(battery_mv=0, temperature_c=28.25, adv_count=72, uptime_ds=115)
    assert TlmFrame.from_telemetry(ETLM_PLAINTEXT) == expected
    assert expected.telemetry == ETLM_PLAINTEXT


@pytest.mark.parametrize(
    ("exponent", "counter"),
    [(0, 0x0000_FFFF), (0, 0x0001_0001), (10, 0x0001_0400), (4, 0x0001_0010), (15, 0x0001_8000)],
)
def test_decrypt_etlm_rejects_spec_vector_in_another_period(exponent: int, counter: int) -> None:
    # The oracle confirms that none of these nonces happens to verify the 2-byte MIC.
    assert oracle.decrypt_etlm(ETLM_IK, exponent, counter, ETLM_FRAME) is None
    with pytest.raises(eid.IntegrityError):
        eid.decrypt_etlm(ETLM_IK, exponent, counter, ETLM_FRAME)


# ------------------------------------------------------------ frames, spec sections 2, 3, 4, 5

UID_FRAME = h("00e78b0ca750095477cb3e770000000000010000")
UID_NAMESPACE = h("8b0ca750095477cb3e77")
UID_INSTANCE = h("000000000001")


def test_uid_namespace_is_the_elided_uuid_of_the_spec_example() -> None:
    raw = uuid.UUID("8b0ca750-e7a7-4e14-bd99-095477cb3e77").bytes
    assert raw[:4] + raw[10:] == UID_NAMESPACE  # bytes 5..10 (1-based, inclusive) removed


def test_uid_example_frame_parses_and_encodes() -> None:
    frame = UidFrame(tx_power=-25, namespace=UID_NAMESPACE, instance=UID_INSTANCE)
    assert frames.parse(UID_FRAME) == frame
    assert frames.encode(frame) == UID_FRAME
    assert 3 + len(UID_FRAME) == 0x17


@pytest.mark.parametrize(
    ("url", "encoded"),
    [
        ("https://www.google.com/", "01676f6f676c6500"),
        ("https://goo.gl/S6zT6P", "03676f6f2e676c2f53367a543650"),
        ("http://example.com/?q=10", "026578616d706c65003f713d3130"),
        ("https://google.com.au", "03676f6f676c65072e6175"),
        ("https://www.info.info/", "01696e666f04"),
    ],
)
@pytest.mark.parametrize(("tx_power", "tx_byte"), [(-18, "ee"), (18, "12")])
def test_url_examples_encode_to_spec_bytes_and_parse_back(
    url: str, encoded: str, tx_power: int, tx_byte: str
) -> None:
    data = h("10" + tx_byte + encoded)
    frame = UrlFrame(tx_power=tx_power, url=url)
    assert frames.encode(frame) == data
    assert frames.parse(data) == frame


TLM_EXAMPLE = h("20000bb81780000003e800008ca0")


def test_tlm_example_frame_parses_and_encodes() -> None:
    # 3000 mV, 23.5 degC, 1000 PDUs, 3600.0 s.
    frame = TlmFrame(battery_mv=3000, temperature_c=23.5, adv_count=1000, uptime_ds=36000)
    assert frames.parse(TLM_EXAMPLE) == frame
    assert frames.encode(frame) == TLM_EXAMPLE
    assert 3 + len(TLM_EXAMPLE) == 0x11


@pytest.mark.parametrize(
    ("raw", "celsius"),
    [
        ("1780", 23.5),
        ("ff80", -0.5),
        ("fe00", -2.0),
        ("e6c0", -25.25),
        ("7fff", 32767 / 256),
        ("0001", 1 / 256),
        ("8000", None),
    ],
)
def test_tlm_temperature_decodes_as_signed_8_8(raw: str, celsius: float | None) -> None:
    data = h("20000bb8" + raw + "000003e800008ca0")
    frame = frames.parse(data)
    assert isinstance(frame, TlmFrame)
    assert frame.temperature_c == celsius
    assert frames.encode(frame) == data


def test_tlm_temperature_extremes_match_the_spec_roundings() -> None:
    assert pytest.approx(127.996, abs=5e-4) == 32767 / 256
    assert pytest.approx(0.0039, abs=5e-5) == 1 / 256


EID_ADVERT = h("0201060303aafe0d16aafe30f0a84b34e7d345d960")
EID_SERVICE_DATA = h("30f0a84b34e7d345d960")


def _service_data_after_aafe(advert: bytes) -> bytes:
    """Walk the AD structures (spec section 1) independently of eid."""
    offset = 0
    while offset < len(advert):
        length, ad_type = advert[offset], advert[offset + 1]
        if ad_type == 0x16 and advert[offset + 2 : offset + 4] == b"\xaa\xfe":
            return advert[offset + 4 : offset + 1 + length]
        offset += 1 + length
    msg = "no Eddystone service data"
    raise AssertionError(msg)


def test_eid_advert_example_carries_the_eid_frame() -> None:
    service_data = _service_data_after_aafe(EID_ADVERT)
    assert service_data == EID_SERVICE_DATA
    assert 3 + len(service_data) == 0x0D
    frame = frames.parse(service_data)
    assert frame == EidFrame(tx_power=-16, eid=h("a84b34e7d345d960"))
    assert frames.encode(frame) == EID_SERVICE_DATA


def test_frame_type_low_nibble_example_is_reserved() -> None:
    with pytest.raises(frames.FrameError) as info:
        frames.parse(h("31f0a84b34e7d345d960"))
    assert info.value.reason is FrameErrorReason.RESERVED_BITS


# ------------------------------------------------------------------ unlock token, section 8.4


def test_unlock_token_is_aes_ecb_of_the_challenge_under_the_lock_code() -> None:
    lock_code = h("000102030405060708090a0b0c0d0e0f")
    challenge = h("00112233445566778899aabbccddeeff")
    assert eid.unlock_token(lock_code, challenge) == oracle.unlock_token(lock_code, challenge)
    assert eid.unlock_token(bytes(16), bytes(16)) == oracle.unlock_token(bytes(16), bytes(16))
