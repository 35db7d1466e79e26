"""Map tiles from a local MBTiles file, so the maps work on a network without internet.

A police network is often closed. With ``ALERTNET_TILES_MBTILES=path`` alertnet serves the
raster tiles of that file at ``/tiles/{z}/{x}/{y}`` (DESIGN §11) and ``/web/config.json``
points the pages' maps there instead of at ``ALERTNET_TILE_URL``.

URLs are XYZ (``y`` counted from the north, as Leaflet asks); MBTiles rows are TMS (counted
from the south), so the row read is ``2^z - 1 - y``. The Content-Type comes from the file's
``metadata.format``; a vector (``pbf``) file or a format a browser cannot show as an image is
refused when the app is created, with a sentence saying why, not tile by tile later.

SQLite reads happen in worker threads (``asyncio.to_thread``), each thread with its own
read-only connection (``mode=ro``), so a slow disk never holds up the event loop. Tiles carry
``Cache-Control`` with a max-age and a content ``ETag``; ``If-None-Match`` gets a 304.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from alertnet.config import Settings
from alertnet.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

#: The URL template the pages' maps use when tiles come from the local file.
LOCAL_TILE_URL: Final = "/tiles/{z}/{x}/{y}"
#: Deeper than any raster tile set (zoom 22 is about 4 cm a pixel); beyond it is "no tile".
MAX_ZOOM: Final = 24
#: Tiles change only when the operator replaces the file; a day, then revalidate by ETag.
TILE_CACHE_CONTROL: Final = "public, max-age=86400"
#: ``metadata.format`` → Content-Type, for the raster formats browsers draw.
RASTER_TYPES: Final = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
}
#: First bytes of each raster format, for files whose metadata does not name one (MBTiles 1.0).
_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
)


class TileFileRefused(InvalidInput):
    """``ALERTNET_TILES_MBTILES`` names a file alertnet cannot serve as map images."""

    code = "tile_file_refused"


def _sniff_format(data: bytes) -> str | None:
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


class MBTiles:
    """One MBTiles file, checked on opening and read from any number of worker threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._uri = f"{path.resolve().as_uri()}?mode=ro"
        self._local = threading.local()
        self.format, self.content_type = self._check()

    def _connection(self) -> sqlite3.Connection:
        """This thread's read-only connection (sqlite3 connections stay in their thread)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._uri, uri=True)
            self._local.connection = connection
        return connection

    def _refuse(self, why: str) -> TileFileRefused:
        return TileFileRefused(f"ALERTNET_TILES_MBTILES={self.path}: {why}")

    def _check(self) -> tuple[str, str]:
        """The file's raster format and its Content-Type, or ``TileFileRefused``."""
        try:
            with contextlib.closing(sqlite3.connect(self._uri, uri=True)) as connection:
                metadata = dict(connection.execute("SELECT name, value FROM metadata").fetchall())
                first = connection.execute("SELECT tile_data FROM tiles LIMIT 1").fetchone()
        except sqlite3.Error as exc:
            raise self._refuse(f"not a readable MBTiles (SQLite) file ({exc})") from exc
        declared = str(metadata.get("format") or "").strip().lower()
        if declared == "pbf":
            raise self._refuse(
                "it holds vector tiles (format pbf); the maps need raster tiles "
                "(png, jpg or webp): render the vector data to a raster MBTiles first"
            )
        if not declared and first is not None and isinstance(first[0], bytes):
            declared = _sniff_format(first[0]) or ""
        if declared not in RASTER_TYPES:
            shown = repr(declared) if declared else "none in metadata"
            raise self._refuse(
                f"unknown tile format ({shown}); the maps need png, jpg or webp raster tiles"
            )
        if first is None:
            log.warning("ALERTNET_TILES_MBTILES=%s holds no tiles: the maps stay blank", self.path)
        log.info(
            "serving %s map tiles from %s (zoom %s to %s)",
            declared,
            self.path,
            metadata.get("minzoom", "?"),
            metadata.get("maxzoom", "?"),
        )
        return declared, RASTER_TYPES[declared]

    def read(self, z: int, x: int, y: int) -> bytes | None:
        """The tile at XYZ ``z/x/y``, or ``None`` when the file has none (blocking)."""
        tms_row = (1 << z) - 1 - y
        row = (
            self._connection()
            .execute(
                "SELECT tile_data FROM tiles "
                "WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?",
                (z, x, tms_row),
            )
            .fetchone()
        )
        if row is None or row[0] is None:
            return None
        data = row[0]
        return bytes(data) if not isinstance(data, bytes) else data


def _etag(data: bytes) -> str:
    return '"' + hashlib.blake2b(data, digest_size=16).hexdigest() + '"'


def _matches(if_none_match: str, etag: str) -> bool:
    """RFC 9110 §13.1.2: weak comparison over a comma-separated list, or ``*``."""
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def tile_url(settings: Settings) -> str:
    """The tile URL template the pages' maps use (``/web/config.json``)."""
    return LOCAL_TILE_URL if settings.tiles_mbtiles is not None else settings.tile_url


def tiles_router(settings: Settings) -> APIRouter:
    """``/tiles/{z}/{x}/{y}`` from ``ALERTNET_TILES_MBTILES``; no routes when it is unset.

    Raises ``TileFileRefused`` at once when the file cannot be served.
    """
    router = APIRouter(include_in_schema=False)
    if settings.tiles_mbtiles is None:
        return router
    tiles = MBTiles(settings.tiles_mbtiles)

    @router.get("/tiles/{z}/{x}/{y}")
    async def tile(z: int, x: int, y: int, request: Request) -> Response:
        if not 0 <= z <= MAX_ZOOM:
            raise NotFound(f"no map tile at zoom {z}: zoom levels are 0 to {MAX_ZOOM}")
        side = 1 << z
        if not (0 <= x < side and 0 <= y < side):
            raise NotFound(f"no map tile {z}/{x}/{y}: at zoom {z}, x and y are 0 to {side - 1}")
        data = await asyncio.to_thread(tiles.read, z, x, y)
        if data is None:
            raise NotFound(f"the map tile file has no tile {z}/{x}/{y}")
        etag = _etag(data)
        headers = {
            "Cache-Control": TILE_CACHE_CONTROL,
            "ETag": etag,
            "X-Content-Type-Options": "nosniff",
        }
        if_none_match = request.headers.get("if-none-match")
        if if_none_match is not None and _matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        return Response(data, media_type=tiles.content_type, headers=headers)

    return router
