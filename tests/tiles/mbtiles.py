"""Small MBTiles files written by the tests themselves, with real (tiny) PNG tiles.

``solid_png`` draws a one-colour PNG with nothing but zlib, so a browser really decodes it;
``write_mbtiles`` lays tiles given at XYZ coordinates into the MBTiles schema, rows in TMS
order (``tile_row = 2^z - 1 - y``) as the specification and every real tool store them.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path

#: Tile coordinates as the URLs give them: (z, x, y), y counted from the north.
Xyz = tuple[int, int, int]


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def solid_png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A ``size`` by ``size`` PNG of one colour (8-bit RGB, no filter)."""
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    row = b"\x00" + bytes(rgb) * size
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * size, 9))
        + _chunk(b"IEND", b"")
    )


def tms_row(z: int, y: int) -> int:
    return (1 << z) - 1 - y


def write_mbtiles(
    path: Path, tiles: Mapping[Xyz, bytes], *, metadata: Mapping[str, str] | None = None
) -> Path:
    """An MBTiles file at ``path`` holding ``tiles`` (keyed by XYZ) and ``metadata``."""
    if metadata is None:
        metadata = {"name": "test", "format": "png", "type": "baselayer"}
    with contextlib.closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
        connection.execute(
            "CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER,"
            " tile_data BLOB)"
        )
        connection.execute(
            "CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row)"
        )
        connection.executemany("INSERT INTO metadata VALUES (?, ?)", metadata.items())
        connection.executemany(
            "INSERT INTO tiles VALUES (?, ?, ?, ?)",
            [(z, x, tms_row(z, y), data) for (z, x, y), data in tiles.items()],
        )
    return path


def xyz_of(lat: float, lon: float, z: int) -> Xyz:
    """The XYZ (slippy map) tile that holds a point at zoom ``z``."""
    side = 1 << z
    x = int((lon + 180.0) / 360.0 * side)
    lat_rad = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(lat_rad)) / math.pi) / 2.0 * side)
    return z, x, y
