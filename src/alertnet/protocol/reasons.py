"""Why an input was rejected: the fixed vocabulary of quarantine reasons.

Every decoder in ``alertnet.protocol`` fails with a ``DecodeError`` carrying one ``Reason``, so
the transports can quarantine any bad frame, line or topic with a machine-readable cause.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DecodeError", "Reason"]


class Reason(StrEnum):
    """A quarantine reason; the value is what the quarantine table stores."""

    BAD_LENGTH = "bad_length"
    BAD_VERSION = "bad_version"
    BAD_FLAGS = "bad_flags"
    BAD_FIELD = "bad_field"
    UNKNOWN_EVENT = "unknown_event"
    MALFORMED_JSON = "malformed_json"
    BAD_MIC = "bad_mic"
    UNKNOWN_DEVICE = "unknown_device"
    DISABLED_DEVICE = "disabled_device"
    EUI_MISMATCH = "eui_mismatch"
    REPLAY = "replay"
    BAD_TOPIC = "bad_topic"
    BAD_LINE = "bad_line"
    LINE_TOO_LONG = "line_too_long"
    BAD_HEX = "bad_hex"
    LENGTH_MISMATCH = "length_mismatch"
    MODULE_ERROR = "module_error"


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
