"""The mahallas' CSV import (DESIGN §12: households and businesses kept by admins): new names
registered, known ones updated where a cell is filled, all or nothing with every bad line
named; on SQLite and PostgreSQL, and through ``alertnet mahalla import`` as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.errors import InvalidInput
from alertnet.models import Mahalla
from alertnet.programme.registry import import_mahallas
from tests.support.factories import create_mahalla

SessionFactory = async_sessionmaker[AsyncSession]
ALERTNET = Path(sys.executable).with_name("alertnet")

GOOD = """\ufeffname,risk,district,region,households,businesses,lat,lon
Chorsu,,,,2150,640,,
Yangi Hayot,yellow,Sergeli,Tashkent,1200,85,41.2201,69.2211

Bodomzor,,,,2600,,,
"""


async def mahallas(session_factory: SessionFactory) -> dict[str, Mahalla]:
    async with session_factory() as session:
        return {m.name: m for m in await session.scalars(select(Mahalla))}


async def test_import_adds_new_mahallas_and_updates_the_filled_cells(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_mahalla(session, "Chorsu", risk="red", district="Shayxontohur")
        await create_mahalla(session, "Bodomzor", risk="green", households=5, businesses=7)
    async with unit_of_work(session_factory) as session:
        result = await import_mahallas(session, GOOD)
    assert (result.added, result.updated) == (1, 2)
    found = await mahallas(session_factory)
    chorsu, new, bodomzor = found["Chorsu"], found["Yangi Hayot"], found["Bodomzor"]
    assert (chorsu.households, chorsu.businesses, chorsu.risk) == (2150, 640, "red")
    assert chorsu.district == "Shayxontohur"  # an empty cell keeps the value
    assert (new.risk, new.district, new.region, new.households, new.lat) == (
        "yellow", "Sergeli", "Tashkent", 1200, 41.2201,
    )  # fmt: skip
    assert (bodomzor.households, bodomzor.businesses) == (2600, 7)


async def test_one_bad_line_imports_nothing_and_every_bad_line_is_named(
    session_factory: SessionFactory,
) -> None:
    async with unit_of_work(session_factory) as session:
        await create_mahalla(session, "Chorsu", risk="red", households=1)
    text = (
        "name,risk,households,businesses,lat,lon\n"
        "Chorsu,,500,20,,\n"  # fine on its own
        "Brand New,,10,1,,\n"  # line 3: a new mahalla needs a risk class
        "Chorsu,,600,,,\n"  # line 4: repeats line 2
        "Minus,red,-4,,,\n"  # line 5: not a whole number
        "Half,red,10,1,41.3,\n"  # line 6: lat without lon
        "Far,blue,1,1,,\n"  # line 7: unknown risk class
        "Short,red\n"  # line 8: too few fields
    )
    with pytest.raises(InvalidInput) as refused:
        async with unit_of_work(session_factory) as session:
            await import_mahallas(session, text)
    detail = refused.value.detail
    assert detail.startswith("CSV: 6 bad rows, nothing imported:")
    for line in (3, 4, 5, 6, 7, 8):
        assert f"line {line}:" in detail, (line, detail)
    assert "line 2:" not in detail
    assert (await mahallas(session_factory))["Chorsu"].households == 1
    for header in ("risk,households\nred,1\n", "name,colour\nX,red\n", "", "name,name\nA,B\n"):
        with pytest.raises(InvalidInput):
            async with unit_of_work(session_factory) as session:
                await import_mahallas(session, header)


def test_the_cli_imports_a_file(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("ALERTNET_")}
    env["ALERTNET_DATABASE_URL"] = f"sqlite:///{tmp_path / 'alertnet.db'}"
    env["ALERTNET_LOG_LEVEL"] = "WARNING"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(ALERTNET), *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    assert run("migrate").returncode == 0
    assert run("mahalla", "add", "Chorsu", "--risk", "red").returncode == 0
    good = tmp_path / "mahallas.csv"
    good.write_text(
        "name,risk,households\nChorsu,,10\nYangi Hayot,yellow,5\nBodomzor,green,7\n",
        encoding="utf-8",
    )
    done = run("mahalla", "import", str(good))
    assert done.returncode == 0, done.stderr
    assert "2 added, 1 updated" in done.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("name,households\nChorsu,many\n", encoding="utf-8")
    refused = run("mahalla", "import", str(bad))
    assert refused.returncode != 0
    assert "line 2: households 'many' is not a whole number" in refused.stderr
