"""Bulk device registration from CSV, all or nothing: every row is checked before anything is
written, and one bad row means no device of the file is imported.

The header names the columns, in any order::

    eui,kind,lat,lon,key,mahalla,site,name,address,supervision_interval_s,silent,
    premises_ref,owner,street,notes,contact1_name,contact1_phone,contact1_relation,contact2_…

Only ``eui``, ``kind``, ``lat`` and ``lon`` are required; an optional column may be left out or
left empty (an empty ``key`` is generated, the other defaults are those of ``add_device``).
``silent`` is ``true``/``false`` (also ``1``/``0``, ``yes``/``no``; empty: false). The premises
columns (DESIGN §10, ``alertnet.premises``) are validated like ``PUT /devices/{eui}/premises``;
contacts are called in their numbered order, and an all-empty contact slot is skipped.
An alarm panel over SIA DC-09 (DESIGN §9.1) has ``dc09_account`` (unique, in the file and in
the registry) and, when it encrypts, ``dc09_key`` (32, 48 or 64 hex digits); no frame key is
generated for it. A Frigate camera (kind ``camera``, DESIGN §9.3) has ``camera`` (its Frigate
name, unique) and optionally ``camera_labels`` and ``camera_zones`` (comma-separated, so quote
the cell) and ``camera_hours`` (``22-06``); no frame key is generated for it either.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.devices.service import (
    DeviceSpec,
    camera_setup,
    device_spec,
    new_device,
    parse_dc09_key,
    parse_key_hex,
)
from alertnet.errors import Conflict, InvalidInput
from alertnet.models import Device, Mahalla
from alertnet.premises import is_csv_column, premises_from_csv

COLUMNS = (
    "eui",
    "kind",
    "lat",
    "lon",
    "key",
    "mahalla",
    "site",
    "name",
    "address",
    "supervision_interval_s",
    "silent",
    "premises_ref",
    "owner",
    "street",
    "notes",
    "contact1_name",
    "contact1_phone",
    "contact1_relation",
    "dc09_account",
    "dc09_key",
    "camera",
    "camera_labels",
    "camera_zones",
    "camera_hours",
)
REQUIRED_COLUMNS = ("eui", "kind", "lat", "lon")
_TRUTH = {"": False, "0": False, "false": False, "no": False, "1": True, "true": True, "yes": True}
# Enough to fix a file in one pass without flooding a terminal when every row is wrong.
MAX_REPORTED_ERRORS = 100
# Stays far below the bind-parameter limits of SQLite and asyncpg.
LOOKUP_CHUNK = 500


@dataclass(frozen=True, slots=True)
class ImportResult:
    """How many devices were imported, and the keys alertnet generated (to flash them)."""

    count: int
    generated_keys: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class _Row:
    row: int  # 1-based data row, the header excluded
    line: int  # 1-based line of the file where the record starts

    def where(self) -> str:
        return f"line {self.line} (row {self.row})"


@dataclass(frozen=True, slots=True)
class _GoodRow:
    at: _Row
    spec: DeviceSpec


@dataclass(frozen=True, slots=True)
class _BadRow:
    at: _Row
    reason: str


def _records(text: str) -> Iterator[tuple[int, list[str]]]:
    """Non-blank CSV records with the file line each starts on (quoted newlines included)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    next_line = 1
    for record in reader:
        start, next_line = next_line, reader.line_num + 1
        if any(cell.strip() for cell in record):
            yield start, record


def _header(record: Sequence[str]) -> list[str]:
    header = [cell.strip().lower() for cell in record]
    unknown = [column for column in header if column not in COLUMNS and not is_csv_column(column)]
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are "
            + ",".join(COLUMNS)
        )
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise InvalidInput(f"column(s) {', '.join(repeated)} appear more than once")
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise InvalidInput(
            f"required column(s) {', '.join(missing)} missing; the header must name at least "
            + ",".join(REQUIRED_COLUMNS)
        )
    return header


