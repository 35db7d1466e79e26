"""CAP 1.2 out (DESIGN §9.4): each alert as an OASIS Common Alerting Protocol message, and an
Atom feed of the caller's recent alerts, both in the caller's scope.

**Messages and their numbers.** An alert's CAP messages follow what a recipient must act on,
its *phase*: awaiting verification (a camera's ``verify``), open (``new``, ``offered``,
``escalated``: police are being sent), help on the way (``accepted``), on scene, closed,
cancelled. Message 1 is the alert as opened; each later change of phase is one more message.
They are derived from the alert's audit trail, which records every transition (DESIGN §3), so
``n`` and each message's ``sent`` are the same on every read, on every process, with no table
of their own: a re-offer or an audited note does not change the phase and makes no message.
The document served is the latest message: ``Alert`` for n = 1, ``Cancel`` for a cancelled or
dismissed alert, ``Update`` otherwise; Update and Cancel reference message 1.

**What a caller sees.** The one ``Scope`` decides: which alerts (``scope.alerts()``), and how a
device is shown (``scope.shown_device``: an observer gets no name and 3-decimal coordinates for
a household's or a business's device). No owner, address, notes or call list ever enters a
CAP document, whoever asks; trouble alerts (never sent to police) have none.

**Format.** ``sent`` is ``YYYY-MM-DDThh:mm:ss±hh:mm`` in ``ALERTNET_TIMEZONE`` without a fraction,
a zero offset written ``-00:00`` as CAP requires; identifiers are ``alertnet-<id>-<n>`` and the
sender is ``ALERTNET_CAP_SENDER`` (validated by ``Settings``). Text is stripped of characters
XML 1.0 cannot carry.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.auth.scope import Scope
from alertnet.errors import NotFound
from alertnet.models import OPEN_ALERT_STATES, Alert, AlertAudit, Device, Mahalla

__all__ = [
    "ATOM_MEDIA_TYPE",
    "ATOM_NAMESPACE",
    "CAP_MEDIA_TYPE",
    "CAP_NAMESPACE",
    "CapMessage",
    "Phase",
    "alert_cap",
    "cap_feed",
    "cap_messages",
    "cap_time",
]

CAP_NAMESPACE: Final = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NAMESPACE: Final = "http://www.w3.org/2005/Atom"
CAP_MEDIA_TYPE: Final = "application/cap+xml"
ATOM_MEDIA_TYPE: Final = "application/atom+xml"
#: The feed holds the alerts opened or ended in this window, and every alert still open.
FEED_WINDOW: Final = timedelta(hours=24)
FEED_LIMIT: Final = 500
#: The circle drawn around an alert's position, km (about the precision observers get).
CIRCLE_RADIUS_KM: Final = "0.1"
RESTRICTION: Final = (
    "For the police and the mahalla teams of the alertnet network only; do not redistribute."
)
SILENT_INSTRUCTION: Final = "SILENT ALARM: do not call the site; approach without siren."
DRILL_NOTE: Final = "Drill (training): not a real emergency."
#: Categories that are police business; trouble alerts are not published.
_CATEGORY: Final = {
    "panic": "Security",
    "intrusion": "Security",
    "camera": "Security",
    "tamper": "Security",
    "fire": "Fire",
    "medical": "Health",
}
_SEVERITY: Final = {
    "panic": "Severe",
    "fire": "Severe",
    "medical": "Severe",
    "intrusion": "Moderate",
    "camera": "Moderate",
    "tamper": "Minor",
}
_EVENT: Final = {
    "panic": "Panic alarm",
    "intrusion": "Intrusion alarm",
    "camera": "Intruder seen by a camera",
    "tamper": "Tamper alarm",
    "fire": "Fire alarm",
    "medical": "Medical emergency",
}


class Phase(StrEnum):
    """What a recipient must know of an alert; a new phase is a new CAP message."""

    VERIFY = "verify"
    OPEN = "open"
    ACCEPTED = "accepted"
    ON_SCENE = "on_scene"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @classmethod
    def of(cls, state: str) -> Phase:
        """The phase of an alert state (``new``, ``offered`` and ``escalated`` are open)."""
        if state in ("new", "offered", "escalated"):
            return cls.OPEN
        return cls(state)

    @property
    def ended(self) -> bool:
        return self in (Phase.CLOSED, Phase.CANCELLED)


_PHASE_TEXT: Final = {
    Phase.VERIFY: "Awaiting verification by a dispatcher.",
    Phase.OPEN: "A police post is being sent.",
    Phase.ACCEPTED: "A police post is on its way.",
    Phase.ON_SCENE: "A police post is on scene.",
    Phase.CLOSED: "Closed.",
    Phase.CANCELLED: "Cancelled.",
}


@dataclass(frozen=True, slots=True)
class CapMessage:
    """One CAP message of an alert: its number (1 = the first) and when it was sent."""

    number: int
    phase: Phase
    sent: datetime


def cap_messages(
    state: str, opened_at: datetime, transitions: Sequence[tuple[datetime, str | None, str]]
) -> list[CapMessage]:
    """An alert's CAP messages from its audit trail ``(at, from_state, to_state)``, in order.

    The first phase is that of the opening; each transition into another phase is a message.
    Should the trail miss the alert's current state, a last message closes the gap at the
    time of the last one, so that the current document always tells the current phase.
    """
    if transitions:
        _at, from_state, to_state = transitions[0]
        first = Phase.of(from_state if from_state is not None else to_state)
    else:
        first = Phase.of(state)
    messages = [CapMessage(1, first, opened_at)]
    for at, _from_state, to_state in transitions:
        phase = Phase.of(to_state)
        if phase is not messages[-1].phase:
            messages.append(CapMessage(len(messages) + 1, phase, max(at, messages[-1].sent)))
    current = Phase.of(state)
    if current is not messages[-1].phase:
        messages.append(CapMessage(len(messages) + 1, current, messages[-1].sent))
    return messages


def cap_time(moment: datetime, zone: ZoneInfo) -> str:
    """``YYYY-MM-DDThh:mm:ss±hh:mm`` in ``zone``, no fraction; a zero offset is ``-00:00``."""
    local = moment.astimezone(zone).replace(microsecond=0)
    offset = local.utcoffset() or timedelta(0)
    minutes = round(offset.total_seconds() / 60)
    if minutes == 0:
        suffix = "-00:00"
    else:
        sign = "+" if minutes > 0 else "-"
        suffix = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return local.strftime("%Y-%m-%dT%H:%M:%S") + suffix


def _atom_time(moment: datetime, zone: ZoneInfo) -> str:
    """RFC 3339, as Atom wants it, in ``zone``."""
    return moment.astimezone(zone).isoformat(timespec="seconds")


def _coordinate(value: float) -> str:
    """A decimal degree without exponent or trailing zeros (at most 6 decimals: ~0.1 m)."""
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _xml_text(value: str) -> str:
    """``value`` without the characters XML 1.0 cannot hold (controls, lone surrogates)."""
    return "".join(
        char
        for char in value
        if char in "\t\n\r"
        or ("\x20" <= char <= "\ud7ff")
        or ("\ue000" <= char <= "\ufffd")
        or char >= "\U00010000"
    )


# -- loading ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    """What a CAP document of one alert is made of, read in one go."""

    alert_id: int
    category: str
    state: str
    drill: bool
    silent: bool
    outcome: str | None
    press_count: int
    lat: float
    lon: float
    opened_at: datetime
    site: str
    device_name: str
    mahalla: str | None
    messages: tuple[CapMessage, ...]


async def _sources(session: AsyncSession, alert_ids: Sequence[int]) -> dict[int, _Source]:
    if not alert_ids:
        return {}
    trails: dict[int, list[tuple[datetime, str | None, str]]] = {}
    for audit in await session.execute(
        select(AlertAudit.alert_id, AlertAudit.at, AlertAudit.from_state, AlertAudit.to_state)
        .where(AlertAudit.alert_id.in_(alert_ids))
        .order_by(AlertAudit.id)
    ):
        trails.setdefault(audit.alert_id, []).append((audit.at, audit.from_state, audit.to_state))
    rows = await session.execute(
        select(Alert, Device.site, Device.name, Mahalla.name.label("mahalla"))
        .join(Device, Device.id == Alert.device_id)
        .outerjoin(Mahalla, Mahalla.id == Alert.mahalla_id)
        .where(Alert.id.in_(alert_ids))
    )
    sources: dict[int, _Source] = {}
    for alert, site, device_name, mahalla in rows:
        messages = cap_messages(alert.state, alert.opened_at, trails.get(alert.id, []))
        sources[alert.id] = _Source(
            alert_id=alert.id,
            category=alert.category,
            state=alert.state,
            drill=alert.drill,
            silent=alert.silent,
            outcome=alert.outcome,
            press_count=alert.press_count,
            lat=alert.lat,
            lon=alert.lon,
            opened_at=alert.opened_at,
            site=site,
            device_name=device_name,
            mahalla=mahalla,
            messages=tuple(messages),
        )
    return sources


# -- the CAP document -----------------------------------------------------------------------------


def _identifier(alert_id: int, number: int) -> str:
    return f"alertnet-{alert_id}-{number}"


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, f"{{{CAP_NAMESPACE}}}{tag}")
    if text is not None:
        element.text = _xml_text(text)
    return element


def _cap_element(source: _Source, scope: Scope, sender: str, zone: ZoneInfo) -> ET.Element:
    latest = source.messages[-1]
    first = source.messages[0]
    category = source.category
    event = _EVENT[category]
    name, lat, lon = scope.shown_device(
        site=source.site, name=source.device_name, lat=source.lat, lon=source.lon
    )
    area = source.mahalla or "No mahalla"
    if latest.number == 1:
        msg_type = "Alert"
    elif latest.phase is Phase.CANCELLED:
        msg_type = "Cancel"
    else:
        msg_type = "Update"
    confirmed = any(m.phase not in (Phase.VERIFY, Phase.CANCELLED) for m in source.messages)
    alert = ET.Element(f"{{{CAP_NAMESPACE}}}alert")
    _sub(alert, "identifier", _identifier(source.alert_id, latest.number))
    _sub(alert, "sender", sender)
    _sub(alert, "sent", cap_time(latest.sent, zone))
    _sub(alert, "status", "Exercise" if source.drill else "Actual")
    _sub(alert, "msgType", msg_type)
    _sub(alert, "scope", "Restricted")
    _sub(alert, "restriction", RESTRICTION)
    if source.drill:
        _sub(alert, "note", DRILL_NOTE)
    if latest.number > 1:
        references = f"{sender},{_identifier(source.alert_id, 1)},{cap_time(first.sent, zone)}"
        _sub(alert, "references", references)
    info = _sub(alert, "info")
    _sub(info, "language", "en-US")
    _sub(info, "category", _CATEGORY[category])
    _sub(info, "event", event)
    if latest.phase is Phase.CLOSED:
        _sub(info, "responseType", "AllClear")
    _sub(info, "urgency", "Past" if latest.phase.ended else "Immediate")
    _sub(info, "severity", _SEVERITY[category])
    _sub(info, "certainty", "Likely" if category == "camera" and not confirmed else "Observed")
    _sub(info, "onset", cap_time(source.opened_at, zone))
    _sub(info, "senderName", "alertnet")
    _sub(info, "headline", f"{event}: {name or area}")
    described = f"{event} in {area}"
    if name:
        described += f" ({name})"
    if source.press_count > 1:
        described += f", pressed {source.press_count} times"
    description = f"{described}. {_PHASE_TEXT[latest.phase]}"
    if latest.phase is Phase.CLOSED and source.outcome:
        description += f" Outcome: {source.outcome}."
    _sub(info, "description", description)
    if source.silent and not latest.phase.ended:
        _sub(info, "instruction", SILENT_INSTRUCTION)
    for value_name, value in (
        ("alertnetAlertId", str(source.alert_id)),
        ("alertnetState", source.state),
    ):
        parameter = _sub(info, "parameter")
        _sub(parameter, "valueName", value_name)
        _sub(parameter, "value", value)
    area_element = _sub(info, "area")
    _sub(area_element, "areaDesc", area)
    _sub(area_element, "circle", f"{_coordinate(lat)},{_coordinate(lon)} {CIRCLE_RADIUS_KM}")
    return alert


def _cap_document(root: ET.Element) -> bytes:
    document: bytes = ET.tostring(
        root, encoding="utf-8", xml_declaration=True, default_namespace=CAP_NAMESPACE
    )
    return document


async def alert_cap(
    session: AsyncSession, scope: Scope, alert_id: int, *, sender: str, zone: ZoneInfo
) -> bytes:
    """The latest CAP message of alert ``alert_id`` as the caller may read it.

    NotFound for an alert that does not exist or is a trouble (no CAP message), Forbidden
    for one outside the caller's scope.
    """
    category = await session.scalar(select(Alert.category).where(Alert.id == alert_id))
    if category is None:
        raise NotFound(f"no alert {alert_id}")
    await scope.ensure_sees_alert(session, alert_id)
    if category not in _CATEGORY:
        raise NotFound(f"alert {alert_id} is a {category} alert: it has no CAP message")
    source = (await _sources(session, [alert_id]))[alert_id]
    return _cap_document(_cap_element(source, scope, sender, zone))


# -- the Atom feed ------------------------------------------------------------------------------


def _atom(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    # Unqualified names under a root declaring the Atom namespace as the default: ElementTree
    # cannot serialize a default namespace together with (unqualified) attributes.
    element = ET.SubElement(parent, tag, attributes)
    if text is not None:
        element.text = _xml_text(text)
    return element


async def cap_feed(
    session: AsyncSession,
    scope: Scope,
    *,
    sender: str,
    zone: ZoneInfo,
    now: datetime,
    feed_url: str,
    cap_url: str,
) -> bytes:
    """An Atom feed of the caller's alerts of the last 24 h (and those still open), newest
    first, each entry linking its CAP document (``cap_url``, its last ``{id}`` the alert's)."""
    since = now - FEED_WINDOW
    alert_ids = list(
        (
            await session.scalars(
                select(Alert.id)
                .where(scope.alerts())
                .where(Alert.category.in_(list(_CATEGORY)))
                .where(
                    or_(
                        Alert.opened_at >= since,
                        Alert.closed_at >= since,
                        Alert.state.in_(OPEN_ALERT_STATES),
                    )
                )
                .order_by(Alert.id.desc())
                .limit(FEED_LIMIT)
            )
        ).all()
    )
    sources = await _sources(session, alert_ids)
    feed = ET.Element("feed", xmlns=ATOM_NAMESPACE)
    _atom(feed, "id", feed_url)
    _atom(feed, "title", "alertnet alerts (CAP 1.2)")
    updated = max((s.messages[-1].sent for s in sources.values()), default=now)
    _atom(feed, "updated", _atom_time(updated, zone))
    author = _atom(feed, "author")
    _atom(author, "name", sender)
    _atom(feed, "link", rel="self", type=ATOM_MEDIA_TYPE, href=feed_url)
    # The last ``{id}``, not ``str.format``: the URL's host comes from the request's Host header.
    cap_head, _, cap_tail = cap_url.rpartition("{id}")
    for alert_id in alert_ids:
        source = sources[alert_id]
        latest = source.messages[-1]
        href = f"{cap_head}{alert_id}{cap_tail}"
        entry = _atom(feed, "entry")
        _atom(entry, "id", href)
        name, _lat, _lon = scope.shown_device(
            site=source.site, name=source.device_name, lat=source.lat, lon=source.lon
        )
        title = f"{_EVENT[source.category]}: {name or source.mahalla or 'No mahalla'}"
        _atom(entry, "title", ("DRILL " if source.drill else "") + title)
        _atom(entry, "updated", _atom_time(latest.sent, zone))
        _atom(
            entry, "summary", f"{_identifier(alert_id, latest.number)}: {_PHASE_TEXT[latest.phase]}"
        )
        _atom(entry, "category", term=_CATEGORY[source.category])
        _atom(entry, "link", rel="alternate", type=CAP_MEDIA_TYPE, href=href)
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document
