"""What a shift report says (DESIGN §10): the alerts of a period as the caller's scope sees them,
counted, timed and each told with its timeline — the facts; ``reports.render`` writes them.

The period is ``[since, until)`` and an alert belongs to it when it was *opened* in it. Besides
those, the report lists the alerts still open at the end of the period (opened earlier or
during it): what the next shift takes over.

Figures follow DESIGN §2.3 and §4: drills are listed (marked) but left out of every count,
percentile and escalation figure; device troubles are counted by category but left out of the
handling times, as ``dispatch.stats`` does (whose percentiles these are).

Privacy (§10, §12): the report reads through ``Scope``. An observer gets its own mahalla's
alerts (``Scope.alerts``), per-mahalla figures only (``ensure_reads_statistics``), device names
and positions as ``Scope.shown_device`` gives them, of the premises only the street, and none
of the centre's free text — dispatchers' notes, acknowledgements, the closing note and the
reasons written on transitions (``Scope.reads_alert_workflow``): a reason such as a cancel's
may name a caller. The transitions themselves (when, from, to, by whom) are shown to all.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.alerts.notes import notes_for
from alertnet.auth.scope import Reach, Scope
from alertnet.dispatch.stats import STAGES, handling_stats, summarize
from alertnet.errors import Forbidden
from alertnet.models import (
    Alert,
    AlertAcknowledgement,
    AlertAudit,
    AlertCategory,
    AlertState,
    Device,
    Mahalla,
    Post,
)
from alertnet.premises import premises_dict

# A printed report of more alerts than this is no longer read: it says how many it left out.
MAX_LISTED_ALERTS: Final = 1000
MAX_OPEN_AT_END: Final = 500
_IN_CHUNK: Final = 500


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of an alert's story: a state change, a note or an acknowledgement."""

    at: datetime
    kind: str  # "transition", "note", "acknowledgement"
    actor: str
    from_state: str | None = None
    to_state: str | None = None
    text: str = ""


@dataclass(slots=True)
class ReportAlert:
    """One alert as the report shows it (already cut to the caller's scope)."""

    id: int
    category: str
    trouble: str | None
    state: str
    outcome: str | None
    drill: bool
    silent: bool
    priority: int
    mahalla: str | None
    device_eui: str
    device_kind: str
    device_name: str
    street: str
    lat: float
    lon: float
    post: str | None
    opened_at: datetime
    first_offered_at: datetime | None
    accepted_at: datetime | None
    on_scene_at: datetime | None
    closed_at: datetime | None
    close_note: str
    escalations: int = 0
    first_escalated_at: datetime | None = None
    state_at_end: str | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def stage_ends(self) -> tuple[datetime | None, ...]:
        """When each of ``dispatch.stats.STAGES`` ended (closing counts only when closed)."""
        closed_at = self.closed_at if self.state == AlertState.CLOSED else None
        return (self.first_offered_at, self.accepted_at, self.on_scene_at, closed_at)


@dataclass(slots=True)
class ShiftReport:
    since: datetime
    until: datetime
    generated_at: datetime
    scope_mahalla: str | None  # an observer's mahalla; None: every mahalla
    with_free_text: bool
    alerts: list[ReportAlert]  # opened in the period, oldest first, at most MAX_LISTED_ALERTS
    total_alerts: int  # opened in the period, drills included
    drills: int
    by_category: Counter[str]
    by_outcome: Counter[str]
    by_mahalla: dict[str, Counter[str]]  # mahalla name → category → count
    handling: dict[str, dict[str, Any]]  # stage → summarize() of the real alerts
    handling_by_mahalla: list[dict[str, Any]]
    handling_by_post: list[dict[str, Any]] | None  # None: not for this scope
    escalated: list[ReportAlert]
    escalations: int
    open_at_end: list[ReportAlert]

    @property
    def real_alerts(self) -> int:
        return self.total_alerts - self.drills

    @property
    def unlisted(self) -> int:
        return self.total_alerts - len(self.alerts)