def _number(values: dict[str, str], column: str) -> float:
    try:
        return float(values[column])
    except ValueError:
        raise InvalidInput(f"{column} {values[column]!r} is not a number") from None


def _spec(values: dict[str, str]) -> DeviceSpec:
    for column in REQUIRED_COLUMNS:
        if not values[column]:
            raise InvalidInput(f"{column} is empty")
    supervision = values.get("supervision_interval_s", "")
    if supervision and not supervision.isdigit():
        raise InvalidInput(f"supervision_interval_s {supervision!r} is not a whole number")
    key = values.get("key", "")
    silent = values.get("silent", "").lower()
    if silent not in _TRUTH:
        raise InvalidInput(f"silent {values['silent']!r} is not true or false")
    return device_spec(
        values["eui"],
        kind=values["kind"],
        lat=_number(values, "lat"),
        lon=_number(values, "lon"),
        key=parse_key_hex(key) if key else None,
        mahalla_name=values.get("mahalla") or None,
        site=values.get("site") or None,
        name=values.get("name", ""),
        address=values.get("address", ""),
        supervision_interval_s=int(supervision) if supervision else None,
        silent=_TRUTH[silent],
        premises=premises_from_csv(values),
        dc09_account=values.get("dc09_account") or None,
        dc09_key=parse_dc09_key(values["dc09_key"]) if values.get("dc09_key") else None,
        camera=camera_setup(
            values.get("camera") or None,
            values.get("camera_labels") or None,
            values.get("camera_zones") or None,
            values.get("camera_hours") or None,
        ),
    )


def parse_devices_csv(text: str) -> tuple[list[_GoodRow], list[_BadRow]]:
    """Check every row without the database; a bad header fails the whole file at once."""
    records = _records(text.removeprefix("\ufeff"))
    first = next(records, None)
    if first is None:
        raise InvalidInput("the file is empty; it needs a header line: " + ",".join(COLUMNS))
    header = _header(first[1])
    good: list[_GoodRow] = []
    bad: list[_BadRow] = []
    for row_number, (line, record) in enumerate(records, start=1):
        at = _Row(row=row_number, line=line)
        if len(record) != len(header):
            bad.append(_BadRow(at, f"has {len(record)} fields, the header has {len(header)}"))
            continue
        values = dict(zip(header, (cell.strip() for cell in record), strict=True))
        try:
            good.append(_GoodRow(at, _spec(values)))
        except InvalidInput as exc:
            bad.append(_BadRow(at, exc.detail))
    return good, bad


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), LOOKUP_CHUNK):
        yield items[start : start + LOOKUP_CHUNK]


