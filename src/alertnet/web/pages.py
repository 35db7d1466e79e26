"""Serves the web pages (``/console``, ``/tablet``, ``/login``, ``/mahalla``) and their static
files.

Everything a page needs comes from alertnet itself: ``/static/`` is ``web/static/`` (plain
HTML, CSS and native ES modules in ``shared/``, ``console/``, ``tablet/`` and ``login/``, no
build step) and ``/static/leaflet/`` is the Leaflet of the installed ``xstatic-leaflet``
package, so no page fetches code from the internet. The pages are public files; what they
show comes from the API, which checks the session cookie.

Scripts are always sent as ``text/javascript``: browsers refuse a module of any other type,
and the type Python guesses from the host's MIME tables is not that everywhere.

Pages and static files are sent with ``Cache-Control: no-cache`` (revalidate by ETag each
time): a tablet must never keep running yesterday's script after an upgrade. The tablet and
login pages get a strict Content-Security-Policy (own origin only, no inline script); the
console and the mahalla pages the same with the configured tile server's images allowed
(``map_csp``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import xstatic.pkg.leaflet as leaflet
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from alertnet.auth.me import page_language
from alertnet.errors import NotFound
from alertnet.i18n import LANGUAGES
from alertnet.web.tiles import tile_url

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
LEAFLET_DIR: Final = Path(leaflet.BASE_DIR)
JAVASCRIPT: Final = "text/javascript; charset=utf-8"

# Own origin only; 'self' covers the same-origin WebSocket (ws: / wss:) in current browsers.
STRICT_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'none'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
_COMMON_HEADERS: Final = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class RevalidatedStaticFiles(StaticFiles):
    """``StaticFiles`` whose answers must be revalidated (ETag) before each use."""

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        if isinstance(response, FileResponse) and Path(full_path).suffix == ".js":
            response.headers["Content-Type"] = JAVASCRIPT
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


router = APIRouter(include_in_schema=False)
# The more specific mount first: /static/leaflet/… must not be looked up in web/static/.
router.mount("/static/leaflet", RevalidatedStaticFiles(directory=LEAFLET_DIR), name="leaflet")
router.mount("/static", RevalidatedStaticFiles(directory=STATIC_DIR), name="static")


def map_csp(tile_template: str) -> str:
    """``STRICT_CSP`` that also lets a map's images come from the tile server of
    ``tile_template`` (``/web/config.json``'s ``tile_url``; a ``{s}`` subdomain becomes ``*``).
    A template whose origin cannot be written as a CSP source allows its scheme instead."""
    parts = urlsplit(tile_template)
    if not parts.scheme:
        return STRICT_CSP  # tiles from this server (``/tiles/…``)
    host = parts.netloc.replace("{s}", "*")
    source = f"{parts.scheme}://{host}"
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*://[A-Za-z0-9*.:\[\]-]+", source):
        source = f"{parts.scheme}:"  # urlsplit keeps only a well-formed scheme
    return STRICT_CSP.replace("img-src 'self' data:", f"img-src 'self' data: {source}".rstrip())


def _page(name: str, *, csp: str | None = STRICT_CSP) -> FileResponse:
    path = STATIC_DIR / name
    if not path.is_file():
        raise NotFound(f"the page {name} is not installed")
    headers = dict(_COMMON_HEADERS)
    if csp is not None:
        headers["Content-Security-Policy"] = csp
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=headers)


# Plain ``def``: FastAPI runs them in its thread pool, so the file checks never block the loop.
@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=307)


@router.get("/login")
def login_page() -> FileResponse:
    return _page("login.html")


@router.get("/tablet")
def tablet_page() -> FileResponse:
    return _page("tablet.html")


@router.get("/console")
def console_page(request: Request) -> FileResponse:
    # Strict, but its map loads the configured tiles (a camera snapshot is a link, not an image).
    return _page("console.html", csp=map_csp(tile_url(request.app.state.runtime.settings)))


@router.get("/mahalla")
def mahalla_page(request: Request) -> FileResponse:
    # The mahalla team's page (DESIGN §12): strict, but its map loads the configured tiles.
    return _page("mahalla.html", csp=map_csp(tile_url(request.app.state.runtime.settings)))


@router.get("/mahalla/report")
def mahalla_report_page(request: Request) -> FileResponse:
    # The same page, laid out as the printable monthly report (``?mahalla_id=&month=``).
    return _page("mahalla.html", csp=map_csp(tile_url(request.app.state.runtime.settings)))


@router.get("/web/config.json")
async def web_config(request: Request) -> dict[str, Any]:
    """What the pages need from the settings (the map's tile server for the console) and the
    language and time zone they show (DESIGN §11; ``alertnet.auth.me.page_language``)."""
    settings = request.app.state.runtime.settings
    return {
        "tile_url": tile_url(request.app.state.runtime.settings),
        "language": await page_language(request),
        "languages": list(LANGUAGES),
        "timezone": settings.timezone,
    }
