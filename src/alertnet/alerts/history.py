"""The alert history (DESIGN §10): the filters of ``GET /api/v1/alerts`` and of ``export.csv``,
checked in one place, and the keyset query over them (newest first, ``before=<alert id>``).

Filters, each optional and combined with AND:

* ``state`` — ``open`` (the open states of §3), ``closed``, ``cancelled``, ``all`` or one state
  name; several may be given comma-separated (``closed,cancelled``).
* ``from`` / ``to`` — the alert was *opened* in ``[from, to)``. An ISO 8601 date-time with an
  offset is that instant; one without an offset, or a bare date, is read in
  ``ALERTNET_TIMEZONE``; a bare date as ``to`` includes that whole day.
* ``mahalla`` — a mahalla's id or exact name; ``category``; ``device`` — an EUI; ``post`` — a
  post's id or callsign: the alerts it held *or was offered* (what a crew was asked to do).
* ``drill`` — ``true``: drills only, ``false``: real alerts only.
* ``q`` — free text: the alert number (``123`` or ``#123``), the device EUI, the mahalla, the
  post's callsign, the device's name and address, the outcome and the closing note. What the
  caller may not read is never searched either (an observer's ``q`` never matches a household's
  name or address, nor a note), so a search cannot reveal what a view would hide.

A bad value is ``InvalidInput`` (422, code ``invalid_input``) naming the parameter: never a 500,
never a silently ignored filter. The caller's ``Scope`` is applied to every query here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.views import alert_views, iso
from alertnet.auth.scope import Scope
from alertnet.errors import InvalidInput
from alertnet.models import (
    OPEN_ALERT_STATES,
    Alert,
    AlertCategory,
    AlertState,
    Device,
    Mahalla,
    Offer,
    Post,
    Site,
)

DEFAULT_LIMIT: Final = 200
MAX_LIMIT: Final = 1000
MAX_TEXT_CHARS: Final = 100
MAX_TIME_CHARS: Final = 40
STATE_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "open": tuple(OPEN_ALERT_STATES),
    "all": tuple(AlertState),
}
_EUI = re.compile(r"[0-9a-fA-F]{16}")
_ALERT_NUMBER = re.compile(r"[#№]?\s*([0-9]{1,18})")
_DIGITS = re.compile(r"[0-9]{1,9}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class Order(StrEnum):
    """``queue``: the console's queue (escalated first, then priority, then age); ``newest``:
    the history (newest first, pageable with ``before``)."""

    QUEUE = "queue"
    NEWEST = "newest"


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """The history filters of one request, already checked (see the module docstring)."""

    states: frozenset[str] | None = None  # None: every state
    since: datetime | None = None
    until: datetime | None = None
    mahalla_id: int | None = None
    mahalla_name: str | None = None
    category: str | None = None
    post_id: int | None = None
    post_callsign: str | None = None
    device_eui: str | None = None
    drill: bool | None = None
    text: str | None = None

    def conditions(self, scope: Scope) -> list[ColumnElement[bool]]:
        """The SQL conditions of these filters, the caller's scope first."""
        found: list[ColumnElement[bool]] = [scope.alerts()]
        if self.states is not None:
            found.append(Alert.state.in_(sorted(self.states)))
        if self.since is not None:
            found.append(Alert.opened_at >= self.since)
        if self.until is not None:
            found.append(Alert.opened_at < self.until)
        if self.mahalla_id is not None:
            found.append(Alert.mahalla_id == self.mahalla_id)
        if self.mahalla_name is not None:
            named = select(Mahalla.id).where(Mahalla.name == self.mahalla_name)
            found.append(Alert.mahalla_id.in_(named))
        if self.category is not None:
            found.append(Alert.category == self.category)
        if self.device_eui is not None:
            found.append(
                Alert.device_id.in_(select(Device.id).where(Device.eui == self.device_eui))
            )
        if self.post_id is not None or self.post_callsign is not None:
            found.append(_post_condition(self.post_id, self.post_callsign))
        if self.drill is not None:
            found.append(Alert.drill.is_(self.drill))
        if self.text is not None:
            found.append(_text_condition(self.text, scope))
        return found


