"""The mahallas as an admin keeps them for the programme (DESIGN §12): a change to one mahalla
(``PATCH /api/v1/mahallas/{name}``) and a CSV import of many (``alertnet mahalla import``).

The CSV header names the columns, in any order::

    name,risk,district,region,lat,lon,households,businesses

``name`` is required. A row naming a registered mahalla updates the columns it fills (an empty
cell keeps the value); a new name registers a mahalla and then needs ``risk``. The import is
all or nothing: every row is checked first, and one bad row (named with its line) means
nothing of the file is written.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import InvalidInput
from alertnet.mahallas import (
    MAX_NAME_LENGTH,
    add_mahalla,
    check_location,
    get_mahalla_by_name,
    parse_risk,
)
from alertnet.models import Mahalla

COLUMNS: Final = ("name", "risk", "district", "region", "lat", "lon", "households", "businesses")
# Far beyond any mahalla (a few thousand households), far below what a column holds.
MAX_COUNT: Final = 10_000_000
MAX_REPORTED_ERRORS: Final = 100


@dataclass(frozen=True, slots=True)
class MahallaChange:
    """What to change on a mahalla; None leaves a field as it is."""

    risk: str | None = None
    district: str | None = None
    region: str | None = None
    lat: float | None = None
    lon: float | None = None
    households: int | None = None
    businesses: int | None = None

    def check(self) -> MahallaChange:
        """Validated (InvalidInput naming the field otherwise)."""
        if self.risk is not None:
            parse_risk(self.risk)
        for label, text in (("district", self.district), ("region", self.region)):
            if text is not None and len(text.strip()) > MAX_NAME_LENGTH:
                raise InvalidInput(f"{label} is longer than {MAX_NAME_LENGTH} characters")
        for label, count in (("households", self.households), ("businesses", self.businesses)):
            if count is not None and not 0 <= count <= MAX_COUNT:
                raise InvalidInput(f"{label} must be between 0 and {MAX_COUNT}")
        if (self.lat is None) != (self.lon is None):
            raise InvalidInput("give both lat and lon, or neither")
        check_location(self.lat, self.lon)
        return self


def apply_change(mahalla: Mahalla, change: MahallaChange) -> Mahalla:
    change.check()
    if change.risk is not None:
        mahalla.risk = parse_risk(change.risk).value
    if change.district is not None:
        mahalla.district = change.district.strip()
    if change.region is not None:
        mahalla.region = change.region.strip()
    if change.lat is not None and change.lon is not None:
        mahalla.lat, mahalla.lon = change.lat, change.lon
    if change.households is not None:
        mahalla.households = change.households
    if change.businesses is not None:
        mahalla.businesses = change.businesses
    return mahalla


async def change_mahalla(session: AsyncSession, name: str, change: MahallaChange) -> Mahalla:
    """Change the mahalla named ``name`` (NotFound when there is none)."""
    mahalla = await get_mahalla_by_name(session, name)
    apply_change(mahalla, change)
    await session.flush()
    return mahalla


def mahalla_view(mahalla: Mahalla) -> dict[str, object]:
    return {
        "id": mahalla.id,
        "name": mahalla.name,
        "risk": mahalla.risk,
        "district": mahalla.district,
        "region": mahalla.region,
        "lat": mahalla.lat,
        "lon": mahalla.lon,
        "households": mahalla.households,
        "businesses": mahalla.businesses,
    }


@dataclass(frozen=True, slots=True)
class MahallaImport:
    added: int
    updated: int


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    name: str
    change: MahallaChange


def _count(values: dict[str, str], column: str) -> int | None:
    text = values.get(column, "")
    if not text:
        return None
    if not text.isdigit():
        raise InvalidInput(f"{column} {text!r} is not a whole number")
    return int(text)


def _coordinate(values: dict[str, str], column: str) -> float | None:
    text = values.get(column, "")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{column} {text!r} is not a number") from None


def _change(values: dict[str, str]) -> MahallaChange:
    return MahallaChange(
        risk=values.get("risk") or None,
        district=values.get("district") or None,
        region=values.get("region") or None,
        lat=_coordinate(values, "lat"),
        lon=_coordinate(values, "lon"),
        households=_count(values, "households"),
        businesses=_count(values, "businesses"),
    ).check()


def _header(record: list[str]) -> list[str]:
    header = [cell.strip().lower() for cell in record]
    unknown = [column for column in header if column not in COLUMNS]
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {', '.join(map(repr, unknown))}; the columns are "
            + ",".join(COLUMNS)
        )
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise InvalidInput(f"column(s) {', '.join(repeated)} appear more than once")
    if "name" not in header:
        raise InvalidInput("the header must name the column name")
    return header


def parse_mahallas_csv(text: str) -> tuple[list[_Row], list[str]]:
    """The rows of a mahalla CSV and the reasons of the bad ones (``line N: why``)."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header: list[str] | None = None
    rows: list[_Row] = []
    bad: list[str] = []
    seen: dict[str, int] = {}
    next_line = 1
    for record in reader:
        line, next_line = next_line, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue
        if header is None:
            header = _header(record)
            continue
        if len(record) != len(header):
            bad.append(f"line {line}: has {len(record)} fields, the header has {len(header)}")
            continue
        values = dict(zip(header, (cell.strip() for cell in record), strict=True))
        name = values["name"]
        try:
            if not name:
                raise InvalidInput("name is empty")
            if len(name) > MAX_NAME_LENGTH:
                raise InvalidInput(f"name is longer than {MAX_NAME_LENGTH} characters")
            if name in seen:
                raise InvalidInput(f"mahalla {name!r} repeats line {seen[name]}")
            seen[name] = line
            rows.append(_Row(line, name, _change(values)))
        except InvalidInput as exc:
            bad.append(f"line {line}: {exc.detail}")
    if header is None:
        raise InvalidInput("the file is empty; it needs a header line: " + ",".join(COLUMNS))
    return rows, bad


