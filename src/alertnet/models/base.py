"""Declarative base, naming convention and column types shared by every table."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import BigInteger, DateTime, Integer, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on SQLite and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


class Risk(StrEnum):
    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


class DeviceKind(StrEnum):
    PANIC_BUTTON = "panic_button"
    INTRUSION_ALARM = "intrusion_alarm"
    FIRE_ALARM = "fire_alarm"
    MEDICAL_BUTTON = "medical_button"
    CAMERA = "camera"  # a Frigate NVR camera (DESIGN §9.3): its events come by camera name


class Site(StrEnum):
    PUBLIC = "public"
    HOUSEHOLD = "household"
    BUSINESS = "business"


class DeviceStatus(StrEnum):
    ACTIVE = "active"
    OFFLINE = "offline"
    DISABLED = "disabled"


class Transport(StrEnum):
    MQTT = "mqtt"
    SERIAL = "serial"
    HTTP = "http"
    DC09 = "dc09"  # an alarm panel over SIA DC-09 (DESIGN §9.1): no downlink but its answer
    # A LoRaWAN device through its network server (ChirpStack, DESIGN §9.2): Class A, it is
    # answered "received" by the ChirpStack adapter and never told later states.
    LORAWAN = "lorawan"
    # Created inside alertnet by a training drill (DESIGN §12): nothing was heard, nothing is
    # sent back.
    DRILL = "drill"
    FRIGATE = "frigate"  # a camera's object event from Frigate NVR (DESIGN §9.3): no downlink


class AlertCategory(StrEnum):
    PANIC = "panic"
    INTRUSION = "intrusion"
    FIRE = "fire"
    MEDICAL = "medical"
    TAMPER = "tamper"
    TROUBLE = "trouble"
    CAMERA = "camera"  # a camera saw someone (DESIGN §9.3): opens in ``verify``


class AlertState(StrEnum):
    VERIFY = "verify"  # a camera alert a dispatcher must confirm before any post sees it
    NEW = "new"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    ON_SCENE = "on_scene"
    ESCALATED = "escalated"
    CLOSED = "closed"
    CANCELLED = "cancelled"


OPEN_ALERT_STATES = (
    AlertState.VERIFY,
    AlertState.NEW,
    AlertState.OFFERED,
    AlertState.ACCEPTED,
    AlertState.ON_SCENE,
    AlertState.ESCALATED,
)


class OfferState(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


class PostStatus(StrEnum):
    OFF_DUTY = "off_duty"
    AVAILABLE = "available"
    BUSY = "busy"


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    POST = "post"
    OBSERVER = "observer"
