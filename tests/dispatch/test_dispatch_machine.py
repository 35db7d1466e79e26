"""A Hypothesis state machine over presses, answers, deadlines, posts and the console.

After every step the DESIGN §6 invariants must hold: at most one pending offer per alert and
per post, at most one accepted/on-scene alert per post, and every open non-trouble alert is
offered (with its pending offer), held by a post, or escalated; trouble is never offered.

Runs on SQLite: each example gets a fresh copy of a migrated database file and its own event
loop (Hypothesis drives the steps synchronously).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from alertnet.db import create_engine, create_session_factory, migrate, unit_of_work
from alertnet.dispatch import actions, duty, policy
from alertnet.dispatch.notifier import RecordingNotifier
from alertnet.errors import AlertnetError
from alertnet.models import Alert, Offer, Post
from tests.support.database import sqlite_url
from tests.support.factories import create_alert, create_device

from .helpers import at, check_invariants, dispatcher, point

T = TypeVar("T")

# Where things happen, metres from the base point: alerts and posts share a small map, plus
# a far corner no post can reach from the centre.
SPOTS = [(0, 0), (0, 1_500), (2_000, -500), (-3_000, 2_000), (0, 12_000)]
POST_HOMES = [(0, 200), (1_000, 1_000), (-2_500, 1_500), (0, 11_500)]
CATEGORIES = ["panic", "fire", "medical", "intrusion", "tamper", "trouble"]
OPEN_STATES = ("new", "offered", "accepted", "on_scene", "escalated")


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file; each example starts from a copy. Alembic runs its own event
    loop, so it runs in a thread of its own."""
    path = tmp_path_factory.mktemp("machine") / "template.db"
    failure: list[BaseException] = []

    def run() -> None:
        try:
            migrate(sqlite_url(path))
        except BaseException as exc:  # pragma: no cover - surfaced below
            failure.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return path


