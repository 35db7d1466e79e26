"""``alertnet press EUI``: try a registered device without the device (DESIGN §5, for
installers and newcomers). It signs a v1 frame with the device's key from the database, sends
it to a running alertnet over HTTP (``POST /api/v1/uplinks``, the path a device itself may
use), checks the signed ack it gets back and prints it.

The counter is the one after the highest the server has seen from the device (its replay
window), so each run is a new press; ``--counter`` sends a chosen one (the same counter again
is a retransmission: acknowledged, not a new alert).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.cli.common import EXIT_ERROR, EXIT_OK, in_transaction
from alertnet.config import Settings
from alertnet.errors import InvalidInput, NotFound
from alertnet.models import Device, DeviceStatus
from alertnet.protocol import (
    BATTERY_UNKNOWN,
    FLAG_DRILL,
    DecodeError,
    Downlink,
    EventCode,
    Uplink,
    decode_downlink,
    normalize_eui,
)

if TYPE_CHECKING:
    from alertnet.cli.common import Commands

DEFAULT_URL: Final = "http://127.0.0.1:8000"
UPLINK_PATH: Final = "/api/v1/uplinks"
TIMEOUT_S: Final = 15.0
# What an installer presses; heartbeats and restores are not something to "press".
PRESSABLE: Final = ("panic", "intrusion", "fire", "medical", "tamper", "test", "cancel")


def add_commands(commands: Commands) -> None:
    command = commands.add_parser(
        "press",
        help="send a signed press of a registered device to a running alertnet (for trying it)",
        description=(
            "Sign a v1 frame with the device's key (read from ALERTNET_DATABASE_URL), send it "
            "to a running alertnet over HTTP and print the ack it answers."
        ),
    )
    command.add_argument("eui", metavar="EUI", help="the device's EUI, 16 hex characters")
    command.add_argument("--event", default="panic", choices=PRESSABLE)
    command.add_argument("--drill", action="store_true", help="mark the press as a drill")
    command.add_argument(
        "--url", default=DEFAULT_URL, help=f"the running alertnet (default {DEFAULT_URL})"
    )
    command.add_argument(
        "--counter", type=int, help="the frame counter (default: one above the last seen)"
    )
    command.set_defaults(handler=_press)


@dataclass(frozen=True, slots=True)
class Pressed:
    """A press that was sent, and the server's ack of it."""

    uplink: Uplink
    ack: Downlink
    ack_valid: bool


class NoAnswer(Exception):
    """The server could not be reached, or refused the frame (the message says why)."""


async def signed_press(
    session: AsyncSession, eui: str, event: EventCode, *, drill: bool, counter: int | None
) -> tuple[Uplink, bytes]:
    """The device's next press, signed with its key, and the key (to check the ack)."""
    try:
        eui = normalize_eui(eui)
    except DecodeError as exc:
        raise InvalidInput(str(exc)) from exc
    device = await session.scalar(select(Device).where(Device.eui == eui))
    if device is None:
        raise NotFound(f"no device {eui}: register it with `alertnet device add`")
    if device.status == DeviceStatus.DISABLED:
        raise InvalidInput(f"device {device.eui} is disabled: alertnet would quarantine its press")
    if counter is None:
        counter = device.window_highest + 1
    uplink = Uplink.build(
        device.key,
        device.eui,
        counter,
        event,
        flags=FLAG_DRILL if drill else 0,
        battery=BATTERY_UNKNOWN,
    )
    return uplink, device.key


async def send_press(client: httpx.AsyncClient, uplink: Uplink, key: bytes) -> Pressed:
    """POST the binary frame; the binary ack that comes back, checked against the key."""
    try:
        response = await client.post(
            UPLINK_PATH,
            content=uplink.to_bytes(),
            headers={"content-type": "application/octet-stream"},
        )
    except httpx.TransportError as exc:
        raise NoAnswer(
            f"no alertnet answers at {client.base_url} ({exc.__class__.__name__}: {exc}); "
            "start one with `alertnet serve` (or `make run`), or give --url"
        ) from exc
    if response.status_code != 200:
        try:
            body = response.json()
            why = f"{body.get('error', '?')}: {body.get('detail', '')}"
        except ValueError:
            why = response.text[:200]
        raise NoAnswer(f"alertnet refused the press (HTTP {response.status_code}) — {why}")
    try:
        ack = decode_downlink(response.content)
    except DecodeError as exc:
        raise NoAnswer(f"the answer is not a downlink ack: {exc}") from exc
    return Pressed(uplink, ack, ack.verify(key) and ack.eui == uplink.eui)


def describe(pressed: Pressed, url: str) -> list[str]:
    uplink, ack = pressed.uplink, pressed.ack
    drill = " (drill)" if uplink.drill else ""
    return [
        f"sent {uplink.event.wire_name}{drill} from {uplink.eui}, counter {uplink.counter}, "
        f"to {url.rstrip('/')}{UPLINK_PATH}",
        f"frame {uplink.to_bytes().hex()}",
        f"ack   {ack.to_bytes().hex()}: counter {ack.counter}, state {ack.state.wire_name} "
        f"({int(ack.state)}), MIC {'valid' if pressed.ack_valid else 'INVALID'}",
    ]


def _press(args: argparse.Namespace, settings: Settings) -> int:
    event = EventCode.from_wire_name(args.event)
    if args.counter is not None and not 0 <= args.counter <= 0xFFFFFFFF:
        raise InvalidInput("--counter must be 0..4294967295")

    async def prepare(session: AsyncSession) -> tuple[Uplink, bytes]:
        return await signed_press(session, args.eui, event, drill=args.drill, counter=args.counter)

    uplink, key = in_transaction(settings, prepare)

    async def send() -> Pressed:
        async with httpx.AsyncClient(base_url=args.url, timeout=TIMEOUT_S) as client:
            return await send_press(client, uplink, key)

    try:
        pressed = asyncio.run(send())
    except NoAnswer as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    for line in describe(pressed, args.url):
        print(line)
    return EXIT_OK if pressed.ack_valid and pressed.ack.counter == uplink.counter else EXIT_ERROR
