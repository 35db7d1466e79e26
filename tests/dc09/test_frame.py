"""The DC-09 frame (DESIGN §9.1) against frames written out by hand from the standard's text.

The literal frames below were typed from §9.1's grammar and examples; their CRC and length
fields were computed with a bit-by-bit CRC-16/ARC (``crc_by_bits`` here) and with pysiaalarm's
own implementation, never with the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from Crypto.Cipher import AES
from hypothesis import given, settings
from hypothesis import strategies as st
from pysiaalarm.event import BaseEvent

from alertnet.ingest.dc09 import frame
from alertnet.ingest.dc09.frame import (
    Envelope,
    FrameError,
    Message,
    ack,
    crc16,
    duh,
    encode_message,
    nak,
    open_envelope,
    parse_answer,
    parse_frame,
    timestamp_ok,
)

SIA_ALARM = b'\n05520028"SIA-DCS"0001R0L0#1234[#1234|Nri1/BA501]\r'
CID_ALARM = b'\n9F500029"ADM-CID"0002R0L0#1234[#1234|1130 01 015]\r'
NULL_TEST = b'\n28330015"NULL"0000R0L0#1234[]\r'
STAMPED = b'\nFB3B003A"SIA-DCS"0003L0#1234[#1234|Nri1/BA501]_12:34:56,01-14-2013\r'
WITH_XDATA = (
    b'\n0CB20056"ADM-CID"0004R1L1#ABC123[#ABC123|1130 01 015][X030E5000][Y51N3000]'
    b"_01:02:03,12-31-2024\r"
)
UNSUPPORTED = b'\n468D0028"SIA-DCX"0005R0L0#1234[#1234|Nri1/BA501]\r'
ACK_0001 = b'\nDBE70014"ACK"0001R0L0#1234[]\r'
DUH_0001 = b'\nAB3F0014"DUH"0001R0L0#1234[]\r'
NAK_AT = b'\nBAE80025"NAK"0000R0L0A0[]_12:34:56,01-14-2013\r'
NAK_TIME = datetime(2013, 1, 14, 12, 34, 56, tzinfo=UTC)


def crc_by_bits(data: bytes) -> int:
    """CRC-16/ARC the slow way: reflected 0x8005, init 0, no final XOR."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def test_crc_check_value() -> None:
    assert crc16(b"123456789") == 0xBB3D
    assert crc_by_bits(b"123456789") == 0xBB3D
    assert crc16(b"") == 0


@settings(database=None, deadline=None, max_examples=200)
@given(st.binary(max_size=300))
def test_crc_agrees_with_two_independent_implementations(data: bytes) -> None:
    assert crc16(data) == crc_by_bits(data)
    text = data.decode("latin-1")
    if text.isascii():
        assert f"{crc16(data):04X}" == BaseEvent._crc_calc(text)


@pytest.mark.parametrize(
    "raw", [SIA_ALARM, CID_ALARM, NULL_TEST, STAMPED, WITH_XDATA, UNSUPPORTED, ACK_0001, NAK_AT]
)
def test_literal_frames_carry_right_crc_and_length(raw: bytes) -> None:
    span = raw[9:-1]
    assert int(raw[5:9], 16) == len(span)
    assert int(raw[1:5], 16) == crc_by_bits(span)


def test_sia_dcs_example() -> None:
    envelope = parse_frame(SIA_ALARM)
    assert envelope == Envelope(
        token="SIA-DCS",
        encrypted=False,
        seq="0001",
        receiver="0",
        line="0",
        account="1234",
        body="#1234|Nri1/BA501]",
        raw=SIA_ALARM,
    )
    assert envelope.supported
    assert open_envelope(envelope, None) == Message("#1234|Nri1/BA501")


def test_contact_id_example() -> None:
    envelope = parse_frame(CID_ALARM)
    assert (envelope.token, envelope.seq, envelope.account) == ("ADM-CID", "0002", "1234")
    assert open_envelope(envelope, None).data == "#1234|1130 01 015"


def test_null_link_test() -> None:
    envelope = parse_frame(NULL_TEST)
    assert envelope.token == "NULL" and envelope.seq == "0000"
    assert open_envelope(envelope, None) == Message("")


def test_without_receiver_and_with_timestamp() -> None:
    envelope = parse_frame(STAMPED)
    assert envelope.receiver is None and envelope.line == "0"
    message = open_envelope(envelope, None)
    assert message.timestamp == datetime(2013, 1, 14, 12, 34, 56, tzinfo=UTC)


