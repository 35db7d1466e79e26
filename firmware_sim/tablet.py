"""Simulated patrol tablets and a dispatcher's eye on the realtime stream (DESIGN §5).

A ``Tablet`` is a mobile police post's app: it logs in (``POST /api/v1/auth/login``), goes
``available``, drives along a street grid reporting ``/posts/me/location``, follows its
WebSocket stream (``/api/v1/stream?after=SEQ&token=…``, reconnecting from the last ``seq``)
and answers each ``offer.created``: accept after a reaction delay, decline, or ignore it
(the deadline then moves the alert on), with set probabilities. An accepted alert is driven
to, ``arrive``d at and ``close``d. The first offer of each alert times press → offer.

``AlertWatcher`` follows the same stream as a dispatcher and checks DESIGN §6.2 from the
outside: at most one open alert per (device, category) at any time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import websockets
from websockets.asyncio.client import connect

from firmware_sim.fleet import Geo, distance_m, offset
from firmware_sim.stats import Recorder

__all__ = ["AlertWatcher", "Tablet", "TabletBehaviour", "TabletSpec", "parse_tablets"]

log = logging.getLogger(__name__)

_RECONNECT_FIRST_S: Final = 0.2
_RECONNECT_MAX_S: Final = 5.0
_CLOSED_STATES: Final = frozenset({"closed", "cancelled"})
_OUTCOMES: Final = ("confirmed", "false_alarm", "no_one_found")


@dataclass(frozen=True, slots=True)
class TabletSpec:
    """The login of one post's tablet."""

    callsign: str
    username: str
    password: str


def parse_tablets(text: str) -> list[TabletSpec]:
    """``CALLSIGN:USERNAME:PASSWORD`` items separated by commas or newlines."""
    specs: list[TabletSpec] = []
    for item in text.replace("\n", ",").split(","):
        item = item.strip()
        if not item:
            continue
        parts = item.split(":", 2)
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"tablet {item!r}: expected CALLSIGN:USERNAME:PASSWORD")
        specs.append(TabletSpec(*parts))
    return specs


@dataclass(frozen=True, slots=True)
class TabletBehaviour:
    """How the crews behave: answer probabilities, reaction time, driving, time on scene."""

    accept_p: float = 0.85
    decline_p: float = 0.10  # the rest of the offers are ignored until their deadline
    reaction_median_s: float = 3.0
    speed_mps: float = 12.0
    location_interval_s: float = 5.0
    block_m: float = 200.0  # street grid spacing
    scene_s: float = 5.0

    def __post_init__(self) -> None:
        if not (0 <= self.accept_p and 0 <= self.decline_p and self.accept_p + self.decline_p <= 1):
            raise ValueError("accept_p + decline_p must be within [0, 1]")


def _ws_url(base_url: str, path: str, query: dict[str, str]) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, path, urlencode(query), ""))


async def _login(
    http: httpx.AsyncClient, username: str, password: str, gate: asyncio.Semaphore | None = None
) -> str:
    """A token for ``username``. ``gate`` bounds concurrent logins (password hashing is slow
    by design); a timeout or a 5xx is retried twice."""
    for attempt in range(3):
        try:
            async with gate or contextlib.nullcontext():
                response = await http.post(
                    "/api/v1/auth/login",
                    json={"username": username, "password": password},
                    timeout=30.0,
                )
        except httpx.TimeoutException:
            if attempt == 2:
                raise
            continue
        if response.status_code >= 500 and attempt < 2:
            await asyncio.sleep(1.0)
            continue
        response.raise_for_status()
        token = response.json().get("token")
        if not isinstance(token, str):
            raise ValueError("login answered no token")
        return token
    raise AssertionError("unreachable")


async def _stream(base_url: str, token: str) -> AsyncIterator[dict[str, Any]]:
    """Feed messages forever, reconnecting with ``after`` the last seq seen."""
    after: int | None = None
    backoff_s = _RECONNECT_FIRST_S
    while True:
        query = {"token": token}
        if after is not None:
            query["after"] = str(after)
        try:
            async with connect(_ws_url(base_url, "/api/v1/stream", query)) as socket:
                backoff_s = _RECONNECT_FIRST_S
                async for text in socket:
                    message = json.loads(text)
                    if not isinstance(message, dict):
                        continue
                    seq = message.get("seq")
                    if isinstance(seq, int):
                        after = seq
                    yield message
        except (OSError, websockets.WebSocketException) as exc:
            log.info("stream lost: %s", exc)
        await asyncio.sleep(backoff_s)
        backoff_s = min(backoff_s * 2, _RECONNECT_MAX_S)


@dataclass(slots=True)
class _Position:
    north_m: float
    east_m: float


@dataclass(slots=True)
class _Job:
    offer_id: int
    alert_id: int
    target: Geo
    drill: bool


@dataclass(slots=True)
class TabletStats:
    offers: int = 0
    accepted: int = 0
    declined: int = 0
    ignored: int = 0
    closed: int = 0
    errors: int = 0
    api_status: dict[str, int] = field(default_factory=dict)


