"""A simulated Frigate NVR (DESIGN §9.3): cameras whose analytics track people, cars and ghosts.

``scenario()`` plays a seeded street: each *track* is one object Frigate follows from ``new``
through ``update``s to ``end`` — a person who walks into a watched zone only in an update, a
person who stays on the pavement, a car, a shadow flagged ``false_positive`` — as the
``<prefix>/events`` messages Frigate would publish (``{"type", "before", "after"}``).
``Track.qualifies`` says whether alertnet should make it an event (the §9.3 rules), so a run
can be checked: every qualifying track exactly one event, no other track any.

``FrigateLink`` publishes them with QoS 1 (Frigate's ``mqtt.qos: 1``), reconnecting and
retrying through a broker outage. ``FrigateApi`` serves Frigate's ``GET /api/events?after=``
for what was tracked so far (alertnet's catch-up after a reconnect), on 127.0.0.1, and keeps
each ``after`` it was asked for.

    python -m firmware_sim frigate --mqtt mqtt://frigate:PASS@host:1883 \\
        --camera gate:yard,street --camera back:yard --tracks 40 --seed 1 --api-port 5001

Imports ``alertnet.protocol`` only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import aiomqtt

from alertnet.protocol.frigate import events_topic

__all__ = ["FrigateApi", "FrigateLink", "SimCamera", "Track", "main", "scenario"]

log = logging.getLogger(__name__)

KINDS: Final = ("person_in_zone", "person_passing", "car", "false_positive", "dog")
#: How often each kind comes up on a street at night.
_WEIGHTS: Final = (4, 2, 2, 2, 1)
_BACKOFF_FIRST_S: Final = 0.2
_BACKOFF_MAX_S: Final = 3.0


@dataclass(frozen=True, slots=True)
class SimCamera:
    """A camera as configured in Frigate: its name and its zones."""

    name: str
    zones: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SimCamera:
        """``gate:yard,street`` → camera ``gate`` with zones ``yard`` and ``street``."""
        name, _, zones = text.partition(":")
        if not name.strip():
            raise ValueError(f"{text!r}: a camera needs a name")
        return cls(name.strip(), tuple(z.strip() for z in zones.split(",") if z.strip()))


@dataclass
class Track:
    """One tracked object and the messages Frigate publishes about it, in order."""

    id: str
    camera: str
    label: str
    kind: str
    start_time: float
    end_time: float
    zone_path: list[list[str]]  # current_zones of each message (new, updates…, end)
    false_positive: bool = False
    score: float = 0.8

    def entered_zones(self, upto: int) -> list[str]:
        seen: dict[str, None] = {}
        for zones in self.zone_path[: upto + 1]:
            seen.update(dict.fromkeys(zones))
        return list(seen)

    def after(self, index: int) -> dict[str, Any]:
        last = index == len(self.zone_path) - 1
        return {
            "id": self.id,
            "camera": self.camera,
            "frame_time": self.start_time + index,
            "label": self.label,
            "sub_label": None,
            "top_score": self.score,
            "score": self.score,
            "false_positive": self.false_positive,
            "start_time": self.start_time,
            "end_time": self.end_time if last else None,
            "current_zones": [] if last else list(self.zone_path[index]),
            "entered_zones": self.entered_zones(index),
            "has_snapshot": True,
            "has_clip": True,
            "stationary": False,
        }

    def messages(self) -> list[bytes]:
        """``new``, ``update``…, ``end``: what Frigate publishes on ``<prefix>/events``."""
        out = []
        before: dict[str, Any] | None = None
        for index in range(len(self.zone_path)):
            kind = "new" if index == 0 else "end" if index == len(self.zone_path) - 1 else "update"
            after = self.after(index)
            body = {"type": kind, "before": before or after, "after": after}
            out.append(json.dumps(body, separators=(",", ":")).encode())
            before = after
        return out

    def api_event(self) -> dict[str, Any]:
        """The track as ``GET /api/events`` lists it (zones in ``zones``, scores in ``data``)."""
        last = self.after(len(self.zone_path) - 1)
        return {
            "id": self.id,
            "camera": self.camera,
            "label": self.label,
            "sub_label": None,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "false_positive": self.false_positive,
            "zones": last["entered_zones"],
            "has_clip": True,
            "has_snapshot": True,
            "data": {"top_score": self.score, "score": self.score, "type": "object"},
        }

    def qualifies(self, labels: Sequence[str], watched_zones: Sequence[str]) -> bool:
        """Whether alertnet should make this track an event (DESIGN §9.3; hours left aside)."""
        if self.false_positive or self.label not in labels:
            return False
        entered = self.entered_zones(len(self.zone_path) - 1)
        return not watched_zones or bool(set(watched_zones) & set(entered))


def scenario(
    cameras: Sequence[SimCamera], tracks: int, *, seed: int, start_time: float
) -> list[Track]:
    """``tracks`` objects over the cameras, a few seconds apart, mixed as a street is."""
    rng = random.Random(seed)
    out = []
    for number in range(tracks):
        camera = cameras[number % len(cameras)]
        kind = rng.choices(KINDS, _WEIGHTS)[0]
        zones = list(camera.zones)
        zone = rng.choice(zones) if zones else None
        start = start_time + number * 3.0 + rng.random()
        label = {"car": "car", "dog": "dog"}.get(kind, "person")
        if kind == "person_in_zone" and zone is not None:
            path = [[], [], [zone], [zone], []]  # enters the zone only in an update
        elif kind == "person_passing":
            path = [[], [], []]
        else:
            path = [[zone] if zone else [], [zone] if zone else [], []]
        out.append(
            Track(
                id=f"{start:.6f}-{rng.getrandbits(24):06x}",
                camera=camera.name,
                label=label,
                kind=kind,
                start_time=start,
                end_time=start + len(path) * 2.0,
                zone_path=path,
                false_positive=kind == "false_positive",
                score=round(0.55 + rng.random() * 0.4, 3),
            )
        )
    return out


class FrigateLink:
    """Publishes Frigate's messages with QoS 1 and keeps at it through broker outages."""

    def __init__(self, url: str, *, prefix: str = "frigate", client_id: str = "frigate-sim"):
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError(f"not an MQTT URL: {url!r}")
        self._host, self._port = parts.hostname, parts.port or 1883
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._client_id = client_id
        self.topic = events_topic(prefix)
        self.published = 0
        self.publish_failures = 0

    async def publish_all(self, payloads: Sequence[bytes], *, interval_s: float = 0.0) -> None:
        """Publish every payload in order, each acknowledged by the broker (PUBACK)."""
        index = 0
        delay_s = _BACKOFF_FIRST_S
        while index < len(payloads):
            try:
                async with aiomqtt.Client(
                    self._host,
                    self._port,
                    username=self._username,
                    password=self._password,
                    identifier=self._client_id,
                    clean_session=False,
                ) as client:
                    delay_s = _BACKOFF_FIRST_S
                    while index < len(payloads):
                        await client.publish(self.topic, payloads[index], qos=1)
                        index += 1
                        self.published += 1
                        if interval_s:
                            await asyncio.sleep(interval_s)
            except aiomqtt.MqttError as exc:
                self.publish_failures += 1
                log.info("Frigate sim: broker away (%s); retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, _BACKOFF_MAX_S)


@dataclass
class FrigateApi:
    """Frigate's HTTP events API for the simulated tracks, on 127.0.0.1 (``port`` 0: any)."""

    tracks: list[Track] = field(default_factory=list)
    port: int = 0
    requests: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def afters(self) -> list[float]:
        """The ``after`` of every ``/api/events`` request so far."""
        found = []
        for path in self.requests:
            values = parse_qs(urlsplit(path).query).get("after")
            if values:
                found.append(float(values[0]))
        return found

    def start(self) -> FrigateApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                api.requests.append(self.path)
                if parts.path != "/api/events":
                    self.send_error(404)
                    return
                after = float(parse_qs(parts.query).get("after", ["0"])[0])
                listed = [t.api_event() for t in api.tracks if t.start_time > after]
                listed.sort(key=lambda event: -float(event["start_time"]))  # newest first
                body = json.dumps(listed).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("Frigate API: " + format, *args)

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_sim frigate", description="play Frigate NVR events"
    )
    parser.add_argument("--mqtt", required=True, help="the broker Frigate publishes to")
    parser.add_argument("--prefix", default="frigate", help="Frigate's MQTT topic prefix")
    parser.add_argument(
        "--camera",
        action="append",
        type=SimCamera.parse,
        required=True,
        metavar="NAME[:ZONE,ZONE]",
        help="a camera and its zones; repeat it",
    )
    parser.add_argument("--tracks", type=int, default=20, help="objects to track")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval-s", type=float, default=0.2, help="between messages")
    parser.add_argument("--labels", default="person", help="labels alertnet watches")
    parser.add_argument("--watched-zones", default="", help="zones alertnet watches")
    parser.add_argument(
        "--api-port", type=int, help="also serve GET /api/events here until interrupted"
    )
    return parser


async def _play(args: argparse.Namespace) -> int:
    tracks = scenario(args.camera, args.tracks, seed=args.seed, start_time=time.time())
    labels = [x for x in args.labels.split(",") if x]
    zones = [x for x in args.watched_zones.split(",") if x]
    api = FrigateApi(tracks, port=args.api_port).start() if args.api_port is not None else None
    link = FrigateLink(args.mqtt, prefix=args.prefix, client_id=f"frigate-sim-{args.seed}")
    payloads = [message for track in tracks for message in track.messages()]
    await link.publish_all(payloads, interval_s=args.interval_s)
    expected = sum(track.qualifies(labels, zones) for track in tracks)
    kinds = {kind: sum(t.kind == kind for t in tracks) for kind in KINDS}
    print(
        f"{len(tracks)} tracks ({kinds}), {link.published} messages on {link.topic}; "
        f"{expected} should become camera events in alertnet"
    )
    if api is not None:
        print(f"serving {api.url}/api/events; Ctrl-C to stop")
        try:
            await asyncio.Event().wait()
        finally:
            api.stop()
    return 0


def main(argv: Sequence[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        return asyncio.run(_play(args))
    except KeyboardInterrupt:
        return 0