def test_extended_data_blocks() -> None:
    envelope = parse_frame(WITH_XDATA)
    assert (envelope.receiver, envelope.line, envelope.account) == ("1", "1", "ABC123")
    message = open_envelope(envelope, None)
    assert message.data == "#ABC123|1130 01 015"
    assert message.xdata == ("X030E5000", "Y51N3000")
    assert message.timestamp == datetime(2024, 12, 31, 1, 2, 3, tzinfo=UTC)


def test_delimiters_are_optional_for_the_parser() -> None:
    assert parse_frame(SIA_ALARM[1:-1]).seq == "0001"
    assert parse_frame(SIA_ALARM.replace(b"0CB2", b"0cb2")).seq == "0001"
    assert parse_frame(WITH_XDATA.replace(b"0CB2", b"0cb2")).seq == "0004"  # lowercase hex


def test_unknown_token_parses_and_is_unsupported() -> None:
    envelope = parse_frame(UNSUPPORTED)
    assert envelope.token == "SIA-DCX"
    assert not envelope.supported


def reason(raw: bytes) -> str:
    with pytest.raises(FrameError) as info:
        parse_frame(raw)
    return info.value.reason


def test_bad_crc() -> None:
    assert reason(SIA_ALARM.replace(b"BA501", b"BA502")) == "bad_crc"
    assert reason(b"\n0553" + SIA_ALARM[5:]) == "bad_crc"


def test_bad_length() -> None:
    assert reason(b"\n05520029" + SIA_ALARM[9:]) == "bad_length"
    assert reason(SIA_ALARM[:-5] + b"\r") == "bad_length"  # cut short in transit
    assert reason(SIA_ALARM[:-1] + b"X\r") == "bad_length"


@pytest.mark.parametrize(
    "span",
    [
        '"SIA-DCS"001R0L0#1234[#1234|Nri1/BA501]',  # three-digit sequence
        '"SIA-DCS"0001R0#1234[#1234|Nri1/BA501]',  # no L
        '"SIA-DCS"0001R0L0#12[#12|Nri1/BA501]',  # account too short
        '"SIA-DCS"0001R0L0#1234[#1234|Nri1/BA501',  # no ]
        '"SIA-DCS"0001R0L0#1234[#1234|Nri1/BA501]_25:00:00,01-01-2024',  # no such hour
        '"SIA-DCS"0001R0L0#1234[#1234|Nri1/BA501]_12:00',  # half a timestamp
        '"SIA-DCS"0001R0L0#1234[#1234|Nri1/BA501][]',  # empty x-data block
        '"*SIA-DCS"0001R0L0#1234[0123456789ABCDEF]',  # not whole AES blocks
        '"*SIA-DCS"0001R0L0#1234[#1234|Nri1/BA501]',  # encrypted flag, plain body
        "SIA-DCS0001R0L0#1234[]",  # no quotes
    ],
)
def test_malformed(span: str) -> None:
    body = span.encode()
    raw = b"\n%04X%04X%s\r" % (crc_by_bits(body), len(body), body)
    assert reason(raw) == "malformed"


def test_non_ascii_and_missing_fields() -> None:
    body = '"SIA-DCS"0001R0L0#1234[#1234|Nri1/BA501é]'.encode()
    assert reason(b"\n%04X%04X%s\r" % (crc_by_bits(body), len(body), body)) == "malformed"
    assert reason(b"\n") == "malformed"
    assert reason(b"\nZZZZ0000\r") == "malformed"


# -- answers ------------------------------------------------------------------------------------


def test_ack_duh_nak_exactly() -> None:
    envelope = parse_frame(SIA_ALARM)
    assert ack(envelope) == ACK_0001
    assert duh(envelope) == DUH_0001
    assert nak(NAK_TIME) == NAK_AT


def test_ack_echoes_what_came() -> None:
    envelope = parse_frame(WITH_XDATA)
    expected = b'"ACK"0004R1L1#ABC123[]'
    assert ack(envelope) == b"\n%04X%04X%s\r" % (
        crc_by_bits(expected),
        len(expected),
        expected,
    )
    assert parse_frame(STAMPED).seq == "0003"
    assert b'"ACK"0003L0#1234[]' in ack(parse_frame(STAMPED))


