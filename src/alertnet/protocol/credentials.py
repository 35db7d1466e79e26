"""A device's MQTT password, derived from its key (DESIGN §14), so a flashed key is all it needs.

The broker knows each device as username = its EUI and this password; the firmware, the
simulator and ``alertnet broker config`` all derive it here.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

__all__ = ["MQTT_PASSWORD_HEX_CHARS", "MQTT_PASSWORD_LABEL", "device_mqtt_password"]

MQTT_PASSWORD_LABEL: Final = b"alertnet mqtt password"
MQTT_PASSWORD_HEX_CHARS: Final = 32


def device_mqtt_password(key: bytes) -> str:
    """The first 32 hex digits of HMAC-SHA256(device key, ``b"alertnet mqtt password"``)."""
    digest = hmac.new(key, MQTT_PASSWORD_LABEL, hashlib.sha256).hexdigest()
    return digest[:MQTT_PASSWORD_HEX_CHARS]
