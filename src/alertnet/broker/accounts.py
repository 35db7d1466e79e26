"""Who may log in to the production broker and what each login may do (DESIGN §14).

- a device: username its EUI, password derived from its key
  (``alertnet.protocol.device_mqtt_password``); its topics come from the ACL's patterns;
- an MQTT LoRa gateway: username its id, password derived from alertnet's own password
  (``gateway_mqtt_password``); writes ``gw/<id>/rx`` and ``/state``, reads ``/tx``;
- alertnet itself: one login per connection, ``<user>-<purpose>-<n>`` for every purpose and
  each of the N processes, all with the password of ``ALERTNET_MQTT_URL``;
- optional ``chirpstack`` and ``frigate`` logins for the adapters' sources (§9.2, §9.3).

``load_registry`` reads the devices and gateways from the database; ``broker_accounts`` turns
them into ``Account`` values for ``alertnet.broker.mosquitto.write_config``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.broker.mosquitto import Access, Account, Grant
from alertnet.broker.options import DEFAULT_FRIGATE_PREFIX
from alertnet.errors import InvalidInput
from alertnet.ingest.mqtt_client import (
    MqttPurpose,
    alertnet_username,
    gateway_mqtt_password,
)
from alertnet.models import Device, Gateway, Transport
from alertnet.protocol import (
    TOPIC_PREFIX,
    device_mqtt_password,
    gw_rx_topic,
    gw_state_topic,
    gw_tx_topic,
)

__all__ = [
    "CHIRPSTACK_USER",
    "FRIGATE_USER",
    "BrokerAccounts",
    "Registry",
    "alertnet_accounts",
    "broker_accounts",
    "chirpstack_account",
    "device_account",
    "frigate_account",
    "gateway_account",
    "load_registry",
]

CHIRPSTACK_USER: Final = "chirpstack"
FRIGATE_USER: Final = "frigate"
CHIRPSTACK_UPLINKS: Final = "application/+/device/+/event/up"
CHIRPSTACK_DOWNLINKS: Final = "application/+/device/+/command/down"

_EUI = re.compile(r"[0-9a-f]{16}")
# What a gateway id may be to become a login: one topic level and one password-file field.
_GATEWAY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# alertnet's user: its logins are "<user>-<purpose>-<n>" within the 64-character limit.
_ALERTNET_USER = re.compile(r"[A-Za-z0-9._-]{1,40}")


@dataclass(frozen=True, slots=True)
class Registry:
    """What the database says may log in: active devices and MQTT gateways."""

    devices: tuple[tuple[str, bytes], ...]
    gateways: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BrokerAccounts:
    """The accounts to write, what they are, and the gateway ids that got no login (and why)."""

    accounts: tuple[Account, ...]
    devices: int
    gateways: tuple[str, ...]
    alertnet_logins: tuple[str, ...]
    adapters: tuple[str, ...]
    skipped_gateways: tuple[tuple[str, str], ...]

    def skipped_lines(self) -> list[str]:
        """One line per gateway that got no login, for the operator."""
        return [
            f"skipped gateway {gateway_id!r}: it {problem}"
            for gateway_id, problem in self.skipped_gateways
        ]


async def load_registry(session: AsyncSession) -> Registry:
    """Devices that are not disabled, and gateways seen over MQTT, sorted."""
    devices = await session.execute(
        select(Device.eui, Device.key).where(Device.status != "disabled").order_by(Device.eui)
    )
    gateways = await session.scalars(
        select(Gateway.id).where(Gateway.transport == Transport.MQTT.value).order_by(Gateway.id)
    )
    return Registry(
        devices=tuple((eui, bytes(key)) for eui, key in devices),
        gateways=tuple(gateways),
    )


def device_account(eui: str, key: bytes) -> Account:
    """A device: its topics are the ACL patterns, so it needs no grants of its own."""
    if _EUI.fullmatch(eui) is None:
        raise InvalidInput(f"device EUI {eui!r} is not 16 lowercase hex characters")
    return Account(eui, device_mqtt_password(key), note="device")


def gateway_account(gateway_id: str, alertnet_password: str) -> Account:
    """An MQTT LoRa gateway: its received frames and state out, its downlinks in."""
    problem = _gateway_id_problem(gateway_id)
    if problem is not None:
        raise InvalidInput(f"gateway id {gateway_id!r} {problem}")
    return Account(
        gateway_id,
        gateway_mqtt_password(alertnet_password, gateway_id),
        grants=(
            Grant(Access.WRITE, gw_rx_topic(gateway_id)),
            Grant(Access.WRITE, gw_state_topic(gateway_id)),
            Grant(Access.READ, gw_tx_topic(gateway_id)),
        ),
        note=f"gateway {gateway_id}: its received frames and state out, its downlinks in",
    )


def alertnet_accounts(
    user: str, password: str, *, processes: int, frigate_prefix: str = DEFAULT_FRIGATE_PREFIX
) -> list[Account]:
    """Every connection of every alertnet process: ``<user>-<purpose>-<n>``, one password.

    They share a password, so they share one set of rights: all of alertnet's topics
    (uplinks also through a shared subscription, §7) and the adapters' sources.
    """
    if _ALERTNET_USER.fullmatch(user) is None or _EUI.fullmatch(user) is not None:
        raise InvalidInput(
            f"alertnet's MQTT user {user!r} must be 1-40 of letters, digits, '.', '_', '-' "
            "and not look like a device EUI"
        )
    if processes < 1:
        raise InvalidInput(f"--processes must be at least 1, got {processes}")
    grants = (
        Grant(Access.READWRITE, f"{TOPIC_PREFIX}/#"),
        Grant(Access.READ, f"$share/+/{TOPIC_PREFIX}/#"),
        Grant(Access.READ, CHIRPSTACK_UPLINKS),
        Grant(Access.READ, f"$share/+/{CHIRPSTACK_UPLINKS}"),
        Grant(Access.WRITE, CHIRPSTACK_DOWNLINKS),
        Grant(Access.READ, f"{frigate_prefix}/#"),
    )
    return [
        Account(
            alertnet_username(user, purpose, process),
            password,
            grants=grants,
            note=f"alertnet process {process}, {purpose.value} connection",
        )
        for process in range(1, processes + 1)
        for purpose in MqttPurpose
    ]


def chirpstack_account(password: str) -> Account:
    """ChirpStack's MQTT integration: publishes uplink events, reads downlink commands."""
    return Account(
        CHIRPSTACK_USER,
        password,
        grants=(Grant(Access.WRITE, CHIRPSTACK_UPLINKS), Grant(Access.READ, CHIRPSTACK_DOWNLINKS)),
        note="ChirpStack: LoRaWAN uplink events out, downlink commands in",
    )


