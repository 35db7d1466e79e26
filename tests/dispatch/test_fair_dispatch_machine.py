"""The DESIGN §4 fair-dispatch rules as a Hypothesis state machine (issue 15).

``DispatchMachine`` (presses of real alerts and drills, answers, deadlines, posts coming and
going, the console) runs with long waits added, so refusal pauses end while alerts wait. On top
of the §6 invariants it checks:

* after every dispatch pass, no waiting alert (new or escalated) has a post that
  ``eligibility.explain`` calls eligible: the engine served every alert it could. This is the
  dispatcher agreeing with the console's "why eligible" list, and it holds the rules: an
  escalated alert is re-offered once a post's pause ends; a post eligible for a waiting real
  alert gets no drill (the list says ``kept_for_real``); a post holding a drill is served real
  alerts;
* no pending drill offer is held by a post eligible for a waiting real alert;
* no post is offered, by dispatch itself, an alert it is paused for (a dispatcher's own
  assignment may choose any post);
* a post that holds a drill and accepts a real alert holds the real one afterwards, and its
  drill is back in the queue, "pre-empted by a real alert".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select

from alertnet.dispatch import actions
from alertnet.dispatch.eligibility import Target, explain, judge, read_facts
from alertnet.dispatch.matching import ENGINE_ACTOR, PREEMPTED
from alertnet.dispatch.policy import WAITING_STATES
from alertnet.models import Alert, AlertAudit, Offer, Post

from .test_dispatch_machine import POST_HOMES, SPOTS, DispatchMachine
from .test_dispatch_machine import template_db as template_db  # the fixture

CATEGORIES = ["panic", "fire", "medical", "intrusion", "tamper"]


class FairDispatchMachine(DispatchMachine):
    def __init__(self) -> None:
        super().__init__()
        self.preemptions = 0

    # -- the checks ----------------------------------------------------------------------

    def served_everything(self) -> None:
        """Right after a dispatch pass: nothing waits that an eligible post could take."""

        async def check() -> list[str]:
            problems: list[str] = []
            async with self.session_factory() as session:
                waiting = await session.scalars(
                    select(Alert).where(
                        Alert.state.in_(WAITING_STATES), Alert.category != "trouble"
                    )
                )
                for alert in waiting.all():
                    rows = await explain(session, alert, self.now, self.dispatcher.policy)
                    problems += [
                        f"{alert.state} {'drill' if alert.drill else 'alert'} {alert.id} "
                        f"left waiting though {row['callsign']} is {row['reason']}"
                        for row in rows
                        if row["eligible"]
                    ]
            return problems

        problems = self.run(check())
        assert not problems, problems
        self.no_drill_offer_to_a_post_owed_a_real_alert()

    def no_drill_offer_to_a_post_owed_a_real_alert(self) -> None:
        """Right after a dispatch pass (a round refused in between may leave one for a
        moment): no post holds a drill offer while a real alert it is eligible for waits."""

        async def check() -> list[str]:
            problems: list[str] = []
            async with self.session_factory() as session:
                drill_offers = (
                    await session.execute(
                        select(Offer.post_id, Offer.alert_id)
                        .join(Alert, Alert.id == Offer.alert_id)
                        .where(Offer.state == "pending", Alert.drill.is_(True))
                    )
                ).all()
                real_waiting = (
                    await session.scalars(
                        select(Alert).where(
                            Alert.state.in_(WAITING_STATES),
                            Alert.drill.is_(False),
                            Alert.category != "trouble",
                        )
                    )
                ).all()
                for post_id, drill_id in drill_offers:
                    for alert in real_waiting:
                        [facts] = await read_facts(session, alert.id, [post_id])
                        verdict = judge(facts, Target.of(alert), self.now, self.dispatcher.policy)
                        if verdict.eligible:
                            problems.append(
                                f"post {post_id} holds drill {drill_id}'s offer while "
                                f"alert {alert.id} waits for it"
                            )
            return problems

        problems = self.run(check())
        assert not problems, problems

    @invariant()
    def dispatch_never_offers_a_paused_post(self) -> None:
        policy = self.dispatcher.policy

        async def offers() -> tuple[list[Any], set[int]]:
            """Every offer, and those dispatch made itself: each offer of an alert has its own
            audit row (to ``offered``), in the same order."""
            async with self.session_factory() as session:
                rows = (await session.execute(select(Offer).order_by(Offer.id))).scalars().all()
                audits = (
                    await session.execute(
                        select(AlertAudit.alert_id, AlertAudit.actor)
                        .where(AlertAudit.to_state == "offered")
                        .order_by(AlertAudit.id)
                    )
                ).all()
            actors: dict[int, list[str]] = {}
            for alert_id, actor in audits:
                actors.setdefault(alert_id, []).append(actor)
            by_dispatch: set[int] = set()
            made: dict[int, int] = {}
            for offer in rows:
                index = made.get(offer.alert_id, 0)
                made[offer.alert_id] = index + 1
                if actors[offer.alert_id][index] == ENGINE_ACTOR:
                    by_dispatch.add(offer.id)
            return list(rows), by_dispatch

        rows, by_dispatch = self.run(offers())
        pauses = {"declined": policy.decline_pause_s, "expired": policy.expiry_pause_s}
        for offer in rows:
            if offer.id not in by_dispatch:
                continue  # a dispatcher's own assignment
            for earlier in rows:
                if earlier.id >= offer.id or earlier.state not in pauses:
                    continue
                if (earlier.alert_id, earlier.post_id) != (offer.alert_id, offer.post_id):
                    continue
                assert earlier.decided_at is not None
                paused_s = (offer.offered_at - earlier.decided_at).total_seconds()
                assert paused_s >= pauses[earlier.state], (
                    f"offer {offer.id} of alert {offer.alert_id} to post {offer.post_id} "
                    f"{paused_s:.0f} s after it {earlier.state} it"
                )

    # -- rules: the parent's, with the pass checked, and long waits ----------------------

    @rule(spot=st.sampled_from(SPOTS), category=st.sampled_from(CATEGORIES), drill=st.booleans())
    def press(self, spot: tuple[int, int], category: str, drill: bool) -> None:
        DispatchMachine.press(self, spot, category, drill)
        self.served_everything()

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
        DispatchMachine.time_passes(self, seconds, report)
        self.served_everything()

    @rule(seconds=st.sampled_from([121, 601]))
    def long_wait(self, seconds: int) -> None:
        """Minutes go by (refusal pauses end); every tablet on duty keeps reporting where it
        is, then a dispatch pass runs."""
        self.now_s += seconds

        async def report() -> None:
            async with self.session_factory.begin() as session:
                for post in await session.scalars(select(Post).where(Post.status != "off_duty")):
                    post.location_at = self.now

        self.run(report())
        self.run(self.dispatcher.step(now=self.now))
        self.served_everything()

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        offer_id, post_id = data.draw(st.sampled_from(self.pending))

        async def before() -> tuple[int | None, bool]:
            async with self.session_factory() as session:
                held = await session.scalar(
                    select(Alert.id).where(
                        Alert.post_id == post_id,
                        Alert.state.in_(("accepted", "on_scene")),
                        Alert.drill.is_(True),
                    )
                )
                offered_real = await session.scalar(
                    select(Alert.drill.is_(False))
                    .join(Offer, Offer.alert_id == Alert.id)
                    .where(Offer.id == offer_id)
                )
                return held, bool(offered_real)

        held_drill, offered_real = self.run(before())
        self.act(lambda s: actions.accept(s, offer_id, post_id, "post", now=self.now))

        async def after() -> tuple[str | None, Any, list[str]]:
            async with self.session_factory() as session:
                offer_state = await session.scalar(select(Offer.state).where(Offer.id == offer_id))
                drill = await session.get(Alert, held_drill) if held_drill else None
                reasons = (
                    list(
                        await session.scalars(
                            select(AlertAudit.reason).where(AlertAudit.alert_id == held_drill)
                        )
                    )
                    if held_drill
                    else []
                )
                return offer_state, drill, reasons

        offer_state, drill, reasons = self.run(after())
        if held_drill is not None and offered_real and offer_state == "accepted":
            assert drill is not None and drill.post_id != post_id, drill
            assert drill.state in ("new", "offered", "escalated"), drill.state
            assert any(reason.startswith(PREEMPTED) for reason in reasons), reasons
            self.preemptions += 1


@pytest.fixture
def machine_dirs(template_db: Path, tmp_path: Path) -> Iterator[None]:
    FairDispatchMachine.template = template_db
    FairDispatchMachine.workdir = tmp_path
    yield


def test_fair_dispatch_state_machine(machine_dirs: None) -> None:
    run_state_machine_as_test(
        FairDispatchMachine,
        settings=settings(
            max_examples=25,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
