"""The alert state machine: the legal moves, and what one move writes (audit, feed, stamps)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from alertnet.alerts.state import (
    DISPATCH_TRANSITIONS,
    IllegalTransition,
    allowed_transitions,
    is_legal,
    transition,
)
from alertnet.db import unit_of_work
from alertnet.errors import Conflict
from alertnet.models import Alert, AlertAudit, AlertState, FeedItem
from alertnet.protocol import AckState

from .helpers import SessionFactory, at, press

S = AlertState


def test_table_covers_every_state_and_ends_are_terminal() -> None:
    assert set(DISPATCH_TRANSITIONS) == set(AlertState)
    assert allowed_transitions("panic", "closed") == frozenset()
    assert allowed_transitions("panic", "cancelled") == frozenset()
    for state in (S.NEW, S.OFFERED, S.ACCEPTED, S.ON_SCENE, S.ESCALATED):
        assert is_legal("panic", state, S.CANCELLED)


@pytest.mark.parametrize(
    ("from_state", "to_state"),
    [
        (S.NEW, S.ACCEPTED),
        (S.NEW, S.ON_SCENE),
        (S.NEW, S.CLOSED),
        (S.OFFERED, S.ON_SCENE),
        (S.OFFERED, S.CLOSED),
        (S.ESCALATED, S.NEW),
        (S.ESCALATED, S.ACCEPTED),
        (S.ON_SCENE, S.ACCEPTED),
        (S.ON_SCENE, S.OFFERED),
        (S.CLOSED, S.NEW),
        (S.CLOSED, S.OFFERED),
        (S.CANCELLED, S.OFFERED),
        (S.CLOSED, S.CANCELLED),
    ],
)
def test_illegal_moves(from_state: AlertState, to_state: AlertState) -> None:
    assert not is_legal("panic", from_state, to_state)


def test_trouble_alerts_are_never_dispatched() -> None:
    assert allowed_transitions("trouble", S.NEW) == {S.CLOSED, S.CANCELLED}
    for target in (S.OFFERED, S.ESCALATED, S.ACCEPTED):
        assert not is_legal("trouble", S.NEW, target)


def test_illegal_transition_is_a_conflict() -> None:
    error = IllegalTransition(7, "closed", "offered")
    assert isinstance(error, Conflict)
    assert error.status_code == 409
    assert "closed" in error.detail and "offered" in error.detail


async def test_transition_writes_audit_feed_and_stamps(session_factory: SessionFactory) -> None:
    alert_id = await press(session_factory)
    async with unit_of_work(session_factory) as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        progress = await transition(
            session, alert, S.OFFERED, actor="dispatch", reason="test", at=at(2)
        )
        assert progress is AckState.DISPATCHED
        again = await transition(session, alert, S.NEW, actor="post:A", reason="declined", at=at(5))
        assert again is None
        # The device already knows its alarm was dispatched: no second "dispatched".
        assert await transition(session, alert, S.OFFERED, actor="dispatch", at=at(6)) is None
    async with session_factory() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        assert alert.state == "offered"
        assert alert.first_offered_at == at(2)  # the first offer, not the latest
        audit = (
            (
                await session.execute(
                    select(AlertAudit)
                    .where(AlertAudit.alert_id == alert_id)
                    .order_by(AlertAudit.id)
                )
            )
            .scalars()
            .all()
        )
        assert [(a.from_state, a.to_state, a.actor) for a in audit] == [
            ("new", "offered", "dispatch"),
            ("offered", "new", "post:A"),
            ("new", "offered", "dispatch"),
        ]
        assert audit[1].reason == "declined"
        assert audit[0].at == at(2)
        feed = (
            (await session.execute(select(FeedItem).where(FeedItem.alert_id == alert_id)))
            .scalars()
            .all()
        )
        assert [item.type for item in feed] == ["alert.updated"] * 3
        assert feed[-1].data["state"] == "offered"
        assert feed[-1].data["id"] == alert_id


async def test_illegal_transition_changes_nothing(session_factory: SessionFactory) -> None:
    alert_id = await press(session_factory)
    with pytest.raises(IllegalTransition):
        async with unit_of_work(session_factory) as session:
            alert = await session.get(Alert, alert_id)
            assert alert is not None
            await transition(session, alert, S.ON_SCENE, actor="post:A")
    async with session_factory() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        assert alert.state == "new"
        assert alert.on_scene_at is None
        count = await session.scalar(
            select(AlertAudit.id).where(AlertAudit.alert_id == alert_id).limit(1)
        )
        assert count is None


async def test_trouble_transition_refused_in_the_database_path(
    session_factory: SessionFactory,
) -> None:
    alert_id = await press(session_factory, category="trouble", trouble="mains_lost")
    async with unit_of_work(session_factory) as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None
        with pytest.raises(IllegalTransition):
            await transition(session, alert, S.OFFERED, actor="dispatch")
        assert (
            await transition(session, alert, S.CLOSED, actor="console", reason="restored") is None
        )
    async with session_factory() as session:
        alert = await session.get(Alert, alert_id)
        assert alert is not None and alert.state == "closed" and alert.closed_at is not None