async def _read(path: Path) -> str:
    try:
        return await asyncio.to_thread(path.read_text, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not a UTF-8 text file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc


async def import_mahallas(session: AsyncSession, source: Path | str) -> MahallaImport:
    """Import the mahallas of a CSV file (a ``Path``) or of CSV text (a ``str``); the
    caller's transaction makes it all or nothing (see the module docstring)."""
    source_name = str(source) if isinstance(source, Path) else "CSV"
    text = await _read(source) if isinstance(source, Path) else source
    try:
        rows, bad = parse_mahallas_csv(text)
    except InvalidInput as exc:
        raise InvalidInput(f"{source_name}: {exc.detail}") from None
    # Every mahalla of a country is a few thousand rows: no bind-parameter limit to mind.
    existing = {mahalla.name: mahalla for mahalla in await session.scalars(select(Mahalla))}
    for row in rows:
        if row.name not in existing and row.change.risk is None:
            bad.append(f"line {row.line}: a new mahalla {row.name!r} needs a risk class")
    if bad:
        bad.sort(key=lambda reason: int(reason.split(":", 1)[0].removeprefix("line ")))
        noun = "row" if len(bad) == 1 else "rows"
        lines = [f"{source_name}: {len(bad)} bad {noun}, nothing imported:"]
        lines += [f"  {reason}" for reason in bad[:MAX_REPORTED_ERRORS]]
        if len(bad) > MAX_REPORTED_ERRORS:
            lines.append(f"  … and {len(bad) - MAX_REPORTED_ERRORS} more")
        raise InvalidInput("\n".join(lines))
    added = updated = 0
    for row in rows:
        if row.name in existing:
            apply_change(existing[row.name], row.change)
            updated += 1
            continue
        change = row.change
        await add_mahalla(
            session,
            row.name,
            risk=change.risk or "",
            district=change.district or "",
            region=change.region or "",
            lat=change.lat,
            lon=change.lon,
            households=change.households or 0,
            businesses=change.businesses or 0,
        )
        added += 1
    await session.flush()
    return MahallaImport(added=added, updated=updated)
