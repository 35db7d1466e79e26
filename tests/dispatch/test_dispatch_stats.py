"""Handling-time percentiles per mahalla and per post, drills and trouble left out."""

from __future__ import annotations

from typing import Any

import pytest

from alertnet.db import unit_of_work
from alertnet.dispatch.stats import handling_stats, percentile, summarize
from alertnet.models import Alert
from tests.support.factories import create_alert, create_device, create_mahalla

from .helpers import T0, SessionFactory, at, make_posts


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None
    assert summarize([3.0, 1.0, 2.0]) == {
        "count": 3,
        "p50": 2.0,
        "p80": 3.0,
        "p95": 3.0,
        "p99": 3.0,
    }
    with pytest.raises(ValueError):
        percentile(values, 0)


async def _handled(
    session: Any,
    device: Any,
    *,
    opened_s: float,
    offer_s: float | None,
    accept_s: float | None = None,
    scene_s: float | None = None,
    close_s: float | None = None,
    state: str = "closed",
    post_id: int | None = None,
    **fields: Any,
) -> Alert:
    opened = at(opened_s)

    def later(seconds: float | None) -> Any:
        return None if seconds is None else at(opened_s + seconds)

    return await create_alert(
        session,
        device,
        state=state,
        opened_at=opened,
        first_offered_at=later(offer_s),
        accepted_at=later(accept_s),
        on_scene_at=later(scene_s),
        closed_at=later(close_s),
        post_id=post_id,
        **fields,
    )


async def test_stats_by_mahalla_and_by_post(session_factory: SessionFactory) -> None:
    posts = await make_posts(session_factory, ("ALPHA", 0, 0), ("BRAVO", 0, 0))
    async with unit_of_work(session_factory) as session:
        north = await create_mahalla(session, name="North")
        south = await create_mahalla(session, name="South", risk="green")
        # Each closed alert needs its own device: one open alert per device and category.
        for i, (offer_s, accept_s) in enumerate(((1, 5), (2, 10), (3, 20), (4, 40))):
            device = await create_device(session, mahalla_id=north.id)
            await _handled(
                session,
                device,
                opened_s=i,
                offer_s=offer_s,
                accept_s=accept_s,
                scene_s=accept_s + 100,
                close_s=accept_s + 600,
                post_id=posts["ALPHA"],
            )
        device = await create_device(session, mahalla_id=south.id)
        await _handled(
            session, device, opened_s=0, offer_s=8, accept_s=9, close_s=30, post_id=posts["BRAVO"]
        )
        # Left out: a drill, a trouble alert, one outside the window.
        device = await create_device(session, mahalla_id=south.id)
        await _handled(session, device, opened_s=1, offer_s=500, drill=True)
        device = await create_device(session, mahalla_id=south.id)
        await _handled(session, device, opened_s=1, offer_s=None, category="trouble")
        device = await create_device(session, mahalla_id=south.id)
        await _handled(session, device, opened_s=-7200, offer_s=900)
        # Cancelled after an offer: counts for "to offer" but not "to close".
        device = await create_device(session, mahalla_id=south.id)
        await _handled(session, device, opened_s=2, offer_s=6, close_s=50, state="cancelled")

    async with session_factory() as session:
        by_mahalla = await handling_stats(session, since=T0, until=at(3600), group_by="mahalla")
        by_post = await handling_stats(session, since=T0, until=at(3600), group_by="post")

    assert [row["name"] for row in by_mahalla] == ["North", "South"]
    north_row, south_row = by_mahalla
    assert north_row["alerts"] == 4
    assert north_row["to_offer_s"] == {"count": 4, "p50": 2.0, "p80": 4.0, "p95": 4.0, "p99": 4.0}
    assert north_row["to_accept_s"]["p50"] == 10.0
    assert north_row["to_on_scene_s"]["p95"] == 140.0
    assert north_row["to_close_s"]["p50"] == 610.0
    assert south_row["alerts"] == 2
    assert south_row["to_offer_s"] == {"count": 2, "p50": 6.0, "p80": 8.0, "p95": 8.0, "p99": 8.0}
    assert south_row["to_close_s"]["count"] == 1  # the cancelled one has no close time
    assert south_row["to_on_scene_s"] == {
        "count": 0,
        "p50": None,
        "p80": None,
        "p95": None,
        "p99": None,
    }

    assert [(row["name"], row["alerts"]) for row in by_post] == [
        ("ALPHA", 4),
        ("BRAVO", 1),
        (None, 1),
    ]
    assert by_post[1]["to_accept_s"]["p99"] == 9.0


async def test_stats_reject_an_unknown_grouping(session_factory: SessionFactory) -> None:
    async with session_factory() as session:
        with pytest.raises(ValueError):
            await handling_stats(session, since=T0, until=at(1), group_by="district")  # type: ignore[arg-type]