def frigate_account(password: str, topic_prefix: str = DEFAULT_FRIGATE_PREFIX) -> Account:
    """Frigate NVR: publishes its events under its topic prefix."""
    return Account(
        FRIGATE_USER,
        password,
        grants=(Grant(Access.WRITE, f"{topic_prefix}/#"),),
        note="Frigate NVR: its events out",
    )


def broker_accounts(
    registry: Registry,
    *,
    alertnet_user: str,
    alertnet_password: str,
    processes: int,
    extra_gateways: Iterable[str] = (),
    chirpstack_password: str | None = None,
    frigate_password: str | None = None,
    frigate_prefix: str = DEFAULT_FRIGATE_PREFIX,
) -> BrokerAccounts:
    """Every login of the production broker, from the registry and alertnet's own login.

    ``extra_gateways`` are MQTT gateways not registered yet (a gateway is registered when it
    is first heard, and cannot be heard before it may log in). A gateway id that cannot be a
    login, or that another login already uses, is skipped and reported, not fatal: one odd
    row must not keep a city's broker from being configured.
    """
    own = alertnet_accounts(
        alertnet_user, alertnet_password, processes=processes, frigate_prefix=frigate_prefix
    )
    adapters: list[Account] = []
    if chirpstack_password is not None:
        adapters.append(chirpstack_account(chirpstack_password))
    if frigate_password is not None:
        adapters.append(frigate_account(frigate_password, frigate_prefix))
    devices = [device_account(eui, key) for eui, key in registry.devices]
    taken = {account.username for account in [*own, *adapters, *devices]}
    gateways: list[Account] = []
    skipped: list[tuple[str, str]] = []
    for gateway_id in sorted({*registry.gateways, *extra_gateways}):
        problem = _gateway_id_problem(gateway_id)
        if problem is None and gateway_id in taken:
            problem = "is already the username of another login"
        if problem is not None:
            skipped.append((gateway_id, problem))
            continue
        gateways.append(gateway_account(gateway_id, alertnet_password))
        taken.add(gateway_id)
    return BrokerAccounts(
        accounts=(*own, *adapters, *devices, *gateways),
        devices=len(devices),
        gateways=tuple(account.username for account in gateways),
        alertnet_logins=tuple(account.username for account in own),
        adapters=tuple(account.username for account in adapters),
        skipped_gateways=tuple(skipped),
    )


def _gateway_id_problem(gateway_id: str) -> str | None:
    if _GATEWAY_ID.fullmatch(gateway_id) is None:
        return "must be 1-64 of letters, digits, '.', '_', '-' to be an MQTT login"
    if _EUI.fullmatch(gateway_id) is not None:
        return "looks like a device EUI (the ACL would give it that device's topics)"
    return None
