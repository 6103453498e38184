"""eid.primitives error paths and single-block AES, against the oracle's pycryptodome AES."""

from __future__ import annotations

from typing import cast

import pytest
from hypothesis import given
from hypothesis import strategies as st

import eid
from eid.primitives import AesBlockCipher, aes_decrypt_block
from tests.eid import oracle

keys = st.binary(min_size=16, max_size=16)
blocks = st.binary(min_size=16, max_size=16)
wrong_blocks = st.binary(max_size=40).filter(lambda b: len(b) != 16)


@given(keys, blocks)
def test_aes_block_cipher_encrypts_like_aes_ecb(key: bytes, block: bytes) -> None:
    assert AesBlockCipher(key).encrypt(block) == oracle.aes_ecb(key, block)


@given(keys, blocks)
def test_aes_decrypt_block_inverts_aes_ecb(key: bytes, block: bytes) -> None:
    assert aes_decrypt_block(key, oracle.aes_ecb(key, block)) == block
    ciphertext = cast("bytes", bytearray(oracle.aes_ecb(key, block)))
    assert aes_decrypt_block(cast("bytes", bytearray(key)), ciphertext) == block


@given(keys, wrong_blocks)
def test_aes_block_cipher_rejects_blocks_that_are_not_16_bytes(key: bytes, block: bytes) -> None:
    with pytest.raises(eid.EidError):
        AesBlockCipher(key).encrypt(block)
    with pytest.raises(eid.EidError):
        aes_decrypt_block(key, block)


@pytest.mark.parametrize("size", [0, 15, 17, 24, 32])
def test_aes_primitives_reject_keys_that_are_not_16_bytes(size: int) -> None:
    key = bytes(range(50, 50 + size))
    for call in (lambda: AesBlockCipher(key), lambda: aes_decrypt_block(key, bytes(16))):
        with pytest.raises(eid.InvalidKeyError) as info:
            call()
        if size:
            assert key.hex() not in str(info.value)


@given(keys)
def test_aes_block_cipher_repr_hides_the_key(key: bytes) -> None:
    text = repr(AesBlockCipher(key, what="lock code"))
    assert key.hex() not in text.lower()
    assert repr(key) not in text
