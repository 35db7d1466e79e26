"""The alert history as a CSV file (``GET /api/v1/alerts/export.csv``, DESIGN §10), for Excel.

The file is UTF-8 with a byte-order mark, so Excel opens Uzbek and Russian text correctly
(without it, Excel reads a CSV in the machine's ANSI code page and Cyrillic turns to noise);
rows end in CRLF; the separator is a comma, or a semicolon (``sep=;``) for an Excel whose
regional settings use the decimal comma (Russian, Uzbek), which splits columns only on ``;``.
Times are ``YYYY-MM-DD HH:MM:SS``, 24-hour, in ``ALERTNET_TIMEZONE``; durations whole seconds.

What a row holds is what the caller's ``Scope`` lets it read (§10): an observer gets no name
and 3-decimal coordinates for a household's or a business's device (``Scope.shown_device``),
of the premises only the street (``Scope.visible_premises``), and none of the centre's free
text (the closing note, dispatchers' notes: ``Scope.reads_alert_workflow``). A post's own
history carries no premises at all: the call list is for the alert in hand, not for a file.

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a
leading apostrophe, so a device named ``=HYPERLINK(…)`` is shown, never run, by a spreadsheet
(OWASP "CSV injection"). Numbers are written as numbers.

Rows are streamed in keyset batches, each read in a session of its own; a file is at most
``MAX_EXPORT_ROWS`` alerts, and a wider filter is refused (422) before anything is sent.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.alerts.history import AlertFilter, history_page, history_query, reads_notes
from alertnet.alerts.notes import notes_for
from alertnet.auth.scope import Scope
from alertnet.errors import InvalidInput
from alertnet.models import Alert, AlertState, Device, Mahalla, Post
from alertnet.premises import premises_dict

BOM: Final = "\ufeff"
BATCH_ROWS: Final = 500
MAX_EXPORT_ROWS: Final = 100_000
SEPARATORS: Final = (",", ";")
# Leading characters a spreadsheet reads as the start of a formula.
FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")
LOCAL_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

COLUMNS: Final = (
    "id",
    "opened_at",
    "category",
    "trouble",
    "state",
    "outcome",
    "drill",
    "silent",
    "priority",
    "press_count",
    "refusal_count",
    "mahalla",
    "device_eui",
    "device_kind",
    "site",
    "device_name",
    "premises_ref",
    "owner",
    "address",
    "street",
    "lat",
    "lon",
    "post",
    "first_offered_at",
    "accepted_at",
    "on_scene_at",
    "escalated_at",
    "closed_at",
    "to_offer_s",
    "to_accept_s",
    "to_on_scene_s",
    "to_close_s",
    "close_note",
    "dispatcher_notes",
)
# The premises fields a row may carry (dict keys of ``premises_dict``) and their columns.
_PREMISES_COLUMNS: Final = {
    "ref": "premises_ref",
    "owner": "owner",
    "address": "address",
    "street": "street",
}


def neutralise(cell: str) -> str:
    """A text cell a spreadsheet shows as text, never evaluates."""
    return f"'{cell}" if cell.startswith(FORMULA_STARTS) else cell


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime(LOCAL_TIME_FORMAT) if value is not None else ""


def _seconds(start: datetime, end: datetime | None) -> int | str:
    if end is None:
        return ""
    return max(0, round((end - start).total_seconds()))


def export_filename(now: datetime, zone: ZoneInfo) -> str:
    return f"alertnet-alerts-{now.astimezone(zone):%Y%m%d-%H%M}.csv"


async def ensure_exportable(
    session: AsyncSession, alert_filter: AlertFilter, scope: Scope, *, before: int | None
) -> None:
    """InvalidInput (422) when the filter matches more alerts than one file holds."""
    query = history_query(alert_filter, scope)
    if before is not None:
        query = query.where(Alert.id < before)
    matching = query.order_by(None).subquery()
    count = int(await session.scalar(select(func.count()).select_from(matching)) or 0)
    if count > MAX_EXPORT_ROWS:
        raise InvalidInput(
            f"{count} alerts match; one file holds at most {MAX_EXPORT_ROWS}: narrow from/to"
        )


async def _rows(
    session: AsyncSession, alert_ids: Sequence[int], scope: Scope, zone: ZoneInfo
) -> list[list[Any]]:
    """The CSV rows of ``alert_ids`` (newest first) as ``scope`` may read them."""
    found = await session.execute(
        select(Alert, Device, Mahalla.name, Post.callsign)
        .join(Device, Device.id == Alert.device_id)
        .outerjoin(Mahalla, Mahalla.id == Alert.mahalla_id)
        .outerjoin(Post, Post.id == Alert.post_id)
        .where(Alert.id.in_(list(alert_ids)))
        .order_by(Alert.id.desc())
    )
    with_notes = reads_notes(scope)
    notes = await notes_for(session, alert_ids) if with_notes else {}
    rows: list[list[Any]] = []
    for alert, device, mahalla, callsign in found:
        name, lat, lon = scope.shown_device(
            site=device.site, name=device.name, lat=alert.lat, lon=alert.lon
        )
        # History is not the alert in hand: no post reads premises here (involved=False).
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
        closed_at = alert.closed_at if alert.state == AlertState.CLOSED else None
        dispatcher_notes = "\n".join(
            f"{local_time(note.at, zone)} {note.author}: {note.text}"
            for note in notes.get(alert.id, [])
        )
        values: dict[str, Any] = {
            "id": alert.id,
            "opened_at": local_time(alert.opened_at, zone),
            "category": alert.category,
            "trouble": alert.trouble or "",
            "state": alert.state,
            "outcome": alert.outcome or "",
            "drill": int(alert.drill),
            "silent": int(alert.silent),
            "priority": alert.priority,
            "press_count": alert.press_count,
            "refusal_count": alert.refusal_count,
            "mahalla": mahalla or "",
            "device_eui": device.eui,
            "device_kind": device.kind,
            "site": device.site,
            "device_name": name,
            "lat": lat,
            "lon": lon,
            "post": callsign or "",
            "first_offered_at": local_time(alert.first_offered_at, zone),
            "accepted_at": local_time(alert.accepted_at, zone),
            "on_scene_at": local_time(alert.on_scene_at, zone),
            "escalated_at": local_time(alert.escalated_at, zone),
            "closed_at": local_time(alert.closed_at, zone),
            "to_offer_s": _seconds(alert.opened_at, alert.first_offered_at),
            "to_accept_s": _seconds(alert.opened_at, alert.accepted_at),
            "to_on_scene_s": _seconds(alert.opened_at, alert.on_scene_at),
            "to_close_s": _seconds(alert.opened_at, closed_at),
            "close_note": (alert.note or "") if with_notes else "",
            "dispatcher_notes": dispatcher_notes,
        }
        for key, column in _PREMISES_COLUMNS.items():
            values[column] = premises.get(key) or ""
        rows.append(
            [
                neutralise(value) if isinstance(value, str) else value
                for value in (values[column] for column in COLUMNS)
            ]
        )
    return rows


async def csv_chunks(
    session_factory: async_sessionmaker[AsyncSession],
    alert_filter: AlertFilter,
    scope: Scope,
    *,
    zone: ZoneInfo,
    separator: str = ",",
    before: int | None = None,
) -> AsyncIterator[str]:
    """The file, a batch of rows at a time: the BOM and the header first."""
    if separator not in SEPARATORS:
        raise ValueError(f"separator must be one of {SEPARATORS}")
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=separator, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield BOM + buffer.getvalue()
    while True:
        async with session_factory() as session:
            ids = await history_page(session, alert_filter, scope, limit=BATCH_ROWS, before=before)
            rows = await _rows(session, ids, scope, zone) if ids else []
        if not rows:
            return
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        yield buffer.getvalue()
        if len(ids) < BATCH_ROWS:
            return
        before = ids[-1]
