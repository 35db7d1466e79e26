"""Every ORM model of alertnet (DESIGN §3); migrations import ``Base.metadata`` from here."""

from alertnet.models.alerts import Alert, AlertAudit, Event, Offer, Post, Reception
from alertnet.models.audit import RequestAudit
from alertnet.models.base import (
    OPEN_ALERT_STATES,
    AlertCategory,
    AlertState,
    Base,
    DeviceKind,
    DeviceStatus,
    OfferState,
    PostStatus,
    Risk,
    Role,
    Site,
    Transport,
    UTCDateTime,
    utcnow,
)
from alertnet.models.drills import Drill, DrillEvent
from alertnet.models.network import Device, DeviceTestMonth, Gateway, Mahalla
from alertnet.models.people import ApiToken, User
from alertnet.models.records import FeedItem, Quarantine
from alertnet.models.workflow import ActionPlan, AlertAcknowledgement, AlertNote, AlertStepTick

__all__ = [
    "OPEN_ALERT_STATES",
    "ActionPlan",
    "Alert",
    "AlertAcknowledgement",
    "AlertAudit",
    "AlertCategory",
    "AlertNote",
    "AlertState",
    "AlertStepTick",
    "ApiToken",
    "Base",
    "Device",
    "DeviceKind",
    "DeviceStatus",
    "DeviceTestMonth",
    "Drill",
    "DrillEvent",
    "Event",
    "FeedItem",
    "Gateway",
    "Mahalla",
    "Offer",
    "OfferState",
    "Post",
    "PostStatus",
    "Quarantine",
    "Reception",
    "RequestAudit",
    "Risk",
    "Role",
    "Site",
    "Transport",
    "UTCDateTime",
    "User",
    "utcnow",
]
