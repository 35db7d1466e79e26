"""Frigate NVR ingest (DESIGN §9.3): cameras whose video analytics see someone.

A transport in front of the one pipeline. It subscribes (QoS 1, a fixed client id, a kept
session — short for a shared-subscription member —, manual acks: ``mqtt_client``) to
``<prefix>/events`` on ``ALERTNET_FRIGATE_MQTT_URL``. Messages are handled one at a time, in
arrival order, and each is PUBACKed only after what it caused is committed:

- a message that cannot be used (not JSON, keys missing, wrong types) or names a camera no
  device has is quarantined with the reason, the message kept as evidence;
- the **first** message of a Frigate id whose ``after`` qualifies for its camera
  (``protocol.frigate.CameraWatch``) becomes one ``SourceEvent`` (dedup key
  ``frigate:<id>``; details: label, zones, snapshot link, score) — an alarm of category
  ``camera``, which the alert side opens in ``verify`` or merges into the camera's open alert;
- once an id has its event, its later messages (a redelivery included) only add ``end_time``
  to the event's details.

After each (re)connect, where ``ALERTNET_FRIGATE_URL`` is set, it catches up with Frigate's
``GET /api/events?after=<newest start_time stored - 60>`` and handles every event listed as
if it had come as a message (the dedup key makes a known one a no-op). Messages and the
catch-up take turns on one lock, so an id is never handled twice at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import aiomqtt
import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest import mqtt_client
from alertnet.ingest.pipeline import Pipeline, RawUplink
from alertnet.ingest.sources import SourceEvent, SourceKind
from alertnet.metrics import Metrics
from alertnet.models import AlertCategory, Device, Event, Transport, utcnow
from alertnet.protocol import DecodeError, Reason
from alertnet.protocol.frigate import (
    CameraWatch,
    FrigateObject,
    decode_api_event,
    decode_event_message,
    dedup_key,
    details,
    events_topic,
    snapshot_url,
)
from alertnet.reconnect import Reconnector

__all__ = ["CATCH_UP_MARGIN_S", "FrigateIngest"]

log = logging.getLogger(__name__)

#: The catch-up asks for events that started this long before the newest one stored.
CATCH_UP_MARGIN_S: Final = 60.0
CATCH_UP_TIMEOUT_S: Final = 15.0
#: Stored camera events read to find the newest start time (ids grow with time).
_NEWEST_SCAN: Final = 200


@dataclass(frozen=True, slots=True)
class _Camera:
    device_id: int
    watch: CameraWatch | None  # None: its stored watch cannot be read (quarantined)
    problem: str = ""


class FrigateIngest:
    """The Frigate transport; ``run()`` is its one long-lived task.

    Counters (plain attributes): ``handled`` per what became of each message or listed event
    (``event``, ``known`` — its id already had an event, ``not_qualifying``, ``quarantined``),
    ``catch_ups`` per result (``done``, ``failed``, ``skipped``: nothing stored to start from).
    """

    def __init__(
        self,
        pipeline: Pipeline,
        session_factory: async_sessionmaker[AsyncSession],
        metrics: Metrics,
        *,
        url: str,
        client_id: str,
        topic_prefix: str = "frigate",
        frigate_url: str = "",
        timezone: str = "Asia/Tashkent",
        verify_timeout_s: float = 60.0,
        share_group: str = "",
        session_expiry_s: int = mqtt_client.SHARED_SESSION_EXPIRY_S,
    ) -> None:
        self._pipeline = pipeline
        self._sessions = session_factory
        self._metrics = metrics
        self._address = mqtt_client.BrokerAddress.parse(url)
        self._client_id = client_id
        prefix = f"$share/{share_group}/" if share_group else ""
        # A shared-subscription member's session must end soon after it dies (mqtt_client).
        self._shared_session_expiry_s = session_expiry_s if share_group else None
        self._subscription = prefix + events_topic(topic_prefix)
        self._frigate_url = frigate_url.strip().rstrip("/")
        self._zone = ZoneInfo(timezone)
        self._verify_timeout_s = verify_timeout_s
        self._turn = asyncio.Lock()
        self._reconnector = Reconnector(
            "Frigate ingest", expected=(aiomqtt.MqttError,), on_unexpected=self._failed
        )
        #: Set while subscribed to the broker.
        self.connected = self._reconnector.connected
        self.handled: Counter[str] = Counter()
        self.catch_ups: Counter[str] = Counter()

    @property
    def connections(self) -> int:
        """Sessions that got connected and subscribed since ``run()`` started."""
        return self._reconnector.connections

    async def run(self) -> None:
        """Stay connected forever, reconnecting on the shared backoff schedule."""
        await self._reconnector.run(self._session)

    def _failed(self, error: Exception) -> None:
        self._metrics.loop_errors.labels("frigate_ingest").inc()
        log.error("Frigate ingest failed; reconnecting", exc_info=error)

    async def _session(self) -> None:
        client = mqtt_client.manual_ack_client(
            self._address,
            self._client_id,
            shared_session_expiry_s=self._shared_session_expiry_s,
        )
        async with client:
            await client.subscribe(self._subscription, qos=1)
            self._reconnector.mark_connected()
            log.info(
                "Frigate ingest connected to %s:%d as %s",
                self._address.host,
                self._address.port,
                self._client_id,
            )
            async with asyncio.TaskGroup() as tasks:
                if self._frigate_url:
                    tasks.create_task(self.catch_up())
                async for message in client.messages:
                    payload = message.payload if isinstance(message.payload, bytes) else b""
                    async with self._turn:
                        await self._message(payload, str(message.topic))
                    if not mqtt_client.ack(client, message):
                        raise aiomqtt.MqttError("PUBACK could not be sent")
                raise aiomqtt.MqttError("message stream ended")

    # -- one message ------------------------------------------------------------------------------

    async def _message(self, payload: bytes, source: str) -> None:
        received_at = utcnow()
        try:
            obj = decode_event_message(payload).after
        except DecodeError as exc:
            await self._quarantine(payload, source, received_at, exc)
            return
        except Exception as exc:  # no message may stop ingest (§14)
            log.exception("a Frigate message could not be decoded; quarantined")
            await self._quarantine(payload, source, received_at, _processing_error(exc))
            return
        await self._guarded(obj, payload, source, received_at)

    async def _guarded(
        self, obj: FrigateObject, raw: bytes, source: str, received_at: datetime
    ) -> None:
        """``_object``, but any failure quarantines the input (§14): the message is then acked,
        so one bad message is never redelivered into every later session."""
        try:
            await self._object(obj, raw, source, received_at)
        except Exception as exc:  # nothing one message holds may stop ingest
            log.exception("Frigate event %r could not be handled; quarantined", obj.id)
            await self._quarantine(raw, source, received_at, _processing_error(exc))

    async def _object(
        self, obj: FrigateObject, raw: bytes, source: str, received_at: datetime
    ) -> None:
        """What one tracked object (a message's ``after``, or a listed event) does."""
        camera = await self._camera(obj.camera)
        if camera is None or camera.watch is None:
            detail = camera.problem if camera else f"no camera device is named {obj.camera!r}"
            reason = Reason.BAD_FIELD if camera else Reason.UNKNOWN_DEVICE
            await self._quarantine(raw, source, received_at, DecodeError(reason, detail))
            return
        if await self._add_end_time(camera.device_id, obj):
            self.handled["known"] += 1
            return
        refusal = camera.watch.refusal(obj, self._zone)
        if refusal is not None:
            self.handled["not_qualifying"] += 1
            log.debug("Frigate event %s on %s: %s", obj.id, obj.camera, refusal)
            return
        zones = ", ".join(obj.zones) or "-"
        event = SourceEvent(
            device_id=camera.device_id,
            dedup_key=dedup_key(obj.id),
            kind=SourceKind.ALARM,
            code="camera",
            transport=Transport.FRIGATE,
            received_at=received_at,
            category=AlertCategory.CAMERA,
            details=details(obj, snapshot_url(self._frigate_url, obj)),
            reason=f"{obj.label} seen by camera {obj.camera} (zones: {zones})",
            raw=raw,
            source=source,
            verify_timeout_s=self._verify_timeout_s,
        )
        outcome = await self._pipeline.submit_event(event)
        self.handled["event" if outcome.accepted else "quarantined"] += 1

    async def _quarantine(
        self, raw: bytes, source: str, received_at: datetime, error: DecodeError
    ) -> None:
        await self._pipeline.submit(
            RawUplink(raw, Transport.FRIGATE, received_at, source=source), error
        )
        self.handled["quarantined"] += 1

    async def _camera(self, name: str) -> _Camera | None:
        async with self._sessions() as session:
            row = (
                await session.execute(
                    select(
                        Device.id, Device.camera_labels, Device.camera_zones, Device.camera_hours
                    ).where(Device.camera_name == name)
                )
            ).one_or_none()
        if row is None:
            return None
        try:
            watch = CameraWatch.of(row.camera_labels, row.camera_zones, row.camera_hours)
        except ValueError as exc:
            return _Camera(row.id, None, f"camera {name!r} is misconfigured: {exc}")
        return _Camera(row.id, watch)

    async def _add_end_time(self, device_id: int, obj: FrigateObject) -> bool:
        """True when the id already has its event; its ``end_time`` is added if new."""
        async with unit_of_work(self._sessions) as session:
            event = (
                await session.execute(
                    select(Event)
                    .where(Event.device_id == device_id, Event.dedup_key == dedup_key(obj.id))
                    .with_for_update(key_share=True)
                )
            ).scalar_one_or_none()
            if event is None:
                return False
            kept = dict(event.details or {})
            if obj.end_time is not None and kept.get("end_time") is None:
                kept["end_time"] = obj.end_time
                event.details = kept
            return True

    # -- the catch-up -----------------------------------------------------------------------------

    async def newest_start_time(self) -> float | None:
        """The newest ``start_time`` of the camera events stored, or None without any."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(Event.details)
                .where(Event.first_transport == Transport.FRIGATE.value)
                .order_by(Event.id.desc())
                .limit(_NEWEST_SCAN)
            )
            starts = [
                float(value["start_time"])
                for value in rows
                if isinstance(value, dict) and isinstance(value.get("start_time"), int | float)
            ]
        return max(starts) if starts else None

    async def catch_up(self) -> int:
        """Ask Frigate for what it saw since the newest stored event (minus 60 s) and handle it.

        Returns how many listed events were handled. A failure is logged and counted, never
        raised: the MQTT session goes on.
        """
        try:
            newest = await self.newest_start_time()
            if newest is None:
                self.catch_ups["skipped"] += 1
                return 0
            url = f"{self._frigate_url}/api/events"
            params = {"after": f"{newest - CATCH_UP_MARGIN_S:.6f}"}
            async with httpx.AsyncClient(timeout=CATCH_UP_TIMEOUT_S) as client:
                response = await client.get(url, params=params)
                response.raise_for_status()
                listed = response.json()
            if not isinstance(listed, list):
                raise ValueError("GET /api/events did not answer a JSON list")
            source = str(response.url)[:200]
            for item in sorted(listed, key=_start_time):
                raw = json.dumps(item, separators=(",", ":")).encode("utf-8")
                async with self._turn:
                    received_at = utcnow()
                    try:
                        obj = decode_api_event(item)
                    except DecodeError as exc:
                        await self._quarantine(raw, source, received_at, exc)
                        continue
                    except Exception as exc:  # one item never stops the rest
                        log.exception("a listed Frigate event could not be decoded")
                        await self._quarantine(raw, source, received_at, _processing_error(exc))
                        continue
                    await self._guarded(obj, raw, source, received_at)
        except Exception as exc:  # HTTP, JSON or any other: the session goes on
            self.catch_ups["failed"] += 1
            log.warning("Frigate catch-up from %s failed: %s", self._frigate_url, exc)
            return 0
        self.catch_ups["done"] += 1
        log.info("Frigate catch-up: %d events listed since %.0f", len(listed), newest)
        return len(listed)


def _processing_error(exc: Exception) -> DecodeError:
    return DecodeError(Reason.PROCESSING_ERROR, f"{type(exc).__name__}: {exc}"[:200])


def _start_time(item: Any) -> float:
    value = item.get("start_time") if isinstance(item, dict) else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