def _post_condition(post_id: int | None, callsign: str | None) -> ColumnElement[bool]:
    """The alerts a post held or was offered."""
    if post_id is not None:
        posts: Any = select(Post.id).where(Post.id == post_id)
    else:
        posts = select(Post.id).where(Post.callsign == callsign)
    offered = select(Offer.alert_id).where(Offer.post_id.in_(posts))
    return or_(Alert.post_id.in_(posts), Alert.id.in_(offered))


def hidden_sites(scope: Scope) -> list[str]:
    """The device sites whose names and addresses ``scope`` may not read (DESIGN §10)."""
    return [site.value for site in Site if scope.hides_site(site)]


def _text_condition(text: str, scope: Scope) -> ColumnElement[bool]:
    """``q``: any searchable field contains ``text`` (case-insensitive; on SQLite for ASCII
    letters only, a limit of SQLite's LIKE)."""
    number = _ALERT_NUMBER.fullmatch(text)
    matches: list[ColumnElement[bool]] = []
    if number is not None and int(number.group(1)) < 2**63:
        matches.append(Alert.id == int(number.group(1)))
    readable_devices: ColumnElement[bool] = or_(
        Device.name.icontains(text, autoescape=True),
        Device.address.icontains(text, autoescape=True),
    )
    hidden = hidden_sites(scope)
    if hidden:
        readable_devices = and_(Device.site.not_in(hidden), readable_devices)
    devices = select(Device.id).where(
        or_(Device.eui.icontains(text, autoescape=True), readable_devices)
    )
    matches.append(Alert.device_id.in_(devices))
    mahallas = select(Mahalla.id).where(Mahalla.name.icontains(text, autoescape=True))
    matches.append(Alert.mahalla_id.in_(mahallas))
    posts = select(Post.id).where(Post.callsign.icontains(text, autoescape=True))
    matches.append(Alert.post_id.in_(posts))
    matches.append(Alert.outcome.icontains(text, autoescape=True))
    if reads_notes(scope):
        matches.append(Alert.note.icontains(text, autoescape=True))
    return or_(*matches)


def reads_notes(scope: Scope) -> bool:
    """Whether ``scope`` reads the centre's free text on an alert (dispatchers' notes, the
    closing note): the console only (``Scope.reads_alert_workflow``)."""
    return scope.reads_alert_workflow()


# --- parsing the parameters ------------------------------------------------------------------


def parse_states(value: str) -> frozenset[str] | None:
    """``state=``: None for every state, else the set of state names it names."""
    states: set[str] = set()
    for part in value.split(","):
        name = part.strip().lower()
        if name == "all":
            return None
        if name in STATE_GROUPS:
            states.update(STATE_GROUPS[name])
        elif name in set(AlertState):
            states.add(name)
        else:
            known = ", ".join([*STATE_GROUPS, *AlertState])
            raise InvalidInput(f"state: unknown state {part.strip()[:20]!r}; one of {known}")
    return frozenset(states)


def parse_time(value: str, zone: ZoneInfo, *, name: str, end_of_day: bool = False) -> datetime:
    """``from=`` / ``to=`` as an aware UTC instant (see the module docstring)."""
    text = value.strip()
    if not text or len(text) > MAX_TIME_CHARS or _CONTROL.search(text):
        raise InvalidInput(f"{name}: give an ISO 8601 date or date-time, e.g. 2026-03-01T08:00")
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            local = datetime.combine(day, time(0), tzinfo=zone)
            if end_of_day:
                local = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
        else:
            local = datetime.fromisoformat(text.replace(" ", "T", 1))
            if local.tzinfo is None:
                local = local.replace(tzinfo=zone)
        return local.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"{name}: {text[:MAX_TIME_CHARS]!r} is not an ISO 8601 date or date-time"
        ) from exc


def parse_eui(value: str) -> str:
    text = value.strip()
    if not _EUI.fullmatch(text):
        raise InvalidInput("device: an EUI is 16 hexadecimal digits")
    return text.lower()


