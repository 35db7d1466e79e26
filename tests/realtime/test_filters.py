"""Who sees which feed row: the pure rule, and its SQL twin agreeing with it on real databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import FeedItem, utcnow
from alertnet.realtime.filters import EVERYTHING, FeedScope, NoFeedScope, scope_for
from alertnet.realtime.hub import read_rows, scope_condition
from tests.support.factories import create_mahalla, create_post

POST_7 = FeedScope(post_id=7)
MAHALLA_3 = FeedScope(mahalla_id=3)

SessionFactory = async_sessionmaker[AsyncSession]


@pytest.mark.parametrize(
    ("row_post", "row_mahalla", "everything", "post_7", "mahalla_3"),
    [
        (7, 3, True, True, True),  # an offer to post 7 for an alert in mahalla 3
        (7, None, True, True, False),  # post 7's own status
        (8, 3, True, False, True),  # another post's offer in mahalla 3
        (None, 3, True, False, True),  # a device or an unassigned alert in mahalla 3
        (None, 4, True, False, False),
        (None, None, True, False, False),  # about nobody in particular: console only
    ],
)
def test_the_rule(
    row_post: int | None,
    row_mahalla: int | None,
    everything: bool,
    post_7: bool,
    mahalla_3: bool,
) -> None:
    row = {"post_id": row_post, "mahalla_id": row_mahalla}
    assert EVERYTHING.allows(**row) is everything
    assert POST_7.allows(**row) is post_7
    assert MAHALLA_3.allows(**row) is mahalla_3


def test_scope_for_each_role() -> None:
    assert scope_for("admin", post_id=None, mahalla_id=None) == EVERYTHING
    assert scope_for("dispatcher", post_id=None, mahalla_id=None) == EVERYTHING
    assert scope_for("post", post_id=7, mahalla_id=None) == POST_7
    assert scope_for("observer", post_id=None, mahalla_id=3) == MAHALLA_3
    with pytest.raises(NoFeedScope):
        scope_for("post", post_id=None, mahalla_id=3)
    with pytest.raises(NoFeedScope):
        scope_for("observer", post_id=7, mahalla_id=None)
    with pytest.raises(NoFeedScope):
        scope_for("guest", post_id=None, mahalla_id=None)


@pytest.mark.parametrize(
    "fields",
    [{}, {"everything": True, "post_id": 1}, {"post_id": 1, "mahalla_id": 2}],
)
def test_a_scope_is_exactly_one_thing(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FeedScope(**fields)  # type: ignore[arg-type]


def test_condition_is_none_for_everything() -> None:
    assert scope_condition(EVERYTHING) is None


async def test_sql_condition_agrees_with_the_rule(session_factory: SessionFactory) -> None:
    """Rows with every (post, mahalla) combination, read through SQL in every kind of scope."""
    async with unit_of_work(session_factory) as session:
        posts = [(await create_post(session)).id for _ in range(3)]
        mahallas = [(await create_mahalla(session)).id for _ in range(3)]
        rows: list[dict[str, Any]] = [
            {"at": utcnow(), "type": "post.updated", "data": {}, "post_id": p, "mahalla_id": m}
            for p in [None, *posts]
            for m in [None, *mahallas]
        ]
        await session.execute(insert(FeedItem), rows)

    scopes = [
        EVERYTHING,
        *(FeedScope(post_id=post_id) for post_id in posts),
        *(FeedScope(mahalla_id=mahalla_id) for mahalla_id in mahallas),
        FeedScope(post_id=10_000),  # a post with no rows at all
    ]
    async with session_factory() as session:
        connection = await session.connection()
        everything = await read_rows(connection, after=0, limit=1000)
        assert len(everything) == len(rows)
        for scope in scopes:
            through_sql = await read_rows(connection, after=0, scope=scope, limit=1000)
            expected = [record.seq for record in everything if record.visible_in(scope)]
            assert [record.seq for record in through_sql] == expected
