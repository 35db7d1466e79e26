"""``/tiles/{z}/{x}/{y}`` from a local MBTiles file (DESIGN §11), over HTTP without a browser.

Each test writes its own small MBTiles file (``tests.tiles.mbtiles``) and runs the real app on
it: the TMS row flip, the Content-Type from ``metadata.format``, vector and unknown files
refused when the app is created, 404 (never 500) for a missing or impossible tile, caching
headers with a 304 on ``If-None-Match``, ``/web/config.json`` pointing the maps here, and a
tile read stuck on a locked file not holding up other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError

from alertnet.app import create_app
from alertnet.config import Settings
from alertnet.web.tiles import LOCAL_TILE_URL, TileFileRefused
from tests.support.asgi import AppClient, alertnet_api, app_settings
from tests.tiles.mbtiles import solid_png, tms_row, write_mbtiles

RED: Final = solid_png((200, 30, 30), size=8)
BLUE: Final = solid_png((30, 30, 200), size=8)
GREEN: Final = solid_png((30, 200, 30), size=8)
# Tile 3/2/1 and the tile whose TMS row is 1 (XYZ 3/2/6): a missing flip swaps them.
NORTH: Final = (3, 2, 1)
SOUTH: Final = (3, 2, 6)
ERROR_KEYS: Final = {"error", "detail", "code"}


@pytest.fixture
def tile_file(tmp_path: Path) -> Path:
    return write_mbtiles(tmp_path / "city.mbtiles", {NORTH: RED, SOUTH: BLUE, (0, 0, 0): GREEN})


@pytest_asyncio.fixture
async def tiles(sqlite_url: str, tile_file: Path) -> AsyncIterator[AppClient]:
    async with alertnet_api(sqlite_url, tiles_mbtiles=tile_file) as client:
        yield client


def assert_error(response: httpx.Response, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert set(response.json()) == ERROR_KEYS, response.text


async def test_xyz_urls_read_the_tms_row(tiles: AppClient, tile_file: Path) -> None:
    # The file really stores XYZ 3/2/1 at TMS row 2^3 - 1 - 1 = 6 (as MBTiles tools do).
    with contextlib.closing(sqlite3.connect(tile_file)) as connection:
        (stored,) = connection.execute(
            "SELECT tile_data FROM tiles WHERE zoom_level = 3 AND tile_column = 2 AND tile_row = 6"
        ).fetchone()
    assert stored == RED and tms_row(3, 1) == 6

    north = await tiles.get("/tiles/3/2/1")
    assert north.status_code == 200, north.text
    assert north.content == RED
    assert north.headers["content-type"] == "image/png"
    south = await tiles.get("/tiles/3/2/6")
    assert south.content == BLUE
    world = await tiles.get("/tiles/0/0/0")
    assert world.content == GREEN


@pytest.mark.parametrize(
    ("declared", "content_type"),
    [
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("JPG", "image/jpeg"),
        ("webp", "image/webp"),
    ],
)
async def test_content_type_comes_from_the_metadata(
    sqlite_url: str, tmp_path: Path, declared: str, content_type: str
) -> None:
    data = b"tile bytes as the file holds them"
    path = write_mbtiles(
        tmp_path / f"{declared}.mbtiles", {(1, 0, 0): data}, metadata={"format": declared}
    )
    async with alertnet_api(sqlite_url, tiles_mbtiles=path) as client:
        response = await client.get("/tiles/1/0/0")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == content_type
    assert response.content == data


def test_a_file_without_a_format_is_recognised_by_its_tiles(tmp_path: Path) -> None:
    # MBTiles 1.0 files have no metadata.format; their PNG tiles say what they are.
    path = write_mbtiles(tmp_path / "old.mbtiles", {(0, 0, 0): RED}, metadata={"name": "old"})
    create_app(app_settings("sqlite:///unused.db", tiles_mbtiles=path))


@pytest.mark.parametrize(
    ("metadata", "tile", "reason"),
    [
        ({"format": "pbf"}, gzip.compress(b"\x1a\x05layer"), "vector tiles (format pbf)"),
        ({"format": "svg"}, b"<svg/>", "unknown tile format ('svg')"),
        ({"name": "no format"}, gzip.compress(b"\x1a\x05layer"), "unknown tile format (none"),
    ],
    ids=["vector", "unknown", "unrecognisable"],
)
def test_files_the_maps_cannot_draw_are_refused_at_start(
    tmp_path: Path, metadata: dict[str, str], tile: bytes, reason: str
) -> None:
    path = write_mbtiles(tmp_path / "refused.mbtiles", {(0, 0, 0): tile}, metadata=metadata)
    with pytest.raises(TileFileRefused) as refused:
        create_app(app_settings("sqlite:///unused.db", tiles_mbtiles=path))
    assert reason in refused.value.detail
    assert f"ALERTNET_TILES_MBTILES={path}" in refused.value.detail


def test_a_file_that_is_not_mbtiles_is_refused_at_start(tmp_path: Path) -> None:
    not_sqlite = tmp_path / "tiles.mbtiles"
    not_sqlite.write_bytes(b"this is not an SQLite database, just bytes " * 100)
    with pytest.raises(TileFileRefused, match="not a readable MBTiles"):
        create_app(app_settings("sqlite:///unused.db", tiles_mbtiles=not_sqlite))
    empty_sqlite = tmp_path / "empty.mbtiles"
    with contextlib.closing(sqlite3.connect(empty_sqlite)) as connection:
        connection.execute("CREATE TABLE other (a)")
    with pytest.raises(TileFileRefused, match="no such table"):
        create_app(app_settings("sqlite:///unused.db", tiles_mbtiles=empty_sqlite))


def test_a_missing_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="tiles_mbtiles"):
        Settings(tiles_mbtiles=tmp_path / "nowhere.mbtiles")


async def test_a_missing_tile_is_404_with_the_error_shape(tiles: AppClient) -> None:
    response = await tiles.get("/tiles/3/0/0")
    assert_error(response, 404)
    assert response.json()["code"] == "not_found"


@pytest.mark.parametrize(
    "path",
    [
        "/tiles/3/8/0",
        "/tiles/3/0/8",
        "/tiles/3/-1/0",
        "/tiles/-1/0/0",
        "/tiles/25/0/0",
        "/tiles/99999999999999999999999/0/0",
        "/tiles/3/0/99999999999999999999999",
        "/tiles/z/0/0",
        "/tiles/3/0/0.png",
    ],
)
async def test_impossible_tiles_are_404_or_422_never_500(tiles: AppClient, path: str) -> None:
    assert_error(await tiles.get(path), 404, 422)


async def test_tiles_are_cached_and_revalidated_by_etag(tiles: AppClient) -> None:
    first = await tiles.get("/tiles/3/2/1")
    assert first.status_code == 200
    cache_control = first.headers["cache-control"]
    assert "max-age=" in cache_control and "no-store" not in cache_control
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert (await tiles.get("/tiles/3/2/6")).headers["etag"] != etag

    for if_none_match in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = await tiles.get("/tiles/3/2/1", headers={"If-None-Match": if_none_match})
        assert again.status_code == 304, if_none_match
        assert again.content == b""
        assert again.headers["etag"] == etag
    changed = await tiles.get("/tiles/3/2/1", headers={"If-None-Match": '"another-tile"'})
    assert changed.status_code == 200 and changed.content == RED


async def test_config_points_the_maps_at_the_local_tiles(tiles: AppClient, sqlite_url: str) -> None:
    config = (await tiles.get("/web/config.json")).json()
    assert config["tile_url"] == LOCAL_TILE_URL == "/tiles/{z}/{x}/{y}"

    server = "http://tiles.example.internal/{z}/{x}/{y}.png"
    async with alertnet_api(sqlite_url, tile_url=server) as without_file:
        assert (await without_file.get("/web/config.json")).json()["tile_url"] == server
        assert_error(await without_file.get("/tiles/0/0/0"), 404)


async def test_a_tile_read_waiting_on_the_file_does_not_hold_up_the_server(
    tiles: AppClient, tile_file: Path
) -> None:
    lock_held_s = 1.0
    # Another program holds the file locked (e.g. a tool rewriting it): the read waits on it.
    with contextlib.closing(sqlite3.connect(tile_file, isolation_level=None)) as writer:
        writer.execute("BEGIN EXCLUSIVE")
        locked_at = time.monotonic()
        waiting = asyncio.create_task(tiles.get("/tiles/3/2/1"))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        health = await tiles.get("/healthz")
        assert health.status_code == 200
        # Had the read blocked the event loop, /healthz would have been answered only once the
        # read had ended; the file is still locked, so the read must still be waiting.
        assert not waiting.done(), "the event loop was blocked"
        await asyncio.sleep(lock_held_s - (time.monotonic() - locked_at))
        writer.execute("ROLLBACK")
    response = await asyncio.wait_for(waiting, timeout=10)
    assert response.status_code == 200 and response.content == RED