def outcome_of(alert: ReportAlert) -> str:
    """What an alert counts under: its outcome, ``cancelled``, or ``open`` (``alerts.counts``)."""
    if alert.state == AlertState.CANCELLED:
        return "cancelled"
    if alert.state == AlertState.CLOSED:
        return alert.outcome or "closed"
    return "open"


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i : i + _IN_CHUNK]) for i in range(0, len(ids), _IN_CHUNK)]


async def _report_alerts(
    session: AsyncSession, scope: Scope, *conditions: Any, limit: int | None = None
) -> list[ReportAlert]:
    with_free_text = scope.reads_alert_workflow()
    rows = await session.execute(
        select(Alert, Device, Mahalla.name, Post.callsign)
        .join(Device, Device.id == Alert.device_id)
        .outerjoin(Mahalla, Mahalla.id == Alert.mahalla_id)
        .outerjoin(Post, Post.id == Alert.post_id)
        .where(scope.alerts(), *conditions)
        .order_by(Alert.opened_at, Alert.id)
        .limit(limit)
    )
    found = []
    for alert, device, mahalla, callsign in rows:
        name, lat, lon = scope.shown_device(
            site=device.site, name=device.name, lat=alert.lat, lon=alert.lon
        )
        premises = scope.visible_premises(
            premises_dict(
                device.premises_ref,
                device.owner,
                device.address,
                device.street,
                device.notes,
                device.contacts,
            ),
            involved=False,
            silent=alert.silent,
        )
        found.append(
            ReportAlert(
                id=alert.id,
                category=alert.category,
                trouble=alert.trouble,
                state=alert.state,
                outcome=alert.outcome,
                drill=alert.drill,
                silent=alert.silent,
                priority=alert.priority,
                mahalla=mahalla,
                device_eui=device.eui,
                device_kind=device.kind,
                device_name=name,
                street=str(premises.get("street") or ""),
                lat=lat,
                lon=lon,
                post=callsign,
                opened_at=alert.opened_at,
                first_offered_at=alert.first_offered_at,
                accepted_at=alert.accepted_at,
                on_scene_at=alert.on_scene_at,
                closed_at=alert.closed_at,
                close_note=(alert.note or "") if with_free_text else "",
            )
        )
    return found


async def _add_timelines(
    session: AsyncSession, alerts: Sequence[ReportAlert], scope: Scope, until: datetime
) -> None:
    """Each alert's transitions (and, for the console, notes and acknowledgements), oldest
    first; its escalations; and its state at ``until``."""
    by_id = {alert.id: alert for alert in alerts}
    with_free_text = scope.reads_alert_workflow()
    for chunk in _chunks(list(by_id)):
        audit = await session.scalars(
            select(AlertAudit)
            .where(AlertAudit.alert_id.in_(chunk))
            .order_by(AlertAudit.alert_id, AlertAudit.at, AlertAudit.id)
        )
        for row in audit:
            alert = by_id[row.alert_id]
            alert.timeline.append(
                TimelineEntry(
                    at=row.at,
                    kind="transition",
                    actor=row.actor,
                    from_state=row.from_state,
                    to_state=row.to_state,
                    text=row.reason if with_free_text else "",
                )
            )
            if row.at < until:
                alert.state_at_end = row.to_state
            if row.to_state == AlertState.ESCALATED:
                alert.escalations += 1
                if alert.first_escalated_at is None:
                    alert.first_escalated_at = row.at
        if not with_free_text:
            continue
        for alert_id, notes in (await notes_for(session, chunk)).items():
            by_id[alert_id].timeline.extend(
                TimelineEntry(at=note.at, kind="note", actor=note.author, text=note.text)
                for note in notes
            )
        acknowledgements = await session.scalars(
            select(AlertAcknowledgement).where(AlertAcknowledgement.alert_id.in_(chunk))
        )
        for ack in acknowledgements:
            by_id[ack.alert_id].timeline.append(
                TimelineEntry(at=ack.at, kind="acknowledgement", actor=ack.actor)
            )
    for alert in alerts:
        alert.timeline.sort(key=lambda entry: entry.at)
        if alert.state_at_end is None:
            alert.state_at_end = alert.state


