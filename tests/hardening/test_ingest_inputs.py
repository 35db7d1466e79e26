"""No value a client sends can fail an ingest batch or its quarantine fallback (DESIGN §14).

Issue 12, critical: a press sent with an ``X-Alertnet-Gateway`` header longer than the
``receptions.gateway_id`` column failed its batch on PostgreSQL, the quarantine fallback raised
``value too long for type character varying(120)`` and the pipeline task died. Every value the
pipeline stores from input is now made storable where it enters (``RawUplink``), and every
quarantined value is cut to its column, raw bytes to 1 KiB with their length and SHA-256.
"""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.ingest.outcomes import QUARANTINE_RAW_BYTES, quarantine_row
from alertnet.ingest.pipeline import Disposition, RawUplink
from alertnet.models import Device, Event, Quarantine, Reception, Transport
from alertnet.protocol import DecodeError, EventCode, Reason, Uplink
from tests.ingest.helpers import EUI, KEY, running_pipeline
from tests.support.factories import create_device

SessionFactory = async_sessionmaker[AsyncSession]

# Long enough to wait out the pipeline's retries, short enough to fail instead of hanging.
OUTCOME_TIMEOUT_S = 20.0
COLUMN_CHARS = {"gateway_id": 120, "source": 200, "device_eui": 16}


async def _device(session_factory: SessionFactory) -> None:
    async with unit_of_work(session_factory) as session:
        await create_device(session, eui=EUI, key=KEY)


async def test_an_overlong_gateway_id_neither_fails_the_batch_nor_stops_the_pipeline(
    session_factory: SessionFactory,
) -> None:
    await _device(session_factory)
    long_gateway = "g" * 300
    async with running_pipeline(session_factory) as pipeline:
        press = Uplink.build(KEY, EUI, 1, EventCode.PANIC).to_bytes()
        first = await asyncio.wait_for(
            pipeline.submit(RawUplink(press, Transport.HTTP, gateway_id=long_gateway)),
            OUTCOME_TIMEOUT_S,
        )
        second = await asyncio.wait_for(
            pipeline.submit(
                RawUplink(Uplink.build(KEY, EUI, 2, EventCode.PANIC).to_bytes(), Transport.MQTT)
            ),
            OUTCOME_TIMEOUT_S,
        )
    assert (first.disposition, second.disposition) == (Disposition.NEW, Disposition.NEW)
    async with session_factory() as session:
        assert await session.scalar(select(func.count()).select_from(Event)) == 2
        stored = await session.scalar(
            select(Reception.gateway_id).where(Reception.gateway_id != "")
        )
        device = (await session.scalars(select(Device))).one()
    assert stored == long_gateway[:120]
    assert device.last_gateway_id == long_gateway[:120]


def test_raw_uplink_makes_every_value_storable() -> None:
    raw = RawUplink(
        b"x",
        Transport.MQTT,
        gateway_id="gw\x00-\ud800-" + "é" * 500,
        source="alertnet/v1/up/" + "z" * 5000,
        rssi=10**12,
        snr=float("nan"),
    )
    assert raw.gateway_id is not None and len(raw.gateway_id) == 120
    assert raw.gateway_id.startswith("gw-\ufffd-é")
    assert len(raw.source) == 200
    assert (raw.rssi, raw.snr) == (None, None)
    assert RawUplink(b"", Transport.HTTP, gateway_id="\x00").gateway_id is None
    assert RawUplink(b"", Transport.SERIAL, rssi=-97, snr=7.5).snr == 7.5


async def test_every_quarantined_value_fits_its_column(session_factory: SessionFactory) -> None:
    topic = "alertnet/v1/gw/" + "t" * 5000 + "/rx"
    odd = RawUplink(b"\x00" * 10, Transport.MQTT, source=topic, gateway_id="ø" * 400)
    detail = "bad\x00frame " * 5000
    async with running_pipeline(session_factory) as pipeline:
        outcome = await asyncio.wait_for(
            pipeline.submit(odd, rejected=DecodeError(Reason.BAD_FIELD, detail)),
            OUTCOME_TIMEOUT_S,
        )
    assert outcome.disposition is Disposition.QUARANTINED
    async with session_factory() as session:
        row = (await session.scalars(select(Quarantine))).one()
    assert (len(row.source), len(row.gateway_id or "")) == (200, 120)
    assert "\x00" not in row.detail and len(row.detail) <= 2000
    assert row.raw == b"\x00" * 10 and row.raw_length == 10


@settings(database=None, deadline=None, max_examples=300)
@given(
    gateway_id=st.none() | st.text(max_size=400),
    source=st.text(max_size=400),
    detail=st.text(max_size=3000),
    eui=st.none() | st.text(max_size=40),
    rssi=st.none() | st.integers(),
    snr=st.none() | st.floats(allow_nan=True, allow_infinity=True),
)
def test_whatever_a_client_sends_every_value_fits_its_column(
    gateway_id: str | None,
    source: str,
    detail: str,
    eui: str | None,
    rssi: int | None,
    snr: float | None,
) -> None:
    raw = RawUplink(b"", Transport.MQTT, gateway_id=gateway_id, source=source, rssi=rssi, snr=snr)
    row = quarantine_row(raw, Reason.BAD_FIELD, detail, eui)
    texts = {
        "gateway_id": (raw.gateway_id, COLUMN_CHARS["gateway_id"]),
        "source": (raw.source, COLUMN_CHARS["source"]),
        "row.gateway_id": (row["gateway_id"], COLUMN_CHARS["gateway_id"]),
        "row.device_eui": (row["device_eui"], COLUMN_CHARS["device_eui"]),
        "row.detail": (row["detail"], 2000),
    }
    for name, (value, limit) in texts.items():
        if value is None:
            continue
        assert len(value) <= limit, name
        assert "\x00" not in value, name
        value.encode("utf-8")  # no lone surrogate: PostgreSQL could not take it
    assert raw.rssi is None or -200 <= raw.rssi <= 50
    assert raw.snr is None or -100 <= raw.snr <= 100


def test_the_quarantine_row_cuts_the_eui_and_the_reason_detail() -> None:
    raw = RawUplink(b"", Transport.HTTP)
    row = quarantine_row(raw, Reason.EUI_MISMATCH, "d" * 10_000, "e" * 64)
    assert len(row["device_eui"]) == COLUMN_CHARS["device_eui"]
    assert len(row["detail"]) == 2000
    assert row["raw_sha256"] == hashlib.sha256(b"").hexdigest()


@pytest.mark.parametrize("size", [1 << 20, 16 << 20], ids=["1MiB", "16MiB"])
async def test_a_huge_mqtt_payload_is_kept_as_its_first_kib_with_length_and_hash(
    session_factory: SessionFactory, size: int
) -> None:
    payload = bytes(range(256)) * (size // 256)
    async with running_pipeline(session_factory) as pipeline:
        outcome = await asyncio.wait_for(
            pipeline.submit(RawUplink(payload, Transport.MQTT, source="alertnet/v1/up/x")),
            OUTCOME_TIMEOUT_S,
        )
    assert (outcome.disposition, outcome.reason) == (Disposition.QUARANTINED, Reason.BAD_LENGTH)
    async with session_factory() as session:
        row = (await session.scalars(select(Quarantine))).one()
    assert QUARANTINE_RAW_BYTES == 1024
    assert row.raw == payload[:1024]
    assert row.raw_length == size
    assert row.raw_sha256 == hashlib.sha256(payload).hexdigest()
