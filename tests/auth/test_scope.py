"""The caller's scope (``alertnet.auth.scope``): each role's SQL conditions on real databases,
the feed predicate on sample rows (and its SQL twin agreeing with it), the checks, and the
premises fields wave 2 will serve."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.auth.scope import ALL_PREMISES_FIELDS, PremisesField, Reach, Scope
from alertnet.db import unit_of_work
from alertnet.errors import Forbidden
from alertnet.models import Alert, Device, FeedItem, Mahalla, Role, utcnow
from alertnet.realtime.hub import read_rows
from tests.support.factories import (
    create_alert,
    create_device,
    create_mahalla,
    create_offer,
    create_post,
)

SessionFactory = async_sessionmaker[AsyncSession]

ADMIN = Scope(Role.ADMIN, user_id=1, username="admin1")
DISPATCHER = Scope(Role.DISPATCHER, user_id=2, username="dispatch1")
POST_7 = Scope(Role.POST, user_id=3, username="post7", post_id=7)
OBSERVER_3 = Scope(Role.OBSERVER, user_id=4, username="observer3", mahalla_id=3)
# Bound to nothing: the database refuses such accounts; the scope gives them nothing anyway.
UNBOUND_POST = Scope(Role.POST, user_id=5, username="post0")
UNBOUND_OBSERVER = Scope(Role.OBSERVER, user_id=6, username="observer0")
UNBOUND = (UNBOUND_POST, UNBOUND_OBSERVER)


def post_scope(post_id: int) -> Scope:
    return Scope(Role.POST, user_id=100 + post_id, username=f"post{post_id}", post_id=post_id)


def observer_scope(mahalla_id: int) -> Scope:
    return Scope(
        Role.OBSERVER, user_id=200 + mahalla_id, username="observer", mahalla_id=mahalla_id
    )


# --- who reaches what -----------------------------------------------------------------------


def test_each_role_reaches_what_its_binding_allows() -> None:
    assert ADMIN.reach is DISPATCHER.reach is Reach.EVERYTHING
    assert POST_7.reach is Reach.OWN_POST
    assert OBSERVER_3.reach is Reach.OWN_MAHALLA
    assert UNBOUND_POST.reach is UNBOUND_OBSERVER.reach is Reach.NOTHING
    # A binding of the wrong kind gives nothing either.
    assert Scope(Role.POST, user_id=8, username="p", mahalla_id=3).reach is Reach.NOTHING
    assert Scope(Role.OBSERVER, user_id=9, username="o", post_id=7).reach is Reach.NOTHING


def test_an_unknown_role_has_no_scope() -> None:
    with pytest.raises(ValueError):
        Scope("guest", user_id=1, username="guest")  # type: ignore[arg-type]
    assert Scope("observer", user_id=1, username="o", mahalla_id=3).role is Role.OBSERVER  # type: ignore[arg-type]


# --- the feed: the predicate on sample rows, and its SQL twin --------------------------------


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
def test_the_feed_predicate(
    row_post: int | None,
    row_mahalla: int | None,
    everything: bool,
    post_7: bool,
    mahalla_3: bool,
) -> None:
    row = {"post_id": row_post, "mahalla_id": row_mahalla}
    assert ADMIN.sees_feed_row(**row) is everything
    assert DISPATCHER.sees_feed_row(**row) is everything
    assert POST_7.sees_feed_row(**row) is post_7
    assert OBSERVER_3.sees_feed_row(**row) is mahalla_3
    for scope in UNBOUND:
        assert scope.sees_feed_row(**row) is False


def test_only_a_scope_that_sees_something_follows_the_feed() -> None:
    for scope in (ADMIN, DISPATCHER, POST_7, OBSERVER_3):
        scope.ensure_follows_feed()
    with pytest.raises(Forbidden, match="post0 is not bound to a post"):
        UNBOUND_POST.ensure_follows_feed()
    with pytest.raises(Forbidden, match="observer0 is not bound to a mahalla"):
        UNBOUND_OBSERVER.ensure_follows_feed()


async def test_the_feed_sql_agrees_with_the_predicate(session_factory: SessionFactory) -> None:
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
        ADMIN,
        DISPATCHER,
        *(post_scope(post_id) for post_id in posts),
        *(observer_scope(mahalla_id) for mahalla_id in mahallas),
        post_scope(10_000),  # a post with no rows at all
        *UNBOUND,
    ]
    async with session_factory() as session:
        connection = await session.connection()
        everything = await read_rows(connection, after=0, limit=1000)
        assert len(everything) == len(rows)
        for scope in scopes:
            through_sql = await read_rows(connection, after=0, scope=scope, limit=1000)
            expected = [record.seq for record in everything if record.visible_in(scope)]
            assert [record.seq for record in through_sql] == expected
        assert len(await read_rows(connection, after=0, scope=ADMIN, limit=1000)) == len(rows)
        assert not await read_rows(connection, after=0, scope=UNBOUND_POST, limit=1000)


# --- alerts, devices and mahallas through SQL ----------------------------------------------


@dataclass(frozen=True)
class Town:
    """Two mahallas (and the no-mahalla case), two posts, devices and alerts between them."""

    mahalla_1: int
    mahalla_2: int
    post_1: int
    post_2: int
    devices: dict[str, int]
    alerts: dict[str, int]


async def build_town(session_factory: SessionFactory) -> Town:
    async with unit_of_work(session_factory) as session:
        m1, m2 = await create_mahalla(session), await create_mahalla(session)
        p1, p2 = await create_post(session), await create_post(session)
        d1 = await create_device(session, mahalla_id=m1.id)
        d2 = await create_device(session, mahalla_id=m2.id)
        d0 = await create_device(session)  # in no mahalla
        held_by_1 = await create_alert(session, d1, state="accepted", post_id=p1.id)
        declined_by_1 = await create_alert(session, d1, category="fire", state="new")
        await create_offer(session, declined_by_1, p1, state="declined")
        offered_to_2 = await create_alert(session, d2, state="offered")
        await create_offer(session, offered_to_2, p2)
        # Held by post 2 now, after post 1 let an offer of it expire.
        expired_for_1 = await create_alert(
            session, d2, category="medical", state="accepted", post_id=p2.id
        )
        await create_offer(session, expired_for_1, p1, state="expired")
        await create_offer(session, expired_for_1, p2, state="accepted")
        nowhere = await create_alert(session, d0)
        return Town(
            mahalla_1=m1.id,
            mahalla_2=m2.id,
            post_1=p1.id,
            post_2=p2.id,
            devices={"d1": d1.id, "d2": d2.id, "d0": d0.id},
            alerts={
                "held_by_1": held_by_1.id,
                "declined_by_1": declined_by_1.id,
                "offered_to_2": offered_to_2.id,
                "expired_for_1": expired_for_1.id,
                "nowhere": nowhere.id,
            },
        )


def town_scopes(town: Town) -> dict[str, Scope]:
    return {
        "admin": ADMIN,
        "dispatcher": DISPATCHER,
        "post_1": post_scope(town.post_1),
        "post_2": post_scope(town.post_2),
        "observer_1": observer_scope(town.mahalla_1),
        "observer_2": observer_scope(town.mahalla_2),
        "unbound_post": UNBOUND_POST,
        "unbound_observer": UNBOUND_OBSERVER,
    }


EVERY_ALERT = {"held_by_1", "declined_by_1", "offered_to_2", "expired_for_1", "nowhere"}
VISIBLE_ALERTS = {
    "admin": EVERY_ALERT,
    "dispatcher": EVERY_ALERT,
    "post_1": {"held_by_1", "declined_by_1", "expired_for_1"},
    "post_2": {"offered_to_2", "expired_for_1"},
    "observer_1": {"held_by_1", "declined_by_1"},
    "observer_2": {"offered_to_2", "expired_for_1"},
    "unbound_post": set(),
    "unbound_observer": set(),
}


async def test_each_role_reads_its_alerts(session_factory: SessionFactory) -> None:
    town = await build_town(session_factory)
    names = {alert_id: name for name, alert_id in town.alerts.items()}
    async with session_factory() as session:
        for who, scope in town_scopes(town).items():
            ids = await session.scalars(select(Alert.id).where(scope.alerts()))
            assert {names[alert_id] for alert_id in ids} == VISIBLE_ALERTS[who], who


async def test_a_single_alert_is_visible_exactly_when_the_list_has_it(
    session_factory: SessionFactory,
) -> None:
    town = await build_town(session_factory)
    async with session_factory() as session:
        for who, scope in town_scopes(town).items():
            for name, alert_id in town.alerts.items():
                if name in VISIBLE_ALERTS[who]:
                    await scope.ensure_sees_alert(session, alert_id)
                    continue
                with pytest.raises(Forbidden):
                    await scope.ensure_sees_alert(session, alert_id)
        with pytest.raises(Forbidden, match="never offered to your post"):
            await post_scope(town.post_2).ensure_sees_alert(session, town.alerts["held_by_1"])
        with pytest.raises(Forbidden, match="may not see this mahalla"):
            await observer_scope(town.mahalla_1).ensure_sees_alert(session, town.alerts["nowhere"])


async def test_each_role_reads_its_devices_and_mahallas(session_factory: SessionFactory) -> None:
    town = await build_town(session_factory)
    device_names = {device_id: name for name, device_id in town.devices.items()}
    mahalla_names = {town.mahalla_1: "m1", town.mahalla_2: "m2"}
    expected_devices = {
        "admin": {"d0", "d1", "d2"},
        "dispatcher": {"d0", "d1", "d2"},
        "observer_1": {"d1"},
        "observer_2": {"d2"},
    }
    expected_mahallas = {
        "admin": {"m1", "m2"},
        "dispatcher": {"m1", "m2"},
        "observer_1": {"m1"},
        "observer_2": {"m2"},
    }
    async with session_factory() as session:
        for who, scope in town_scopes(town).items():
            devices = await session.scalars(select(Device.id).where(scope.devices()))
            assert {device_names[d] for d in devices} == expected_devices.get(who, set()), who
            mahallas = await session.scalars(select(Mahalla.id).where(scope.mahallas()))
            assert {mahalla_names[m] for m in mahallas} == expected_mahallas.get(who, set()), who


# --- checks -----------------------------------------------------------------------------------


def test_ensure_sees_mahalla() -> None:
    for scope in (ADMIN, DISPATCHER):
        scope.ensure_sees_mahalla(3)
        scope.ensure_sees_mahalla(None)
    OBSERVER_3.ensure_sees_mahalla(3)
    for scope, mahalla_id in [
        (OBSERVER_3, 4),
        (OBSERVER_3, None),
        (POST_7, 3),
        *((s, 3) for s in UNBOUND),
    ]:
        assert not scope.sees_mahalla(mahalla_id)
        with pytest.raises(Forbidden, match="may not see this mahalla"):
            scope.ensure_sees_mahalla(mahalla_id)


def test_only_the_posts_own_crew_acts_for_it() -> None:
    POST_7.ensure_acts_for_post(7)
    assert POST_7.own_post_id() == 7
    for scope, post_id in [(POST_7, 8), (POST_7, None), (ADMIN, 7), (DISPATCHER, 7)]:
        with pytest.raises(Forbidden, match="does not act for this post"):
            scope.ensure_acts_for_post(post_id)
    for scope in (OBSERVER_3, UNBOUND_POST):
        with pytest.raises(Forbidden):
            scope.ensure_acts_for_post(7)
    with pytest.raises(Forbidden, match="post0 is not bound to a post"):
        UNBOUND_POST.own_post_id()
    for scope in (ADMIN, DISPATCHER, OBSERVER_3):
        with pytest.raises(Forbidden, match="does not act for a post"):
            scope.own_post_id()


def test_mahalla_wide_reads_and_statistics() -> None:
    for scope in (ADMIN, DISPATCHER):
        scope.ensure_reads_area("the device list")
        scope.ensure_reads_statistics(per="mahalla")
        scope.ensure_reads_statistics(per="post")
    OBSERVER_3.ensure_reads_area("the device list")
    OBSERVER_3.ensure_reads_statistics(per="mahalla")
    with pytest.raises(Forbidden, match="own mahalla's figures only"):
        OBSERVER_3.ensure_reads_statistics(per="post")
    with pytest.raises(Forbidden, match="posts do not read the device list"):
        POST_7.ensure_reads_area("the device list")
    with pytest.raises(Forbidden, match="posts do not read statistics"):
        POST_7.ensure_reads_statistics()
    for scope in UNBOUND:
        with pytest.raises(Forbidden, match="is not bound to"):
            scope.ensure_reads_area("the device list")


# --- personal premises data (DESIGN §10), private unless named -------------------------------

PREMISES = {
    "ref": "CH-12",
    "owner": "A. Karimov",
    "address": "Chilonzor 9, flat 41",
    "street": "Chilonzor 9",
    "notes": "key with the neighbour, flat 40",
    "contacts": [{"name": "A. Karimov", "phone": "+998 90 123 45 67", "relation": "owner"}],
    "installer_pin": "1234",  # a field the scope has never heard of
}


@pytest.mark.parametrize("silent", [False, True])
@pytest.mark.parametrize("involved", [False, True])
def test_who_reads_which_premises_fields(involved: bool, silent: bool) -> None:
    for scope in (ADMIN, DISPATCHER):
        assert scope.premises_fields(involved=involved, silent=silent) == ALL_PREMISES_FIELDS
    observer = OBSERVER_3.premises_fields(involved=involved, silent=silent)
    assert observer == {PremisesField.STREET}
    post = POST_7.premises_fields(involved=involved, silent=silent)
    if not involved:
        assert post == frozenset()
    elif silent:
        assert post == {PremisesField.ADDRESS, PremisesField.STREET, PremisesField.NOTES}
    else:
        assert post == {
            PremisesField.ADDRESS,
            PremisesField.STREET,
            PremisesField.NOTES,
            PremisesField.CONTACTS,
        }
    for scope in UNBOUND:
        assert scope.premises_fields(involved=involved, silent=silent) == frozenset()


def test_observers_never_receive_people_data() -> None:
    for involved in (False, True):
        for silent in (False, True):
            view = OBSERVER_3.visible_premises(PREMISES, involved=involved, silent=silent)
            assert view == {"street": "Chilonzor 9"}


def test_visible_premises_drops_what_the_scope_does_not_name() -> None:
    console = DISPATCHER.visible_premises(PREMISES, involved=False, silent=False)
    assert "installer_pin" not in console
    assert console == {key: value for key, value in PREMISES.items() if key != "installer_pin"}
    silent_post = POST_7.visible_premises(PREMISES, involved=True, silent=True)
    assert set(silent_post) == {"address", "street", "notes"}
    assert POST_7.visible_premises(PREMISES, involved=False, silent=False) == {}
