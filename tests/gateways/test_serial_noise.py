"""A serial gateway in a noisy line: thousands of presses among garbage of every kind."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Device, Event, Quarantine
from alertnet.protocol import MAX_LINE_BYTES, EventCode, Reason, Uplink, format_rcv
from tests.support.factories import create_device
from tests.support.polling import eventually

from .helpers import FakeModule, running_alertnet

SessionFactory = async_sessionmaker[AsyncSession]

DEVICES = 40
PRESSES = 3000
EACH_KIND = 120


def _valid_line(rng: random.Random, uplink: Uplink) -> bytes:
    snr = rng.choice([rng.randint(-20, 12), rng.randint(-2000, 1200) / 100])
    return format_rcv(rng.randint(0, 65535), uplink.to_bytes(), rng.randint(-125, -40), snr)


def _garbage(rng: random.Random, sample: bytes) -> tuple[Reason, bytes, bytes]:
    """(expected reason, the bytes written, the bytes quarantine must keep) for one bad line."""
    body = sample.removesuffix(b"\r\n")
    head, _, tail = body.partition(b",")  # b"+RCV=<addr>", b"<len>,<data>,<rssi>,<snr>"
    length, _, rest = tail.partition(b",")
    data, _, signal = rest.partition(b",")
    kind = rng.randrange(6)
    if kind == 0:  # a line cut off (cut before its last field, so it can never parse)
        line = body[: rng.randint(1, body.rindex(b","))]
        return Reason.BAD_LINE, line + b"\r\n", line
    if kind == 1:  # random bytes, not all printable
        junk = bytes(
            rng.choice([*range(0, 10), *range(11, 13), *range(14, 256)])
            for _ in range(rng.randint(2, 90))
        )
        line = junk + bytes([rng.randint(0x80, 0xFF)])
        return Reason.BAD_LINE, line + b"\r\n", line
    if kind == 2:  # far too long: kept cut to MAX_LINE_BYTES + 1
        filler = secrets.token_hex(rng.randint(MAX_LINE_BYTES, 2000)).encode()
        line = b"+RCV=1," + str(len(filler)).encode() + b"," + filler + b",-80,5"
        return Reason.LINE_TOO_LONG, line + b"\r\n", line[: MAX_LINE_BYTES + 1]
    if kind == 3:  # a length field that is not the data's length
        line = head + b"," + str(int(length) + rng.choice([-2, 2, 8])).encode() + b"," + rest
        return Reason.LENGTH_MISMATCH, line + b"\r\n", line
    if kind == 4:  # not hex (right length), or hex of odd length
        if rng.random() < 0.5:
            at = rng.randrange(len(data))
            bad = data[:at] + rng.choice([b"g", b"z", b"-", b" "]) + data[at + 1 :]
        else:
            bad = data[:-1]
        line = head + b"," + str(len(bad)).encode() + b"," + bad + b"," + signal
        return Reason.BAD_HEX, line + b"\r\n", line
    line = f"+ERR={rng.randint(1, 20)}".encode()
    return Reason.MODULE_ERROR, line + b"\r\n", line


async def test_every_press_is_an_event_and_every_bad_line_is_quarantined(
    session_factory: SessionFactory, tmp_path: Path
) -> None:
    rng = random.Random(20240604)
    keys = {secrets.token_hex(8): secrets.token_bytes(16) for _ in range(DEVICES)}
    async with unit_of_work(session_factory) as session:
        for eui, key in keys.items():
            await create_device(session, eui=eui, key=key)
    counters = dict.fromkeys(keys, 0)
    presses: list[Uplink] = []
    for number in range(PRESSES):
        eui = rng.choice(list(keys))
        counters[eui] += 1
        event = EventCode.PANIC if number % 100 == 0 else EventCode.TEST
        presses.append(Uplink.build(keys[eui], eui, counters[eui], event))
    valid = [_valid_line(rng, press) for press in presses]
    bad_mic = [
        format_rcv(1, press.to_bytes()[:-4] + b"\x00\x00\x00\x00", -90, 3)
        for press in rng.sample(presses, 25)
    ]
    garbage = [_garbage(rng, rng.choice(valid)) for _ in range(6 * EACH_KIND)]
    harmless = [b"+READY\r\n", b"+OK\r\n", b"\r\n", b"\n"]

    # Interleave, keeping each device's presses in counter order.
    noise: list[bytes] = [g[1] for g in garbage] + bad_mic + harmless * 10
    rng.shuffle(noise)
    stream = bytearray()
    valid_left, noise_left = list(reversed(valid)), list(reversed(noise))
    while valid_left or noise_left:
        take_valid = valid_left and (not noise_left or rng.random() < 0.75)
        stream += (valid_left if take_valid else noise_left).pop()

    module = FakeModule(tmp_path, "ttyUSB-noise")
    try:
        async with running_alertnet(
            session_factory,
            serial={"gw-noise": module.path},
            route_downlinks=False,
            # Small, so that reading pauses and resumes many times on the way.
            bridge_options={"max_in_flight": 64},
        ) as net:
            await net.wait_ports_open()
            position = 0
            while position < len(stream):  # chunks that split lines anywhere
                size = rng.randint(1, 700)
                await module.write(bytes(stream[position : position + size]))
                position += size

            async def stored() -> tuple[int, int]:
                async with session_factory() as session:
                    events = await session.scalar(select(func.count()).select_from(Event))
                    quarantined = await session.scalar(select(func.count()).select_from(Quarantine))
                    return events or 0, quarantined or 0

            expected_quarantine = len(garbage) + len(bad_mic)
            await eventually(
                stored,
                lambda n: n == (PRESSES, expected_quarantine),
                awaiting=f"{PRESSES} presses stored and {expected_quarantine} lines quarantined",
                timeout_s=60,
            )
            bridge = net.bridges["gw-noise"]
            assert bridge.module.packets == PRESSES + len(bad_mic)
            assert bridge.module.statuses == {"ready": 10, "ok": 10}
            assert bridge.module.port.pauses > 0 and bridge.in_flight == 0
    finally:
        module.close()

    expected = Counter(reason for reason, _, _ in garbage)
    assert set(expected) == {
        Reason.BAD_LINE,
        Reason.LINE_TOO_LONG,
        Reason.LENGTH_MISMATCH,
        Reason.BAD_HEX,
        Reason.MODULE_ERROR,
    }
    assert bridge.bad_lines == expected
    async with session_factory() as session:
        rows = (
            await session.execute(select(Quarantine.reason, Quarantine.raw, Quarantine.gateway_id))
        ).all()
        events = {
            (eui, counter)
            for eui, counter in await session.execute(
                select(Device.eui, Event.counter).join(Device)
            )
        }
    by_reason = Counter(row.reason for row in rows)
    assert by_reason == {**{r.value: n for r, n in expected.items()}, "bad_mic": len(bad_mic)}
    assert {row.gateway_id for row in rows} == {"gw-noise"}
    for reason in expected:
        kept = sorted(row.raw for row in rows if row.reason == reason.value)
        assert kept == sorted(raw for why, _, raw in garbage if why is reason)
    assert events == {(press.eui, press.counter) for press in presses}