class Tablet:
    """One post's tablet; ``run()`` until cancelled."""

    def __init__(
        self,
        spec: TabletSpec,
        base_url: str,
        recorder: Recorder,
        *,
        centre: Geo,
        radius_m: float,
        rng: random.Random,
        behaviour: TabletBehaviour | None = None,
        login_gate: asyncio.Semaphore | None = None,
    ) -> None:
        self.spec = spec
        self._login_gate = login_gate
        self._base_url = base_url.rstrip("/")
        self._recorder = recorder
        self._centre = centre
        self._radius_m = radius_m
        self._rng = rng
        self.behaviour = behaviour or TabletBehaviour()
        angle = rng.uniform(0, 2 * math.pi)
        r = radius_m * math.sqrt(rng.random())
        self._position = self._snap(_Position(r * math.cos(angle), r * math.sin(angle)))
        self._destination = self._random_corner()
        self._job: _Job | None = None
        self._job_arrived = asyncio.Event()
        self.stats = TabletStats()
        self.ready = asyncio.Event()
        self._tasks: asyncio.TaskGroup | None = None
        self._seen_offers: set[int] = set()

    @property
    def busy(self) -> bool:
        """Handling an accepted alert (driving to it or on scene)."""
        return self._job is not None

    @property
    def location(self) -> Geo:
        return offset(self._centre, self._position.north_m, self._position.east_m)

    def _snap(self, position: _Position) -> _Position:
        block = self.behaviour.block_m
        return _Position(
            round(position.north_m / block) * block, round(position.east_m / block) * block
        )

    def _random_corner(self) -> _Position:
        angle = self._rng.uniform(0, 2 * math.pi)
        r = self._radius_m * math.sqrt(self._rng.random())
        return self._snap(_Position(r * math.cos(angle), r * math.sin(angle)))

    def _towards(self, geo: Geo) -> _Position:
        north = distance_m(self._centre, Geo(geo.lat, self._centre.lon))
        east = distance_m(self._centre, Geo(self._centre.lat, geo.lon))
        return _Position(
            math.copysign(north, geo.lat - self._centre.lat),
            math.copysign(east, geo.lon - self._centre.lon),
        )

    def _drive(self, seconds: float) -> bool:
        """Move along the grid (east-west first, then north-south); True when arrived."""
        budget = self.behaviour.speed_mps * seconds
        for axis in ("east_m", "north_m"):
            here = getattr(self._position, axis)
            there = getattr(self._destination, axis)
            step = max(-budget, min(budget, there - here))
            setattr(self._position, axis, here + step)
            budget -= abs(step)
        return (
            self._position.east_m == self._destination.east_m
            and self._position.north_m == self._destination.north_m
        )

    async def _call(
        self, http: httpx.AsyncClient, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response | None:
        try:
            response = await http.post(path, json=body or {})
        except httpx.HTTPError as exc:
            self.stats.errors += 1
            log.info("%s: %s failed: %s", self.spec.callsign, path, exc)
            return None
        key = f"{path.split('/')[-1]} {response.status_code}"
        self.stats.api_status[key] = self.stats.api_status.get(key, 0) + 1
        if path.startswith("/api/v1/posts/me") and response.status_code == 200:
            # The post's own view carries its pending offer, if any.
            with contextlib.suppress(ValueError, AttributeError):
                offer = response.json().get("offer")
                if isinstance(offer, dict) and offer.get("state") == "pending":
                    self._take(http, offer, on_stream=False)
        return response

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self._base_url, timeout=10.0) as http:
            token = await _login(http, self.spec.username, self.spec.password, self._login_gate)
            http.headers["authorization"] = f"Bearer {token}"
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                # Follow the stream first: going available may bring an offer at once.
                tasks.create_task(self._follow(http, token))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.ready.wait(), 30)
                await self._report_location(http)
                await self._call(http, "/api/v1/posts/me/status", {"status": "available"})
                tasks.create_task(self._patrol(http))

    async def _report_location(self, http: httpx.AsyncClient) -> None:
        here = self.location
        await self._call(
            http,
            "/api/v1/posts/me/location",
            {"lat": here.lat, "lon": here.lon, "accuracy_m": 10.0},
        )

    async def _patrol(self, http: httpx.AsyncClient) -> None:
        interval_s = self.behaviour.location_interval_s
        while True:
            await asyncio.sleep(interval_s * self._rng.uniform(0.8, 1.2))
            arrived = self._drive(interval_s)
            await self._report_location(http)
            if not arrived:
                continue
            if self._job is not None:
                self._job_arrived.set()
            else:
                self._destination = self._random_corner()

    async def _follow(self, http: httpx.AsyncClient, token: str) -> None:
        async for message in _stream(self._base_url, token):
            if message.get("type") == "stream.ready":
                self.ready.set()
            if message.get("type") != "offer.created":
                continue
            offer = message.get("data")
            if isinstance(offer, dict) and offer.get("post") == self.spec.callsign:
                self._take(http, offer, on_stream=True)

    def _take(self, http: httpx.AsyncClient, offer: dict[str, Any], *, on_stream: bool) -> None:
        """An offer for this post, from the stream (timed) or a REST answer (a fallback for
        one made before the stream was followed); each offer is answered once."""
        offer_id = int(offer["id"])
        if offer_id in self._seen_offers or self._tasks is None:
            return
        self._seen_offers.add(offer_id)
        alert = offer.get("alert") or {}
        self._recorder.offer_received(
            int(offer["alert_id"]),
            str(alert.get("device_eui", "")),
            asyncio.get_running_loop().time(),
            timed=on_stream,
        )
        self.stats.offers += 1
        self._tasks.create_task(self._answer(http, offer))

    async def _answer(self, http: httpx.AsyncClient, offer: dict[str, Any]) -> None:
        behaviour = self.behaviour
        draw = self._rng.random()
        if draw >= behaviour.accept_p + behaviour.decline_p or self._job is not None:
            self.stats.ignored += 1
            self._recorder.offers["ignored"] += 1
            return
        median = behaviour.reaction_median_s
        await asyncio.sleep(self._rng.lognormvariate(math.log(median), 0.5) if median else 0)
        offer_id = int(offer["id"])
        if draw >= behaviour.accept_p:
            self.stats.declined += 1
            self._recorder.offers["declined"] += 1
            await self._call(http, f"/api/v1/offers/{offer_id}/decline", {"reason": "busy"})
            return
        response = await self._call(http, f"/api/v1/offers/{offer_id}/accept")
        if response is None or response.status_code != 200:
            self._recorder.offers["accept_refused"] += 1
            return
        self.stats.accepted += 1
        self._recorder.offers["accepted"] += 1
        alert = offer.get("alert") or {}
        target = Geo(float(alert.get("lat") or 0.0), float(alert.get("lon") or 0.0))
        job = _Job(offer_id, int(offer["alert_id"]), target, bool(alert.get("drill")))
        await self._handle(http, job)

    async def _handle(self, http: httpx.AsyncClient, job: _Job) -> None:
        self._job = job
        self._job_arrived.clear()
        self._destination = self._towards(job.target)
        try:
            await self._job_arrived.wait()
            await self._call(http, f"/api/v1/alerts/{job.alert_id}/arrive")
            await asyncio.sleep(self.behaviour.scene_s)
            outcome = "other" if job.drill else self._rng.choice(_OUTCOMES)
            await self._call(
                http,
                f"/api/v1/alerts/{job.alert_id}/close",
                {"outcome": outcome, "note": "firmware_sim"},
            )
            self.stats.closed += 1
            self._recorder.offers["closed"] += 1
            await self._call(http, "/api/v1/posts/me/status", {"status": "available"})
        finally:
            self._job = None
            self._destination = self._random_corner()