def _handling(alerts: Sequence[ReportAlert]) -> dict[str, dict[str, Any]]:
    durations: dict[str, list[float]] = {stage: [] for stage in STAGES}
    for alert in alerts:
        for stage, end in zip(STAGES, alert.stage_ends, strict=True):
            if end is not None:
                durations[stage].append(max(0.0, (end - alert.opened_at).total_seconds()))
    return {stage: summarize(values) for stage, values in durations.items()}


async def shift_report(
    session: AsyncSession,
    scope: Scope,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
) -> ShiftReport:
    """The report of ``[since, until)`` as ``scope`` may read it; Forbidden for a scope that
    reads no statistics (a post's tablet account)."""
    scope.ensure_reads_statistics()
    in_period = and_(Alert.opened_at >= since, Alert.opened_at < until)
    every = await _report_alerts(session, scope, in_period, limit=MAX_LISTED_ALERTS + 1)
    if len(every) > MAX_LISTED_ALERTS:
        # Counts need them all: read the whole period (a month of a city stays in memory).
        every = await _report_alerts(session, scope, in_period)
    still_open = or_(Alert.closed_at.is_(None), Alert.closed_at >= until)
    open_at_end = await _report_alerts(
        session,
        scope,
        Alert.opened_at < since,
        still_open,
        limit=MAX_OPEN_AT_END,
    )
    listed = every[:MAX_LISTED_ALERTS]
    await _add_timelines(session, [*every, *open_at_end], scope, until)
    open_at_end = [
        *(alert for alert in every if alert.closed_at is None or alert.closed_at >= until),
        *open_at_end,
    ]
    open_at_end.sort(key=lambda alert: (alert.opened_at, alert.id))

    real = [alert for alert in every if not alert.drill]
    by_category: Counter[str] = Counter({category.value: 0 for category in AlertCategory})
    by_outcome: Counter[str] = Counter()
    by_mahalla: dict[str, Counter[str]] = defaultdict(Counter)
    for alert in real:
        by_category[alert.category] += 1
        by_outcome[outcome_of(alert)] += 1
        by_mahalla[alert.mahalla or ""][alert.category] += 1
    timed = [alert for alert in real if alert.category != AlertCategory.TROUBLE]
    handling_by_mahalla = [
        row
        for row in await handling_stats(session, since=since, until=until, group_by="mahalla")
        if scope.sees_mahalla(row["id"])
    ]
    try:
        scope.ensure_reads_statistics(per="post")
        handling_by_post: list[dict[str, Any]] | None = await handling_stats(
            session, since=since, until=until, group_by="post"
        )
    except Forbidden:
        handling_by_post = None
    escalated = [alert for alert in real if alert.escalations]
    scope_mahalla = None
    if scope.reach is Reach.OWN_MAHALLA:
        scope_mahalla = await session.scalar(
            select(Mahalla.name).where(Mahalla.id == scope.mahalla_id)
        )
    return ShiftReport(
        since=since,
        until=until,
        generated_at=now,
        scope_mahalla=scope_mahalla,
        with_free_text=scope.reads_alert_workflow(),
        alerts=listed,
        total_alerts=len(every),
        drills=len(every) - len(real),
        by_category=by_category,
        by_outcome=by_outcome,
        by_mahalla=dict(sorted(by_mahalla.items())),
        handling=_handling(timed),
        handling_by_mahalla=handling_by_mahalla,
        handling_by_post=handling_by_post,
        escalated=escalated,
        escalations=sum(alert.escalations for alert in escalated),
        open_at_end=open_at_end,
    )
