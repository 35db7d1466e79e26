"""Why an input was rejected: the fixed vocabulary of quarantine reasons.

Every decoder in ``alertnet.protocol`` fails with a ``DecodeError`` carrying one ``Reason``, so
the transports can quarantine any bad frame, line or topic with a machine-readable cause.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DecodeError", "Reason"]


class Reason(StrEnum):
    """A quarantine reason; the value is what the quarantine table stores."""

    BAD_LENGTH = "bad_length"  # a frame of the wrong size (or an absurdly large payload)
    BAD_VERSION = "bad_version"  # version byte / "v" is not protocol v1
    BAD_FLAGS = "bad_flags"  # flag bits other than retransmission and drill
    BAD_FIELD = "bad_field"  # a field of the wrong type or out of range
    UNKNOWN_EVENT = "unknown_event"  # an event code or name not in the table
    MALFORMED_JSON = "malformed_json"  # not UTF-8 JSON, not an object, or keys missing
    BAD_MIC = "bad_mic"  # the MIC does not match the device key
    UNKNOWN_DEVICE = "unknown_device"
    DISABLED_DEVICE = "disabled_device"
    EUI_MISMATCH = "eui_mismatch"  # the topic's EUI is not the frame's
    REPLAY = "replay"  # a counter below the anti-replay window
    BAD_TOPIC = "bad_topic"
    BAD_LINE = "bad_line"  # a serial line not understood
    LINE_TOO_LONG = "line_too_long"  # a serial line over MAX_LINE_BYTES
    BAD_HEX = "bad_hex"  # frame data that is not even-length hex
    LENGTH_MISMATCH = "length_mismatch"  # a +RCV length field that is not the data's length
    MODULE_ERROR = "module_error"  # an unsolicited +ERR=<n> from the LoRa module
    # SIA DC-09 alarm panels (DESIGN §9.1; alertnet.ingest.dc09).
    BAD_CRC = "bad_crc"  # the frame's CRC-16/ARC is not that of its bytes (no answer)
    BAD_FRAME = "bad_frame"  # CRC and length right, the rest not as §9.1 frames it
    UNSUPPORTED_TOKEN = "unsupported_token"  # a message type alertnet does not take (DUH)
    UNKNOWN_ACCOUNT = "unknown_account"  # no device has this DC-09 account (DUH)
    BAD_TIMESTAMP = "bad_timestamp"  # an encrypted message outside -40/+20 s, or none (NAK)
    DECRYPT_FAILED = "decrypt_failed"  # no key, the wrong key, or a key changed meanwhile
    ENCRYPTION_REQUIRED = "encryption_required"  # plain text for an account that has a key
    # Not a decoding verdict: input that made the ingest transaction fail repeatedly.
    PROCESSING_ERROR = "processing_error"


class DecodeError(ValueError):
    """An input that cannot be accepted, with the reason to quarantine it under."""

    reason: Reason
    detail: str

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"

    def __repr__(self) -> str:
        return f"DecodeError({self.reason.value!r}, {self.detail!r})"
