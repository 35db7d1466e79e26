"""The fuzz tests' small city: who lives in it, how a device presses, what an error must be.

``seed_city`` registers it in an empty, migrated database: two mahallas, four posts, devices
with known keys, one account per role (plus a spare admin, so the fuzzed admin is never the
last one) and the accounts only the field fuzz uses. The fixtures are in ``conftest.py``.
"""

from __future__ import annotations

import itertools
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, cast

import requests
from fastapi import FastAPI
from schemathesis.python import asgi
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.protocol import EventCode, Uplink
from tests.auth.helpers import Account, create_account
from tests.support.factories import create_device, create_mahalla, create_post

# The order the roles are fuzzed in.
ROLES: Final = ("observer", "post", "dispatcher", "admin")
# Keys of the accounts only the field fuzz uses, next to the ROLES.
TABLET: Final = "tablet"
CHANGED_USER: Final = "changed-user"
TABLET_CALLSIGN: Final = "P-9"

# A request the app has not answered in this long is a hang, and fails the test.
REQUEST_TIMEOUT_S: Final = 10.0

UPLINKS_PATH: Final = "/api/v1/uplinks"
# Devices pressed when the app starts, so the city has open alerts and offers.
PRESSING_DEVICES: Final = 8
# Devices nobody presses at start; the field fuzz gives each of its uses one of them.
SPARE_DEVICES: Final = 8

# Requests made, by test family (and by role for schemathesis), printed at the end of the run.
requests_made: Counter[str] = Counter()


@dataclass(frozen=True)
class FuzzDevice:
    eui: str
    key: bytes


@dataclass
class City:
    """Accounts by role (and ``TABLET``, ``CHANGED_USER``), and the devices: the first
    ``PRESSING_DEVICES`` pressed at start, the others spare."""

    database_url: str
    accounts: dict[str, Account]
    devices: list[FuzzDevice]
    # The next unused frame counter per device, so each valid press is new.
    counters: dict[str, itertools.count[int]] = field(default_factory=dict)

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.accounts[role].token}"}

    def next_counter(self, device: FuzzDevice) -> int:
        return next(self.counters.setdefault(device.eui, itertools.count(1)))


async def seed_city(session: AsyncSession, database_url: str) -> City:
    suffix = secrets.token_hex(4)
    chorsu = await create_mahalla(session, name="Chorsu", risk="red")
    await create_mahalla(session, name="Yunusobod", risk="green", lat=41.36, lon=69.28)
    await create_post(session, callsign="P-1")
    await create_post(session, callsign="P-2", lat=41.32, lon=69.25)
    await create_post(session, callsign="P-3", status="off_duty")
    # Off duty and far away, so the dispatcher never picks it on its own: the field fuzz
    # assigns alerts to it, to have offers to decline and alerts to close.
    await create_post(session, callsign=TABLET_CALLSIGN, lat=41.2, lon=69.1, status="off_duty")
    devices = []
    for index in range(PRESSING_DEVICES + SPARE_DEVICES):
        device = await create_device(session, mahalla_id=chorsu.id if index % 2 == 0 else None)
        devices.append(FuzzDevice(device.eui, device.key))
    accounts = {
        "admin": await create_account(session, f"fuzz-admin-{suffix}", "admin"),
        "dispatcher": await create_account(session, f"fuzz-dispatcher-{suffix}", "dispatcher"),
        "post": await create_account(session, f"fuzz-post-{suffix}", "post", post_callsign="P-1"),
        "observer": await create_account(
            session, f"fuzz-observer-{suffix}", "observer", mahalla_name="Chorsu"
        ),
        TABLET: await create_account(
            session, f"fuzz-tablet-{suffix}", "post", post_callsign=TABLET_CALLSIGN
        ),
        CHANGED_USER: await create_account(
            session, f"fuzz-changed-{suffix}", "observer", mahalla_name="Chorsu"
        ),
    }
    await create_account(session, f"fuzz-spare-admin-{suffix}", "admin")
    return City(database_url, accounts, devices)


def app_client(app: FastAPI) -> asgi.ASGIClient:
    """A ``requests`` session whose requests go into ``app`` in this process (schemathesis'
    ASGI client; the first one starts the app's lifespan, which runs until shutdown)."""
    # FastAPI types its ASGI callable with MutableMapping where schemathesis says dict.
    return asgi.get_client(cast(Any, app))


def press(client: requests.Session, city: City, device: FuzzDevice) -> requests.Response:
    """A valid panic press of ``device`` with a new counter, as the device sends it."""
    frame = Uplink.build(device.key, device.eui, city.next_counter(device), EventCode.PANIC)
    return client.post(
        UPLINKS_PATH,
        data=frame.to_bytes(),
        headers={"content-type": "application/octet-stream"},
        timeout=REQUEST_TIMEOUT_S,
    )


def error_shape_problem(response: Any) -> str | None:
    """Why a 4xx/5xx answer's body is not ``{"error", "detail", "code"}``, or None if it is."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} body is not JSON: {response.content[:200]!r}"
    if not isinstance(body, dict):
        return f"{response.status_code} body is not an object: {body!r:.200}"
    missing = [key for key in ("error", "detail", "code") if not isinstance(body.get(key), str)]
    if missing:
        return f"{response.status_code} body lacks string {missing}: {body!r:.300}"
    return None