def test_encrypted_ack_carries_encrypted_timestamp() -> None:
    key = bytes(range(16))
    message = encode_message("SIA-DCS", 7, "1234", "#1234|Nri1/BA501", receiver="0", key=key)
    envelope = parse_frame(message)
    now = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    answer = ack(envelope, key, now)
    span = answer[9:-1]
    assert answer.startswith(b"\n") and answer.endswith(b"\r")
    assert int(answer[1:5], 16) == crc_by_bits(span) and int(answer[5:9], 16) == len(span)
    head, _, cipher_hex = span.partition(b"[")
    assert head == b'"*ACK"0007R0L0#1234'
    plaintext = AES.new(key, AES.MODE_CBC, bytes(16)).decrypt(bytes.fromhex(cipher_hex.decode()))
    pad, bar, rest = plaintext.partition(b"|")
    assert bar and rest == b"]_07:08:09,05-06-2024"
    assert not set(pad) & set(b"|[]") and len(plaintext) % 16 == 0
    with pytest.raises(ValueError):
        ack(envelope)  # an encrypted message cannot be acknowledged in the clear


def test_panel_reads_every_answer() -> None:
    assert parse_answer(ACK_0001).kind == "ACK"
    assert parse_answer(ACK_0001).seq == "0001"
    assert parse_answer(DUH_0001).kind == "DUH"
    read = parse_answer(NAK_AT)
    assert (read.kind, read.seq, read.timestamp) == ("NAK", "0000", NAK_TIME)
    assert (read.receiver, read.line, read.account) == ("0", "0", None)
    key = bytes(range(32))
    envelope = parse_frame(encode_message("ADM-CID", 12, "1234", "#1234|1130 01 015", key=key))
    star = parse_answer(ack(envelope, key, NAK_TIME), key)
    assert (star.kind, star.encrypted, star.seq, star.timestamp) == ("ACK", True, "0012", NAK_TIME)
    with pytest.raises(FrameError) as info:
        parse_answer(ACK_0001.replace(b"0001", b"0002"))
    assert info.value.reason == "bad_crc"


# -- timestamps and encoding --------------------------------------------------------------------


def test_timestamp_window() -> None:
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert timestamp_ok(now, now)
    assert timestamp_ok(now - timedelta(seconds=40), now)
    assert not timestamp_ok(now - timedelta(seconds=41), now)
    assert timestamp_ok(now + timedelta(seconds=20), now)
    assert not timestamp_ok(now + timedelta(seconds=21), now)


def test_encoder_matches_the_literal_frames() -> None:
    assert encode_message("SIA-DCS", 1, "1234", "#1234|Nri1/BA501", receiver="0") == SIA_ALARM
    assert encode_message("NULL", 0, "1234", "", receiver="0") == NULL_TEST
    stamp = datetime(2013, 1, 14, 12, 34, 56, tzinfo=UTC)
    assert encode_message("SIA-DCS", "0003", "1234", "#1234|Nri1/BA501", timestamp=stamp) == STAMPED
    assert (
        encode_message(
            "ADM-CID",
            4,
            "ABC123",
            "#ABC123|1130 01 015",
            ["X030E5000", "Y51N3000"],
            receiver="1",
            line="1",
            timestamp=datetime(2024, 12, 31, 1, 2, 3, tzinfo=UTC),
        )
        == WITH_XDATA
    )


def test_sequence_bounds() -> None:
    assert parse_frame(encode_message("NULL", 9999, "123", "")).seq == "9999"
    for bad in (-1, 10000):
        with pytest.raises(ValueError):
            encode_message("NULL", bad, "123", "")
    with pytest.raises(ValueError):
        encode_message("SIA-DCS", 1, "12", "x")  # account too short to be valid


def test_encrypted_open_errors() -> None:
    key = bytes(range(16))
    envelope = parse_frame(encode_message("SIA-DCS", 1, "1234", "#1234|Nri1/BA501", key=key))
    wrong_keys = ((None, "no_key"), (bytes(16), "decrypt_failed"), (b"short", "decrypt_failed"))
    for wrong, why in wrong_keys:
        with pytest.raises(FrameError) as info:
            open_envelope(envelope, wrong)
        assert info.value.reason == why
    # A valid body without the required timestamp, encrypted by hand.
    plaintext = b"abcdefghijklmno|#1234|Nri1/BA501]"
    plaintext = b"x" * (-len(plaintext) % 16) + plaintext
    cipher = AES.new(key, AES.MODE_CBC, bytes(16)).encrypt(plaintext).hex().upper()
    span = f'"*SIA-DCS"0001L0#1234[{cipher}'.encode()
    raw = b"\n%04X%04X%s\r" % (crc_by_bits(span), len(span), span)
    with pytest.raises(FrameError) as info:
        open_envelope(parse_frame(raw), key)
    assert info.value.reason == "bad_timestamp"


def test_reasons_are_the_documented_ones() -> None:
    assert {"bad_crc", "bad_length", "malformed", "decrypt_failed"} <= frame.REASONS
