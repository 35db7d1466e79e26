"""Device MQTT passwords (DESIGN §14): derived from the key alone, pinned by a test vector."""

from __future__ import annotations

import pytest

from alertnet.broker.accounts import device_account
from alertnet.errors import InvalidInput
from alertnet.protocol import device_mqtt_password

# DESIGN §2.1's test key; the value checked with
# `printf 'alertnet mqtt password' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<key>`.
KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
PASSWORD = "2b08c4d06c938abc0c248ec263485f9c"


def test_the_device_password_is_the_first_32_hex_digits_of_the_hmac() -> None:
    assert device_mqtt_password(KEY) == PASSWORD
    assert device_mqtt_password(bytes(16)) != PASSWORD


def test_a_device_logs_in_as_its_eui_with_its_derived_password() -> None:
    account = device_account("70b3d57ed0001234", KEY)
    assert (account.username, account.password, account.grants) == (
        "70b3d57ed0001234",
        PASSWORD,
        (),
    )
    with pytest.raises(InvalidInput):
        device_account("70B3D57ED0001234", KEY)
