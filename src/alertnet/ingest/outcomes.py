"""What goes into the ingest pipeline and what comes out: an uplink as a transport received it,
and what became of it once its batch committed. Transports import these through ``pipeline``.

No value a client sends may fail a batch or its quarantine fallback (DESIGN §14). ``RawUplink``
makes every value it carries storable as it is built: text without NUL or lone surrogates, cut
to its column; RSSI and SNR out of any radio's range become unknown. ``quarantine_row`` cuts
every stored value to its column and keeps the first ``QUARANTINE_RAW_BYTES`` of the raw input
with the input's full length and SHA-256.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, TypeVar, cast

from sqlalchemy import String, Table

from alertnet.models import Quarantine, Reception, Transport, utcnow
from alertnet.protocol import AckState, Downlink, Reason, Uplink, WireFormat

_QUARANTINE = cast(Table, Quarantine.__table__)


def _column_chars(table: Table, column: str) -> int:
    column_type = table.c[column].type
    assert isinstance(column_type, String) and column_type.length is not None
    return column_type.length


#: Raw bytes kept per quarantined input; the rest is known by its length and SHA-256.
QUARANTINE_RAW_BYTES: Final = 1024
#: Longest reason detail kept in quarantine.
QUARANTINE_DETAIL_CHARS: Final = 2000
GATEWAY_ID_CHARS: Final = min(
    _column_chars(cast(Table, Reception.__table__), "gateway_id"),
    _column_chars(_QUARANTINE, "gateway_id"),
)
SOURCE_CHARS: Final = _column_chars(_QUARANTINE, "source")
EUI_CHARS: Final = _column_chars(_QUARANTINE, "device_eui")
# Wider than any radio reports, narrower than the INTEGER/REAL columns that store them.
RSSI_RANGE: Final = (-200, 50)
SNR_RANGE: Final = (-100.0, 100.0)
_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
Number = TypeVar("Number", int, float)


def storable_text(value: str, max_chars: int) -> str:
    """``value`` as any text column can hold it: no NUL, no lone surrogate, ``max_chars`` long.

    PostgreSQL refuses NUL in text and a lone surrogate cannot be encoded at all: either would
    fail the statement that carries it, with everything else in its transaction.
    """
    if value.isprintable() and len(value) <= max_chars:
        return value
    cleaned = _LONE_SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    return cleaned[:max_chars]


def _radio_value(value: Number | None, bounds: tuple[Number, Number]) -> Number | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    low, high = bounds
    return value if low <= value <= high else None


class Disposition(StrEnum):
    NEW = "new"
    DUPLICATE = "duplicate"
    HEARTBEAT = "heartbeat"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class RawUplink:
    """One copy of an uplink as a transport received it."""

    payload: bytes
    transport: Transport
    received_at: datetime = field(default_factory=utcnow)
    topic_eui: str | None = None  # the EUI an MQTT up topic names; must equal the frame's
    gateway_id: str | None = None
    rssi: int | None = None
    snr: float | None = None
    source: str = ""  # topic, port or client address, kept with quarantined input

    def __post_init__(self) -> None:
        gateway_id = self.gateway_id
        if gateway_id is not None:
            gateway_id = storable_text(gateway_id, GATEWAY_ID_CHARS) or None
        object.__setattr__(self, "gateway_id", gateway_id)
        object.__setattr__(self, "source", storable_text(self.source, SOURCE_CHARS))
        object.__setattr__(self, "rssi", _radio_value(self.rssi, RSSI_RANGE))
        object.__setattr__(self, "snr", _radio_value(self.snr, SNR_RANGE))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one uplink, known only after its batch committed."""

    disposition: Disposition
    wire_format: WireFormat = WireFormat.BINARY
    uplink: Uplink | None = None
    reason: Reason | None = None
    detail: str = ""
    device_key: bytes | None = None  # set for accepted uplinks: signs the ack on demand
    alert_id: int | None = None
    # Source events (``ingest.sources``): the event this copy is, and the key it is stored under.
    event_id: int | None = None
    dedup_key: str | None = None

    @property
    def accepted(self) -> bool:
        return self.disposition is not Disposition.QUARANTINED

    @property
    def downlink(self) -> Downlink | None:
        """The signed "received" ack; built only when a transport sends it (not per heartbeat)."""
        if self.device_key is None or self.uplink is None:
            return None
        return Downlink.build(
            self.device_key, self.uplink.eui, self.uplink.counter, AckState.RECEIVED
        )

    def ack_bytes(self) -> bytes | None:
        """The downlink in the sender's own format (binary or JSON)."""
        downlink = self.downlink
        return downlink.encode(self.wire_format) if downlink else None


@dataclass(slots=True)
class BatchResult:
    """What a committed batch changed that others must react to."""

    outcomes: list[Outcome]
    opened_alert_ids: list[int] = field(default_factory=list)


def quarantine_row(raw: RawUplink, reason: Reason, detail: str, eui: str | None) -> dict[str, Any]:
    """The ``quarantine`` row that keeps rejected input for inspection; every value fits."""
    return {
        "received_at": raw.received_at,
        "transport": raw.transport.value,
        "source": storable_text(raw.source, SOURCE_CHARS),
        "gateway_id": storable_text(raw.gateway_id, GATEWAY_ID_CHARS) if raw.gateway_id else None,
        "device_eui": storable_text(eui, EUI_CHARS) if eui else None,
        "reason": reason.value,
        "detail": storable_text(detail, QUARANTINE_DETAIL_CHARS),
        **raw_evidence(raw.payload),
    }


def raw_evidence(payload: bytes) -> dict[str, Any]:
    """The ``raw``, ``raw_length`` and ``raw_sha256`` of a quarantine row for ``payload``."""
    return {
        "raw": bytes(payload[:QUARANTINE_RAW_BYTES]),
        "raw_length": len(payload),
        "raw_sha256": hashlib.sha256(payload).hexdigest(),
    }
