"""The devices' flash: frame counters that survive a reboot, kept in one state file per fleet.

Real firmware cannot write flash for every frame, so it reserves counters in blocks: it
persists "counters up to N are spent" and uses them from RAM; after a reboot it starts at N,
skipping the unused rest of the block. A counter above the highest seen is always new to the
server (DESIGN §2.3), so skipping ahead is safe; reusing one would be a replay. ``CounterStore``
does exactly this for a whole simulated fleet, group-committing the reservations of many
devices into one atomic file write (temporary file, fsync, rename).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Final

__all__ = ["DEFAULT_BLOCK", "CounterStore", "DeviceCounter"]

#: Counters reserved per flash write: a device reboot skips at most this many.
DEFAULT_BLOCK: Final = 32
_UINT32_MAX: Final = 0xFFFF_FFFF


def _read_file(path: Path) -> dict[str, int]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a counter state file")
    return {str(eui): int(limit) for eui, limit in data.items()}


def _write_file(path: Path, counters: dict[str, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        json.dump(counters, handle, separators=(",", ":"), sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class CounterStore:
    """Durable counter reservations of every device of a fleet.

    ``durable(eui)`` is the first counter a device may use after a reboot (everything below
    it may have been spent). ``reserve`` raises it and returns only once it is on disk.
    Without a ``path`` the store lives in memory (reboots still behave, runs do not chain).
    ``run()`` is the writer task; it must be running for ``reserve`` to return.
    """

    def __init__(self, path: Path | None, *, flush_interval_s: float = 0.02) -> None:
        self.path = path
        self._flush_interval_s = flush_interval_s
        self._durable: dict[str, int] = {}
        self._wanted: dict[str, int] = {}
        self._dirty = asyncio.Event()
        self._flushed: asyncio.Future[None] | None = None
        self.writes = 0

    async def load(self) -> None:
        """Read the state file (a missing file is an empty fleet history)."""
        if self.path is not None:
            self._durable = await asyncio.to_thread(_read_file, self.path)
        self._wanted = dict(self._durable)

    def durable(self, eui: str) -> int:
        return self._durable.get(eui, 0)

    async def reserve(self, eui: str, limit: int) -> int:
        """Make counters below ``limit`` usable by ``eui``; return the durable limit."""
        if limit > _UINT32_MAX + 1:
            raise OverflowError(f"device {eui} ran out of frame counters")
        if limit <= self._durable.get(eui, 0):
            return self._durable[eui]
        self._wanted[eui] = max(limit, self._wanted.get(eui, 0))
        if self._flushed is None:
            self._flushed = asyncio.get_running_loop().create_future()
        flushed = self._flushed
        self._dirty.set()
        await asyncio.shield(flushed)
        return self._durable[eui]

    async def run(self) -> None:
        """Write pending reservations, batching those that arrive within the flush interval."""
        while True:
            await self._dirty.wait()
            await asyncio.sleep(self._flush_interval_s)
            self._dirty.clear()
            flushed, self._flushed = self._flushed, None
            snapshot = dict(self._wanted)
            try:
                if self.path is not None:
                    await asyncio.to_thread(_write_file, self.path, snapshot)
                    self.writes += 1
            except OSError as exc:
                if flushed is not None:
                    flushed.set_exception(exc)
                raise
            self._durable = snapshot
            if flushed is not None:
                flushed.set_result(None)


class DeviceCounter:
    """One device's counter: RAM copy of the next value, backed by block reservations."""

    __slots__ = ("_block", "_eui", "_limit", "_next", "_store")

    def __init__(self, store: CounterStore, eui: str, *, block: int = DEFAULT_BLOCK) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self._store = store
        self._eui = eui
        self._block = block
        self._next = self._limit = store.durable(eui)

    @property
    def next_value(self) -> int:
        """The counter the next new message will carry (if no reboot intervenes)."""
        return self._next

    async def take(self) -> int:
        """A fresh counter, never used before by this device, even across reboots."""
        while self._next >= self._limit:
            durable = await self._store.reserve(self._eui, self._next + self._block)
            self._limit = max(self._limit, durable)
        counter = self._next
        self._next += 1
        return counter

    def reboot(self) -> None:
        """Lose RAM: continue from what the flash says was reserved."""
        self._next = self._limit = self._store.durable(self._eui)
