"""Handling-time statistics (DESIGN §4), per mahalla or per post, as an alarm receiving centre
reports them (EN 50518 style): how long from the press to the first offer, to acceptance, to
arrival on scene and to closing.

Percentiles are computed in Python from the alert rows, so the figures are the same on SQLite
and PostgreSQL. They use the nearest-rank method: p95 is a time that was actually observed
and that at least 95 % of alerts did not exceed. Drills and trouble alerts are left out.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.models import Alert, AlertCategory, AlertState, Mahalla, Post

PERCENTILES = (50, 80, 95, 99)
STAGES = ("to_offer_s", "to_accept_s", "to_on_scene_s", "to_close_s")
GroupBy = Literal["mahalla", "post"]


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values; None for no values."""
    if not sorted_values:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile {p} outside (0, 100]")
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[max(rank, 1) - 1]


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """``{"count", "p50", "p80", "p95", "p99"}`` of durations in seconds."""
    ordered = sorted(values)
    summary: dict[str, Any] = {"count": len(ordered)}
    for p in PERCENTILES:
        value = percentile(ordered, p)
        summary[f"p{p}"] = round(value, 3) if value is not None else None
    return summary


def _seconds(start: datetime, end: datetime | None) -> float | None:
    if end is None:
        return None
    return max(0.0, (end - start).total_seconds())


async def handling_stats(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    group_by: GroupBy = "mahalla",
) -> list[dict[str, Any]]:
    """Handling times of the alerts opened in ``[since, until)``, one row per group.

    Each row: ``{"group_by", "id", "name", "alerts", "to_offer_s": {count, p50, p80, p95,
    p99}, "to_accept_s": …, "to_on_scene_s": …, "to_close_s": …}``. ``to_close_s`` counts only
    alerts closed by a post (not cancelled ones). Grouped by post, an alert belongs to the post
    that held it; alerts no post took are in the group with ``id`` None. Rows are ordered by
    name, the no-group row last.
    """
    if group_by == "mahalla":
        group_id = Alert.mahalla_id
        group_name = Mahalla.name
        query = select(Alert, group_name).outerjoin(Mahalla, Mahalla.id == Alert.mahalla_id)
    elif group_by == "post":
        group_id = Alert.post_id
        group_name = Post.callsign
        query = select(Alert, group_name).outerjoin(Post, Post.id == Alert.post_id)
    else:
        raise ValueError(f"group_by must be 'mahalla' or 'post', not {group_by!r}")
    rows = await session.execute(
        query.where(
            Alert.opened_at >= since,
            Alert.opened_at < until,
            Alert.drill.is_(False),
            Alert.category != AlertCategory.TROUBLE,
        ).order_by(group_id, Alert.id)
    )
    names: dict[int | None, str | None] = {}
    counts: dict[int | None, int] = defaultdict(int)
    durations: dict[int | None, dict[str, list[float]]] = defaultdict(
        lambda: {stage: [] for stage in STAGES}
    )
    for alert, name in rows:
        key = alert.mahalla_id if group_by == "mahalla" else alert.post_id
        names[key] = name
        counts[key] += 1
        closed_at = alert.closed_at if alert.state == AlertState.CLOSED else None
        stage_ends = (alert.first_offered_at, alert.accepted_at, alert.on_scene_at, closed_at)
        for stage, end in zip(STAGES, stage_ends, strict=True):
            seconds = _seconds(alert.opened_at, end)
            if seconds is not None:
                durations[key][stage].append(seconds)
    keys = sorted(names, key=lambda k: (k is None, names[k] or "", k or 0))
    return [
        {
            "group_by": group_by,
            "id": key,
            "name": names[key],
            "alerts": counts[key],
            **{stage: summarize(durations[key][stage]) for stage in STAGES},
        }
        for key in keys
    ]