async def _existing_euis(session: AsyncSession, euis: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(euis):
        found.update(
            (await session.execute(select(Device.eui).where(Device.eui.in_(chunk)))).scalars()
        )
    return found


async def _existing_accounts(session: AsyncSession, accounts: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(accounts):
        rows = await session.execute(
            select(Device.dc09_account).where(Device.dc09_account.in_(chunk))
        )
        found.update(account for account in rows.scalars() if account is not None)
    return found


async def _mahalla_ids(session: AsyncSession, names: Sequence[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for chunk in _chunks(names):
        rows = await session.execute(
            select(Mahalla.name, Mahalla.id).where(Mahalla.name.in_(chunk))
        )
        # Not ids.update(rows): a Result has .keys(), so update() would take it for a mapping.
        ids.update({name: mahalla_id for name, mahalla_id in rows})
    return ids


def _report(source_name: str, bad: list[_BadRow]) -> str:
    bad.sort(key=lambda item: item.at.row)
    noun = "row" if len(bad) == 1 else "rows"
    lines = [f"{source_name}: {len(bad)} bad {noun}, nothing imported:"]
    lines += [f"  {item.at.where()}: {item.reason}" for item in bad[:MAX_REPORTED_ERRORS]]
    if len(bad) > MAX_REPORTED_ERRORS:
        lines.append(f"  … and {len(bad) - MAX_REPORTED_ERRORS} more")
    return "\n".join(lines)


async def _read(path: Path) -> str:
    try:
        return await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc


async def import_devices(
    session: AsyncSession, source: Path | str, *, source_name: str | None = None
) -> ImportResult:
    """Import the devices of a CSV file (a ``Path``) or of CSV text (a ``str``).

    Raises InvalidInput naming every bad row (bad values, an EUI repeated in the file or
    already registered, an unknown mahalla) and writes nothing; the caller's transaction
    makes the import itself all or nothing.
    """
    if isinstance(source, Path):
        text = await _read(source)
        source_name = source_name or str(source)
    else:
        text = source
        source_name = source_name or "CSV"
    try:
        good, bad = parse_devices_csv(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{source_name}: {exc.detail}") from None

    first_row_of: dict[str, _Row] = {}
    unique: list[_GoodRow] = []
    for item in good:
        earlier = first_row_of.setdefault(item.spec.eui, item.at)
        if earlier is item.at:
            unique.append(item)
        else:
            bad.append(_BadRow(item.at, f"EUI {item.spec.eui} repeats {earlier.where()}"))
    first_row_of_account: dict[str, _Row] = {}
    for item in list(unique):
        account = item.spec.dc09_account
        if account is None:
            continue
        earlier = first_row_of_account.setdefault(account, item.at)
        if earlier is not item.at:
            unique.remove(item)
            bad.append(_BadRow(item.at, f"DC-09 account {account} repeats {earlier.where()}"))
    taken = await _existing_accounts(session, sorted(first_row_of_account))
    first_row_of_camera: dict[str, _Row] = {}
    for item in list(unique):
        if item.spec.camera is None:
            continue
        earlier = first_row_of_camera.setdefault(item.spec.camera.name, item.at)
        if earlier is not item.at:
            unique.remove(item)
            bad.append(
                _BadRow(item.at, f"camera {item.spec.camera.name} repeats {earlier.where()}")
            )
    cameras_taken = set(
        (
            await session.scalars(
                select(Device.camera_name).where(
                    Device.camera_name.in_(sorted(first_row_of_camera))
                )
            )
        ).all()
    )

    registered = await _existing_euis(session, [item.spec.eui for item in unique])
    names = sorted({item.spec.mahalla_name for item in unique if item.spec.mahalla_name})
    mahalla_ids = await _mahalla_ids(session, names)
    for item in unique:
        if item.spec.eui in registered:
            bad.append(_BadRow(item.at, f"a device with EUI {item.spec.eui} already exists"))
        elif item.spec.dc09_account in taken:
            account = item.spec.dc09_account
            bad.append(_BadRow(item.at, f"DC-09 account {account} belongs to another device"))
        elif item.spec.camera is not None and item.spec.camera.name in cameras_taken:
            name = item.spec.camera.name
            bad.append(_BadRow(item.at, f"camera {name} is another device already"))
        elif item.spec.mahalla_name and item.spec.mahalla_name not in mahalla_ids:
            bad.append(_BadRow(item.at, f"no mahalla named {item.spec.mahalla_name!r}"))
    if bad:
        raise InvalidInput(_report(source_name, bad))

    generated: list[tuple[str, bytes]] = []
    for item in unique:
        mahalla_id = mahalla_ids[item.spec.mahalla_name] if item.spec.mahalla_name else None
        device, key = new_device(item.spec, mahalla_id=mahalla_id)
        session.add(device)
        if item.spec.key is None and item.spec.dc09_account is None and item.spec.camera is None:
            generated.append((device.eui, key))
    try:
        await session.flush()
    except IntegrityError as exc:  # a device registered concurrently with the import
        raise Conflict(f"{source_name}: a device was registered meanwhile; retry") from exc
    return ImportResult(count=len(unique), generated_keys=tuple(generated))
