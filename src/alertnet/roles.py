"""Process roles: which parts of alertnet one process runs (``alertnet serve --role …``).

A city can run several processes on one PostgreSQL (DESIGN §7, §13): e.g. two ``ingest``
processes sharing the uplinks through a shared subscription beside one ``api``+``dispatch``
process. ``alertnet serve`` without ``--role`` runs all three. This module is the one place
that decides what runs where; ``alertnet.app`` applies it.

========== ==================================================================================
role       runs
========== ==================================================================================
api        the HTTP API and pages, the realtime hub (WebSockets), HTTP uplinks
ingest     MQTT ingest, ChirpStack, Frigate, the DC-09 receiver, serial bridges, the gateway
           registry, the downlink router's windows ("received" acks), the embedded trial broker
dispatch   the dispatcher's loop, device supervision, retention, drills
========== ==================================================================================

Every process also runs the ingest pipeline (HTTP uplinks and drills submit to it, not only the
transports) and serves ``/healthz``, ``/readyz`` (only the parts it runs) and ``/metrics``; the
API's routes answer 404 in a process without ``api``.

Across processes: alert progress (states 2-5) is sent by whichever process commits the change
(the dispatcher's passes, a tablet's answer through the API), through its ``DownlinkRouter``;
a process without ``ingest`` publishes it over an MQTT connection of its own
(``DownlinkPublisher``, login purpose ``downlinks``). A LoRa device heard only by a serial
bridge gets progress only from the process that holds the bridge: run the bridge's process
with ``dispatch`` too, or run the bridge as ``alertnet gateway`` on MQTT. A process without
``dispatch`` asks the dispatchers to run a pass after a commit that opened an alert with
PostgreSQL ``NOTIFY`` (``alertnet.dispatch.wakeup``); on SQLite there is no such signal, and the
dispatcher's tick (``ALERTNET_DISPATCH_TICK_S``) finds the alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from sqlalchemy.engine import make_url

from alertnet.config import Settings

__all__ = ["ALL_ROLES", "ProcessPlan", "ProcessRole", "describe_roles"]


class ProcessRole(StrEnum):
    """One part of alertnet a process may run (not a user's role: ``alertnet.models.Role``)."""

    API = "api"
    INGEST = "ingest"
    DISPATCH = "dispatch"


#: ``alertnet serve`` without ``--role``: everything in one process.
ALL_ROLES: Final = frozenset(ProcessRole)


def describe_roles(roles: frozenset[ProcessRole]) -> str:
    """``api, ingest, dispatch`` in that order, whatever order they were given in."""
    return ", ".join(role.value for role in ProcessRole if role in roles)


@dataclass(frozen=True, slots=True)
class ProcessPlan:
    """What one process runs, decided from its roles and its settings."""

    roles: frozenset[ProcessRole]
    settings: Settings

    def __post_init__(self) -> None:
        if not self.roles:
            raise ValueError("a process needs at least one role")

    @property
    def serves_api(self) -> bool:
        """The API's routes, the pages and the realtime hub."""
        return ProcessRole.API in self.roles

    @property
    def runs_ingest(self) -> bool:
        """The transports: MQTT, ChirpStack, Frigate, DC-09, serial bridges."""
        return ProcessRole.INGEST in self.roles

    @property
    def runs_dispatch(self) -> bool:
        """The dispatcher's loop, device supervision, retention and drills."""
        return ProcessRole.DISPATCH in self.roles

    @property
    def on_postgres(self) -> bool:
        return make_url(self.settings.database_url).get_backend_name() == "postgresql"

    @property
    def mqtt_url(self) -> str:
        """The broker this process's MQTT connections use; the embedded one is on loopback
        (an ingest process moves it to a free port when its own is taken, see
        ``EmbeddedBroker``: a split deployment names a real broker instead)."""
        if self.settings.mqtt_embedded:
            return f"mqtt://127.0.0.1:{self.settings.embedded_mqtt_port}"
        return self.settings.mqtt_url

    @property
    def runs_embedded_broker(self) -> bool:
        """The trial broker lives with the MQTT ingest that needs it."""
        return self.runs_ingest and self.settings.mqtt_embedded

    @property
    def publishes_downlinks_alone(self) -> bool:
        """No MQTT ingest here to publish progress downlinks through: open a connection."""
        return not self.runs_ingest

    @property
    def wakes_dispatch_by_notify(self) -> bool:
        """New alerts (and tablet answers) here wake the dispatchers of other processes."""
        return self.on_postgres and not self.runs_dispatch

    @property
    def listens_for_dispatch(self) -> bool:
        """The dispatcher here wakes on other processes' ``NOTIFY``."""
        return self.on_postgres and self.runs_dispatch

    def parts(self) -> list[str]:
        """What runs, in words, for the start-up line."""
        settings = self.settings
        parts: list[str] = []
        if self.serves_api:
            parts += ["HTTP API and pages", "realtime hub"]
        if self.runs_ingest:
            if self.runs_embedded_broker:
                parts.append("embedded MQTT broker")
            parts.append("MQTT ingest")
            if settings.chirpstack_mqtt_url.strip():
                parts.append("ChirpStack")
            if settings.frigate_mqtt_url.strip():
                parts.append("Frigate")
            if settings.dc09_listen:
                parts.append("DC-09 receiver")
            parts += [f"serial bridge {gateway_id}" for gateway_id in settings.serial_ports]
            parts.append("gateway registry")
        parts.append("ingest pipeline")
        if self.publishes_downlinks_alone:
            parts.append("downlink publisher")
        if self.runs_dispatch:
            parts += ["dispatcher", "device supervision", "retention", "drills"]
        return parts

    def describe(self) -> str:
        """``roles ingest — MQTT ingest, gateway registry, ingest pipeline``."""
        return f"roles {describe_roles(self.roles)} — {', '.join(self.parts())}"
