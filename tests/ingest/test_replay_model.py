"""Hypothesis state machine: the replay window plus database dedup against a simple model.

The model remembers every counter ever processed and the highest one. A copy of a processed
counter is a duplicate (acknowledged, never processed twice) whether it falls inside the
64-counter window or below it; an unseen counter above or inside the window is new; an unseen
counter below the window is a replay. Restarts rebuild the pipeline from the database.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from sqlalchemy import func, select

from alertnet.db import create_engine, create_session_factory, migrate, unit_of_work
from alertnet.ingest.pipeline import Disposition, Pipeline, RawUplink
from alertnet.metrics import Metrics
from alertnet.models import Device, Event, Transport
from alertnet.protocol import EventCode, Uplink
from tests.ingest.helpers import EUI, KEY

WINDOW = 64


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "template.db"
    migrate(f"sqlite+aiosqlite:///{path}")
    return path


class ReplayDedupMachine(RuleBasedStateMachine):
    template: Path
    workdir: Path

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.processed: set[int] = set()
        self.highest = -1
        self.stored_events = 0

    @initialize()
    def start(self) -> None:
        path = self.workdir / f"run-{id(self)}.db"
        shutil.copy(self.template, path)
        self.url = f"sqlite+aiosqlite:///{path}"
        self.engine = create_engine(self.url)
        self.session_factory = create_session_factory(self.engine)

        async def add_device() -> None:
            async with unit_of_work(self.session_factory) as session:
                session.add(Device(eui=EUI, kind="panic_button", lat=41.3, lon=69.2, key=KEY))

        self.loop.run_until_complete(add_device())
        self.pipeline = Pipeline(self.session_factory, metrics=Metrics())

    def teardown(self) -> None:
        if hasattr(self, "engine"):
            self.loop.run_until_complete(self.engine.dispose())
        self.loop.close()

    def expected(self, counter: int) -> Disposition:
        if counter in self.processed:
            return Disposition.DUPLICATE
        if counter > self.highest - WINDOW:
            return Disposition.NEW
        return Disposition.QUARANTINED

    def send(self, counters: list[int]) -> None:
        raws = [
            RawUplink(Uplink.build(KEY, EUI, c, EventCode.PANIC).to_bytes(), Transport.MQTT)
            for c in counters
        ]
        result = self.loop.run_until_complete(self.pipeline.process(raws))
        for counter, outcome in zip(counters, result.outcomes, strict=True):
            want = self.expected(counter)
            assert outcome.disposition is want, (counter, outcome, self.highest)
            if want is Disposition.NEW:
                self.processed.add(counter)
                self.highest = max(self.highest, counter)
                self.stored_events += 1

    @rule(step=st.integers(1, 80))
    def deliver(self, step: int) -> None:
        self.send([self.highest + step])

    @rule(data=st.data())
    def redeliver(self, data: st.DataObject) -> None:
        if self.processed:
            self.send([data.draw(st.sampled_from(sorted(self.processed)))])

    @rule(back=st.integers(0, WINDOW - 1))
    def reorder_within_window(self, back: int) -> None:
        if self.highest >= back:
            self.send([self.highest - back])

    @rule(below=st.integers(WINDOW, 300))
    def replay_below_window(self, below: int) -> None:
        if self.highest - below >= 0:
            self.send([self.highest - below])

    @rule(counters=st.lists(st.integers(0, 400), min_size=2, max_size=8))
    def batch_with_copies(self, counters: list[int]) -> None:
        """Several counters in one transaction, copies included: the first copy is new."""
        self.send(counters)

    @rule()
    def restart(self) -> None:
        self.loop.run_until_complete(self.engine.dispose())
        self.engine = create_engine(self.url)
        self.session_factory = create_session_factory(self.engine)
        self.pipeline = Pipeline(self.session_factory, metrics=Metrics())

    @invariant()
    def one_event_per_processed_counter(self) -> None:
        if not hasattr(self, "session_factory"):
            return

        async def count() -> int:
            async with self.session_factory() as session:
                return int(await session.scalar(select(func.count()).select_from(Event)) or 0)

        assert self.loop.run_until_complete(count()) == self.stored_events == len(self.processed)


def test_replay_window_and_dedup_match_the_model(template_db: Path, tmp_path: Path) -> None:
    ReplayDedupMachine.template = template_db
    ReplayDedupMachine.workdir = tmp_path
    runner = ReplayDedupMachine.TestCase
    runner.settings = settings(
        max_examples=25,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()