def parse_text(value: str, *, name: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A short line of text: no control characters, at most ``max_chars``."""
    text = value.strip()
    if _CONTROL.search(text):
        raise InvalidInput(f"{name}: control characters are not allowed")
    if len(text) > max_chars:
        raise InvalidInput(f"{name}: at most {max_chars} characters")
    return text


def parse_category(value: str) -> str:
    name = value.strip().lower()
    if name not in set(AlertCategory):
        known = ", ".join(AlertCategory)
        raise InvalidInput(f"category: unknown category {value[:20]!r}; one of {known}")
    return name


def parse_id_or_name(value: str, *, name: str) -> tuple[int | None, str | None]:
    """``mahalla=`` / ``post=``: an id (digits) or a name."""
    text = parse_text(value, name=name, max_chars=120)
    if not text:
        raise InvalidInput(f"{name}: give an id or a name")
    if _DIGITS.fullmatch(text):
        return int(text), None
    return None, text


def build_filter(
    *,
    zone: ZoneInfo,
    state: str | None = "all",
    since: str | None = None,
    until: str | None = None,
    mahalla: str | None = None,
    mahalla_id: int | None = None,
    category: str | None = None,
    post: str | None = None,
    device: str | None = None,
    drill: bool | None = None,
    q: str | None = None,
) -> AlertFilter:
    """The request's parameters (strings as sent) checked into an ``AlertFilter``."""
    since_at = parse_time(since, zone, name="from") if since else None
    until_at = parse_time(until, zone, name="to", end_of_day=True) if until else None
    if since_at is not None and until_at is not None and since_at >= until_at:
        raise InvalidInput("from must be earlier than to")
    by_id, by_name = parse_id_or_name(mahalla, name="mahalla") if mahalla else (None, None)
    if mahalla_id is not None:
        if by_id is not None and by_id != mahalla_id:
            raise InvalidInput("mahalla and mahalla_id name different mahallas")
        by_id = mahalla_id
    post_id, callsign = parse_id_or_name(post, name="post") if post else (None, None)
    text = parse_text(q, name="q") if q is not None else ""
    return AlertFilter(
        states=parse_states(state) if state else None,
        since=since_at,
        until=until_at,
        mahalla_id=by_id,
        mahalla_name=by_name,
        category=parse_category(category) if category else None,
        post_id=post_id,
        post_callsign=callsign,
        device_eui=parse_eui(device) if device else None,
        drill=drill,
        text=text or None,
    )


# --- the queries -----------------------------------------------------------------------------


def history_query(alert_filter: AlertFilter, scope: Scope) -> Select[int]:
    """The ids of the matching alerts, newest first (no limit, no ``before``)."""
    return select(Alert.id).where(*alert_filter.conditions(scope)).order_by(Alert.id.desc())


async def history_page(
    session: AsyncSession,
    alert_filter: AlertFilter,
    scope: Scope,
    *,
    limit: int = DEFAULT_LIMIT,
    before: int | None = None,
) -> list[int]:
    """One page of ids, newest first: those below ``before`` when given (keyset pagination,
    so a page never repeats or skips an alert, whatever opens meanwhile)."""
    query = history_query(alert_filter, scope)
    if before is not None:
        query = query.where(Alert.id < before)
    return list((await session.scalars(query.limit(limit))).all())


async def queue_page(
    session: AsyncSession, alert_filter: AlertFilter, scope: Scope, *, limit: int
) -> list[int]:
    """The console's queue order: escalated first, then priority, then the oldest."""
    escalated_first = case((Alert.state == AlertState.ESCALATED, 0), else_=1)
    query = (
        select(Alert.id)
        .where(*alert_filter.conditions(scope))
        .order_by(escalated_first, Alert.priority.desc(), Alert.opened_at, Alert.id)
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def history_views(session: AsyncSession, alert_ids: Sequence[int]) -> list[dict[str, Any]]:
    """The alerts' §5 views in the given order, with what a history row shows besides: when
    each stage was reached and how it ended."""
    views = await alert_views(session, alert_ids)
    rows = await session.execute(
        select(
            Alert.id,
            Alert.first_offered_at,
            Alert.accepted_at,
            Alert.on_scene_at,
            Alert.escalated_at,
            Alert.closed_at,
            Alert.outcome,
        ).where(Alert.id.in_(list(alert_ids)))
    )
    for alert_id, offered, accepted, on_scene, escalated, closed, outcome in rows:
        views[alert_id].update(
            first_offered_at=iso(offered),
            accepted_at=iso(accepted),
            on_scene_at=iso(on_scene),
            escalated_at=iso(escalated),
            closed_at=iso(closed),
            outcome=outcome,
        )
    return [views[alert_id] for alert_id in alert_ids if alert_id in views]
