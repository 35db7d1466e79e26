"""What an ingest process remembers about devices between batches, and how it checks it.

Reading every device of a batch row-locked (joined to its mahalla) and writing it back row by
row cost half of ingest (issue 18). A process keeps each device's facts — key, status, mahalla
and risk, place, DC-09 account and key — with the ``revision`` it read them at and the replay
window it last committed. Database triggers bump ``devices.revision`` whenever any of those
facts changes, whoever changes them (migration 0011). A batch judges its frames on the cached
facts and then writes every window and device state in one compare-and-set statement
(``compare_and_set``), which first row-locks every device the batch touches, in id order (the
one lock order of ingest), and then writes a device only where its revision and window are
still the ones the batch judged against. A device whose compare fails, or that needs the slow
path, is then read (``read_devices(lock=True)``) under the lock the batch already holds, and
judged again: the database stays the judge, and no batch ever waits for a device lock while
holding another.

The cache learns only committed values (``DeviceCache.put`` after the commit): a revision then
names one committed set of facts, so an entry can never pass for facts it does not hold.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Table,
    bindparam,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.models import Device, Mahalla

__all__ = [
    "DEFAULT_SIZE",
    "DeviceCache",
    "DeviceFacts",
    "DeviceWrite",
    "compare_and_set",
    "read_devices",
    "save_devices",
]

DEVICES = cast(Table, Device.__table__)
#: Devices one process keeps (``ALERTNET_DEVICE_CACHE_SIZE``): a few hundred bytes each.
DEFAULT_SIZE = 200_000


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """A device as committed at ``revision``, with the replay window it had then."""

    id: int
    eui: str
    key: bytes
    status: str
    mahalla_id: int | None
    risk: str | None
    lat: float
    lon: float
    dc09_key: bytes | None
    dc09_account: str | None
    revision: int
    window_highest: int
    window_seen: int

    def with_window(self, highest: int, seen_signed: int) -> DeviceFacts:
        """The same facts with the window a commit gave the device."""
        return replace(self, window_highest=highest, window_seen=seen_signed)


class DeviceCache:
    """The devices one process knows, least recently used first out; not shared between
    processes (the revision tells each process what changed)."""

    def __init__(self, max_size: int = DEFAULT_SIZE) -> None:
        self._max_size = max_size
        self._facts: OrderedDict[str, DeviceFacts] = OrderedDict()

    def __len__(self) -> int:
        return len(self._facts)

    def get(self, eui: str) -> DeviceFacts | None:
        facts = self._facts.get(eui)
        if facts is not None:
            self._facts.move_to_end(eui)
        return facts

    def put(self, facts: Iterable[DeviceFacts]) -> None:
        """Remember committed facts (call after the commit that made or read them)."""
        if self._max_size <= 0:
            return
        for fact in facts:
            self._facts[fact.eui] = fact
            self._facts.move_to_end(fact.eui)
        while len(self._facts) > self._max_size:
            self._facts.popitem(last=False)

    def discard(self, euis: Iterable[str]) -> None:
        for eui in euis:
            self._facts.pop(eui, None)


async def read_devices(
    session: AsyncSession, euis: Collection[str], ids: Collection[int], *, lock: bool
) -> list[DeviceFacts]:
    """The devices named by eui or id, as committed; ``lock``: row-locked, in id order (the
    one lock order of ingest), so that two batches never wait on each other in a circle."""
    if not euis and not ids:
        return []
    conditions = []
    if euis:
        conditions.append(Device.eui.in_(euis))
    if ids:
        conditions.append(Device.id.in_(ids))
    statement = (
        select(
            Device.id,
            Device.eui,
            Device.key,
            Device.status,
            Device.mahalla_id,
            Mahalla.risk,
            Device.lat,
            Device.lon,
            Device.dc09_key,
            Device.dc09_account,
            Device.revision,
            Device.window_highest,
            Device.window_seen,
        )
        .outerjoin(Mahalla, Mahalla.id == Device.mahalla_id)
        .where(or_(*conditions))
    )
    if lock:
        statement = statement.order_by(Device.id).with_for_update(of=Device, key_share=True)
    return [DeviceFacts(**row._mapping) for row in await session.execute(statement)]


@dataclass(frozen=True, slots=True)
class DeviceWrite:
    """One device's new window and state, valid only if it is still at ``revision`` with the
    window ``(old_highest, old_seen)``. ``None`` leaves battery, format and gateway as they are."""

    id: int
    revision: int
    old_highest: int
    old_seen: int
    window_highest: int
    window_seen: int
    last_seen_at: datetime | None
    battery: int | None
    last_format: str | None
    last_transport: str | None
    last_gateway_id: str | None


# PostgreSQL: one statement for the whole batch, arrays in, the ids written out. ``locked``
# row-locks every device of the batch (``:lock_ids``: the writes and the slow path's devices) in
# id order before the UPDATE looks at any of them, and the compare reads the row as locked. A
# device found changed is thus locked as well: re-reading it never waits, so a batch never
# waits for a lock while holding some (with other batches doing the same: a deadlock). The
# CTE is materialized and the count below reads all of it (a one-time filter evaluated before
# the join), so every lock is taken, in order, whatever plan the UPDATE gets.
_CAS_POSTGRES = text(
    """
    WITH locked AS MATERIALIZED (
        SELECT id, revision, window_highest, window_seen FROM devices
        WHERE id = ANY(CAST(:lock_ids AS bigint[]))
        ORDER BY id
        FOR NO KEY UPDATE
    )
    UPDATE devices AS d SET
        window_highest = v.window_highest,
        window_seen = v.window_seen,
        last_seen_at = COALESCE(v.last_seen_at, d.last_seen_at),
        battery = COALESCE(v.battery, d.battery),
        last_format = COALESCE(v.last_format, d.last_format),
        last_transport = COALESCE(v.last_transport, d.last_transport),
        last_gateway_id = COALESCE(v.last_gateway_id, d.last_gateway_id)
    FROM unnest(
        CAST(:ids AS bigint[]), CAST(:revisions AS integer[]),
        CAST(:old_highests AS bigint[]), CAST(:old_seens AS bigint[]),
        CAST(:window_highests AS bigint[]), CAST(:window_seens AS bigint[]),
        CAST(:last_seen_ats AS timestamptz[]), CAST(:batteries AS integer[]),
        CAST(:last_formats AS text[]), CAST(:last_transports AS text[]),
        CAST(:last_gateway_ids AS text[])
    ) AS v(id, revision, old_highest, old_seen, window_highest, window_seen,
           last_seen_at, battery, last_format, last_transport, last_gateway_id),
    locked AS l
    WHERE (SELECT count(*) FROM locked) > 0
      AND l.id = v.id AND d.id = v.id AND l.revision = v.revision
      AND l.window_highest = v.old_highest AND l.window_seen = v.old_seen
    RETURNING d.id
    """
)


async def compare_and_set(
    session: AsyncSession, writes: Sequence[DeviceWrite], also_lock: Collection[int]
) -> set[int]:
    """Write each device still at its expected revision and window; the ids written.

    First row-locks, in id order, the devices of ``writes`` and ``also_lock`` (the batch's
    other devices), which stay locked until the transaction ends; with no writes, nothing is
    locked (``read_devices(lock=True)`` then locks in one pass). Devices not written are left as
    they are: another transaction moved their window or changed the device meanwhile.
    """
    if not writes:
        return set()
    writes = sorted(writes, key=lambda write: write.id)
    if not db.is_sqlite(session):
        rows = await session.execute(
            _CAS_POSTGRES,
            {
                "lock_ids": sorted({w.id for w in writes} | set(also_lock)),
                "ids": [w.id for w in writes],
                "revisions": [w.revision for w in writes],
                "old_highests": [w.old_highest for w in writes],
                "old_seens": [w.old_seen for w in writes],
                "window_highests": [w.window_highest for w in writes],
                "window_seens": [w.window_seen for w in writes],
                "last_seen_ats": [w.last_seen_at for w in writes],
                "batteries": [w.battery for w in writes],
                "last_formats": [w.last_format for w in writes],
                "last_transports": [w.last_transport for w in writes],
                "last_gateway_ids": [w.last_gateway_id for w in writes],
            },
        )
        return {int(row[0]) for row in rows}
    # SQLite: one writer; once this transaction holds the write lock, what it reads is what
    # it will overwrite, so compare in Python and write the winners in one executemany.
    await db.write_lock(session)
    current = {
        row.id: (row.revision, row.window_highest, row.window_seen)
        for row in await session.execute(
            select(
                DEVICES.c.id, DEVICES.c.revision, DEVICES.c.window_highest, DEVICES.c.window_seen
            ).where(DEVICES.c.id.in_([w.id for w in writes]))
        )
    }
    winners = [w for w in writes if current.get(w.id) == (w.revision, w.old_highest, w.old_seen)]
    if winners:
        await session.execute(
            update(DEVICES)
            .where(DEVICES.c.id == bindparam("device_id"))
            .values(
                window_highest=bindparam("new_highest", type_=BigInteger),
                window_seen=bindparam("new_seen", type_=BigInteger),
                last_seen_at=func.coalesce(
                    bindparam("seen_at", type_=DEVICES.c.last_seen_at.type),
                    DEVICES.c.last_seen_at,
                ),
                battery=func.coalesce(bindparam("new_battery", type_=Integer), DEVICES.c.battery),
                last_format=func.coalesce(
                    bindparam("new_format", type_=String), DEVICES.c.last_format
                ),
                last_transport=func.coalesce(
                    bindparam("new_transport", type_=String), DEVICES.c.last_transport
                ),
                last_gateway_id=func.coalesce(
                    bindparam("new_gateway", type_=String), DEVICES.c.last_gateway_id
                ),
            )
            .execution_options(synchronize_session=False),
            [
                {
                    "device_id": w.id,
                    "new_highest": w.window_highest,
                    "new_seen": w.window_seen,
                    "seen_at": w.last_seen_at,
                    "new_battery": w.battery,
                    "new_format": w.last_format,
                    "new_transport": w.last_transport,
                    "new_gateway": w.last_gateway_id,
                }
                for w in winners
            ],
        )
    return {w.id for w in winners}


async def save_devices(session: AsyncSession, rows: Sequence[Mapping[str, object]]) -> None:
    """Write the devices of a batch's slow path, row-locked since they were read: window,
    state and status (keys of ``rows``: ``device_id`` and the columns). ``None`` leaves
    battery, frame format and gateway as they are (sources other than v1 frames)."""
    if not rows:
        return
    await session.execute(
        update(DEVICES)
        .where(DEVICES.c.id == bindparam("device_id"))
        .values(
            window_highest=bindparam("window_highest"),
            window_seen=bindparam("window_seen"),
            last_seen_at=bindparam("last_seen_at", type_=DEVICES.c.last_seen_at.type),
            battery=func.coalesce(bindparam("battery", type_=Integer), DEVICES.c.battery),
            last_format=func.coalesce(
                bindparam("last_format", type_=String), DEVICES.c.last_format
            ),
            last_transport=bindparam("last_transport"),
            last_gateway_id=func.coalesce(
                bindparam("last_gateway_id", type_=String), DEVICES.c.last_gateway_id
            ),
            status=bindparam("status"),
        )
        .execution_options(synchronize_session=False),
        rows,
    )
