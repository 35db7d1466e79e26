"""DC-09's AES layer (DESIGN §9.1): AES-CBC with a zero IV, 128/192/256-bit keys, pad rules.

Known answers come from FIPS-197 (Appendix C); round trips are checked against pycryptodome,
an AES implementation independent of the ``cryptography`` package alertnet uses.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st

from alertnet.ingest.dc09.frame import crc16, encode_message, open_envelope, parse_frame
from alertnet.protocol import dc09_crypto as crypto

PROPERTY = settings(database=None, deadline=None, max_examples=150)
BLOCK = bytes.fromhex("00112233445566778899aabbccddeeff")
FIPS_197 = [
    (bytes(range(16)), "69c4e0d86a7b0430d8cdb78070b4c55a"),
    (bytes(range(24)), "dda97ca4864cdfe06eaf70a0ec0d7191"),
    (bytes(range(32)), "8ea2b7ca516745bfeafc49904b496089"),
]
STAMP = datetime(2024, 3, 1, 10, 20, 30, tzinfo=UTC)


@pytest.mark.parametrize(("key", "expected"), FIPS_197)
def test_known_answers(key: bytes, expected: str) -> None:
    # One block under CBC with a zero IV is the block cipher itself.
    assert crypto.encrypt(key, BLOCK).hex() == expected
    assert crypto.decrypt(key, bytes.fromhex(expected)) == BLOCK


@pytest.mark.parametrize("size", [16, 24, 32])
def test_round_trip_per_key_size_with_an_independent_aes(size: int) -> None:
    key = random.Random(size).randbytes(size)
    raw = encode_message(
        "SIA-DCS",
        42,
        "1234",
        "#1234|Nri1/BA501",
        ["X030E5000"],
        receiver="0",
        key=key,
        timestamp=STAMP,
    )
    envelope = parse_frame(raw)
    assert envelope.encrypted and envelope.token == "SIA-DCS"
    plaintext = AES.new(key, AES.MODE_CBC, bytes(16)).decrypt(bytes.fromhex(envelope.body))
    pad, _, rest = plaintext.partition(b"|")
    assert rest == b"#1234|Nri1/BA501][X030E5000]_10:20:30,03-01-2024"
    assert 1 <= len(pad) <= 16 and not set(pad) & set(b"|[]")
    message = open_envelope(envelope, key)
    assert (message.data, message.xdata, message.timestamp) == (
        "#1234|Nri1/BA501",
        ("X030E5000",),
        STAMP,
    )
    assert message.pad == pad


def hand_encrypted(key: bytes, plaintext: bytes) -> bytes:
    """A frame encrypted with pycryptodome, bypassing alertnet's encoder."""
    cipher = AES.new(key, AES.MODE_CBC, bytes(16)).encrypt(plaintext).hex().upper()
    span = f'"*ADM-CID"0010R0L0#BEEF[{cipher}'.encode()
    return b"\n%04X%04X%s\r" % (crc16(span), len(span), span)


def test_any_pad_byte_but_the_three_is_accepted() -> None:
    key = bytes(range(16))
    rest = b"#BEEF|1130 01 015]_10:20:30,03-01-2024"
    pad = bytes([0x00, 0xFF, 0x0A, 0x0D, 0x80]) + b"_"
    pad += b"\x01" * (-(len(pad) + 1 + len(rest)) % 16)
    message = open_envelope(parse_frame(hand_encrypted(key, pad + b"|" + rest)), key)
    assert message.data == "#BEEF|1130 01 015" and message.pad == pad


def test_empty_pad_is_accepted() -> None:
    key = bytes(range(16))
    body = b"|#BEEF|1130 01 015][X123456]_10:20:30,03-01-2024"
    assert len(body) % 16 == 0
    message = open_envelope(parse_frame(hand_encrypted(key, body)), key)
    assert (message.pad, message.data, message.xdata) == (b"", "#BEEF|1130 01 015", ("X123456",))


def test_first_bar_ends_the_pad_and_the_data_may_hold_more() -> None:
    assert crypto.strip_pad(b"ab|#1234|Nri1/BA501]") == (b"ab", b"#1234|Nri1/BA501]")


def test_a_bracket_before_the_bar_is_not_pad() -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.strip_pad(b"a]b|data]")
    with pytest.raises(crypto.CryptoError):
        crypto.strip_pad(b"nothing here")
    # Answers only: a receiver that puts no '|' before ']' (pysiaalarm 3.2.2's *ACK).
    assert crypto.strip_pad(b"000]_ts", require_bar=False) == (b"000", b"]_ts")
    with pytest.raises(crypto.CryptoError):
        crypto.strip_pad(b"000]_ts")


@PROPERTY
@given(st.integers(min_value=0, max_value=200), st.integers())
def test_make_pad_rules(rest_len: int, seed: int) -> None:
    pad = crypto.make_pad(rest_len, random.Random(seed))
    assert 1 <= len(pad) <= 16
    assert (len(pad) + 1 + rest_len) % 16 == 0
    assert not set(pad) & set(b"|[]")
    assert set(pad) <= set(crypto.PAD_ALPHABET)


@PROPERTY
@given(st.binary(max_size=80).filter(lambda b: b"|" not in b), st.binary(max_size=16))
def test_add_pad_refuses_bad_pads(rest: bytes, pad: bytes) -> None:
    if set(pad) & set(b"|[]") or (len(pad) + 1 + len(rest)) % 16:
        with pytest.raises(crypto.CryptoError):
            crypto.add_pad(rest, pad)
    else:
        assert crypto.strip_pad(crypto.add_pad(rest, pad)) == (pad, rest)


@pytest.mark.parametrize("digits", [32, 48, 64])
def test_parse_key(digits: int) -> None:
    text = "0123456789abcdef" * 4
    assert crypto.parse_key(text[:digits]) == bytes.fromhex(text[:digits])
    assert crypto.parse_key(text[:digits].upper() + "\n") == bytes.fromhex(text[:digits])


@pytest.mark.parametrize("text", ["", "00" * 8, "00" * 17, "zz" * 16, "0" * 33, "00" * 33])
def test_parse_key_refuses(text: str) -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.parse_key(text)


def test_encrypt_refuses_what_it_cannot_do() -> None:
    with pytest.raises(crypto.CryptoError):
        crypto.encrypt(bytes(15), bytes(16))
    with pytest.raises(crypto.CryptoError):
        crypto.encrypt(bytes(16), bytes(15))
    with pytest.raises(crypto.CryptoError):
        crypto.decrypt(bytes(16), b"")