class DispatchMachine(RuleBasedStateMachine):
    template: ClassVar[Path]
    workdir: ClassVar[Path]
    examples: ClassVar[int] = 0

    def __init__(self) -> None:
        super().__init__()
        DispatchMachine.examples += 1
        self.path = self.workdir / f"example-{DispatchMachine.examples}.db"
        shutil.copyfile(self.template, self.path)
        self.runner = asyncio.Runner(loop_factory=asyncio.new_event_loop)
        self.engine = create_engine(sqlite_url(self.path))
        self.session_factory = create_session_factory(self.engine)
        self.notifier = RecordingNotifier()
        self.dispatcher = dispatcher(self.session_factory, self.notifier)
        self.now_s = 0.0
        self.post_ids: list[int] = []
        self.refused: list[str] = []
        # What the database holds after the last step; rules draw from it.
        self.pending: list[tuple[int, int]] = []  # (offer id, post id)
        self.accepted: list[tuple[int, int]] = []  # (alert id, post id)
        self.active: list[tuple[int, int]] = []  # accepted or on scene
        self.open: list[int] = []

    def run(self, coroutine: Awaitable[T]) -> T:
        async def wrapped() -> T:
            return await coroutine

        return self.runner.run(wrapped())

    def teardown(self) -> None:
        try:
            self.run(self.engine.dispose())
        finally:
            self.runner.close()
            self.path.unlink(missing_ok=True)

    # -- helpers -----------------------------------------------------------------------

    @property
    def now(self) -> Any:
        return at(self.now_s)

    def act(self, action: Any) -> None:
        """A tablet or console action; a domain refusal (409/403/404/422) is a fine answer."""
        try:
            self.run(self.dispatcher.perform(action))
        except AlertnetError as exc:
            self.refused.append(type(exc).__name__)

    # -- rules ---------------------------------------------------------------------------

    @initialize()
    def posts(self) -> None:
        async def create() -> list[int]:
            ids = []
            async with unit_of_work(self.session_factory) as session:
                for i, (north_m, east_m) in enumerate(POST_HOMES):
                    lat, lon = point(north_m, east_m)
                    post = Post(
                        callsign=f"P{i}", lat=lat, lon=lon, status="available", location_at=self.now
                    )
                    session.add(post)
                    await session.flush()
                    ids.append(post.id)
            return ids

        self.post_ids = self.run(create())

    @rule(spot=st.sampled_from(SPOTS), category=st.sampled_from(CATEGORIES), drill=st.booleans())
    def press(self, spot: tuple[int, int], category: str, drill: bool) -> None:
        async def create() -> None:
            lat, lon = point(*spot)
            async with unit_of_work(self.session_factory) as session:
                device = await create_device(session, lat=lat, lon=lon)
                await create_alert(
                    session,
                    device,
                    category=category,
                    opened_at=self.now,
                    drill=drill,
                    trouble="mains_lost" if category == "trouble" else None,
                )

        self.run(create())
        self.run(self.dispatcher.step(now=self.now))

    @rule(
        seconds=st.sampled_from([1, 12, 31]),
        report=st.none()
        | st.tuples(
            st.integers(0, len(POST_HOMES) - 1),
            st.sampled_from(SPOTS),
            st.sampled_from([False, False, True]),
        ),
    )
    def time_passes(self, seconds: int, report: tuple[int, tuple[int, int], bool] | None) -> None:
        """Time goes by (31 s lets every pending offer time out), a post may report in or go
        off duty, and a dispatch pass runs."""
        self.now_s += seconds
        if report is not None:
            index, spot, off_duty = report
            if off_duty:
                self.post_off_duty(index)
            else:
                self.post_available(index, spot)
        self.run(self.dispatcher.step(now=self.now))

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        offer_id, post_id = data.draw(st.sampled_from(self.pending))
        self.act(lambda s: actions.accept(s, offer_id, post_id, "post", now=self.now))

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), reason=st.sampled_from(["", "busy", "too far"]))
    def decline(self, data: st.DataObject, reason: str) -> None:
        offer_id, post_id = data.draw(st.sampled_from(self.pending))
        self.act(lambda s: actions.decline(s, offer_id, post_id, reason, "post", now=self.now))

    @precondition(lambda self: bool(self.accepted))
    @rule(data=st.data())
    def arrive(self, data: st.DataObject) -> None:
        alert_id, post_id = data.draw(st.sampled_from(self.accepted))
        self.act(lambda s: actions.arrive(s, alert_id, post_id, "post", now=self.now))

    @precondition(lambda self: bool(self.active))
    @rule(data=st.data(), outcome=st.sampled_from(sorted(policy.OUTCOMES)))
    def close(self, data: st.DataObject, outcome: str) -> None:
        alert_id, post_id = data.draw(st.sampled_from(self.active))
        self.act(lambda s: actions.close(s, alert_id, post_id, outcome, None, "post", now=self.now))

    def post_available(self, index: int, spot: tuple[int, int]) -> None:
        """The tablet reports in (status available unless busy, a fresh fix somewhere)."""
        post_id = self.post_ids[index]

        async def report(session: Any) -> Any:
            post = await session.get(Post, post_id)
            if post.status == "off_duty":
                post.status = "available"
            post.lat, post.lon = point(*spot)
            post.location_at = self.now
            return await duty.post_available(session, post_id, now=self.now)

        self.act(report)

    def post_off_duty(self, index: int) -> None:
        post_id = self.post_ids[index]

        async def leave(session: Any) -> Any:
            notices = await duty.post_unavailable(session, post_id, "post", now=self.now)
            post = await session.get(Post, post_id)
            post.status = "off_duty"
            return notices

        self.act(leave)

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data(), index=st.integers(0, len(POST_HOMES) - 1))
    def assign(self, data: st.DataObject, index: int) -> None:
        alert_id = data.draw(st.sampled_from(self.open))
        post_id = self.post_ids[index]
        self.act(lambda s: actions.assign(s, alert_id, post_id, "console", now=self.now))

    @precondition(lambda self: bool(self.open))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        alert_id = data.draw(st.sampled_from(self.open))
        self.act(lambda s: actions.cancel(s, alert_id, "console says so", "console", now=self.now))

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def dispatch_invariants(self) -> None:
        async def check() -> list[str]:
            async with self.session_factory() as session:
                problems = await check_invariants(session)
                self.pending = [
                    (offer_id, post_id)
                    for offer_id, post_id in await session.execute(
                        select(Offer.id, Offer.post_id).where(Offer.state == "pending")
                    )
                ]
                held = (
                    await session.execute(
                        select(Alert.id, Alert.post_id, Alert.state).where(
                            Alert.state.in_(("accepted", "on_scene"))
                        )
                    )
                ).all()
                self.active = [(alert_id, post_id) for alert_id, post_id, _ in held]
                self.accepted = [(a, p) for a, p, state in held if state == "accepted"]
                self.open = list(
                    await session.scalars(select(Alert.id).where(Alert.state.in_(OPEN_STATES)))
                )
                return problems

        problems = self.run(check())
        assert not problems, problems

    @invariant()
    def devices_hear_progress_in_order(self) -> None:
        seen: dict[tuple[int, int], int] = {}
        for notice in self.notifier.notices:
            key = (notice.device_id, notice.counter)
            assert notice.state > seen.get(key, 1), (key, notice.state, seen.get(key))
            seen[key] = int(notice.state)


@pytest.fixture
def machine_dirs(template_db: Path, tmp_path: Path) -> Iterator[None]:
    DispatchMachine.template = template_db
    DispatchMachine.workdir = tmp_path
    yield


def test_dispatch_state_machine(machine_dirs: None) -> None:
    run_state_machine_as_test(
        DispatchMachine,
        settings=settings(
            max_examples=15,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