class AlertWatcher:
    """A dispatcher's stream: counts alerts opened and any second open alert per
    (device, category, trouble) — a duplicate (DESIGN §6.2)."""

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        recorder: Recorder,
        *,
        login_gate: asyncio.Semaphore | None = None,
    ) -> None:
        self._login_gate = login_gate
        self._base_url = base_url.rstrip("/")
        self._username = username
        self._password = password
        self._recorder = recorder
        self._open: dict[tuple[str, str, str], int] = {}
        self.ready = asyncio.Event()
        self.messages = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(base_url=self._base_url, timeout=10.0) as http:
            token = await _login(http, self._username, self._password, self._login_gate)
        async for message in _stream(self._base_url, token):
            kind = message.get("type")
            if kind == "stream.ready":
                self.ready.set()
                continue
            data = message.get("data")
            if not isinstance(data, dict):
                continue
            self.messages += 1
            if kind == "alert.opened":
                self._opened(data)
            elif kind == "alert.updated":
                state = data.get("state")
                alert_id = data.get("id")
                if state == "escalated" and isinstance(alert_id, int):
                    self._recorder.escalated_alerts.add(alert_id)
                elif state in _CLOSED_STATES:
                    key = self._key(data)
                    if self._open.get(key) == alert_id:
                        del self._open[key]

    @staticmethod
    def _key(alert: dict[str, Any]) -> tuple[str, str, str]:
        return (
            str(alert.get("device_eui")),
            str(alert.get("category")),
            str(alert.get("trouble") or ""),
        )

    def _opened(self, alert: dict[str, Any]) -> None:
        recorder = self._recorder
        recorder.alerts_opened += 1
        key = self._key(alert)
        alert_id = alert.get("id")
        if not isinstance(alert_id, int):
            return
        known = self._open.get(key)
        if known is not None and known != alert_id:
            recorder.alerts_duplicated += 1
            recorder.notes.append(f"duplicate alert {alert_id} beside open {known} for {key}")
        self._open[key] = alert_id
        if key[0] not in recorder.presses_by_eui and not alert.get("trouble"):
            recorder.alerts_unexplained += 1


async def cancel_quietly(task: asyncio.Task[None]) -> None:
    """Cancel ``task`` and wait for it, swallowing its cancellation."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
