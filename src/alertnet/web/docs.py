"""``/docs``: the OpenAPI explorer (Swagger UI), served with its assets from alertnet itself.

FastAPI's own ``/docs`` loads Swagger UI from a CDN, so an operator on a closed network gets an
empty page and everyone else runs third-party script next to their token (DESIGN §14). The
script, stylesheet and icon here come from the installed ``fastapi-offline`` package, served
under ``/docs/assets/``; the page's Content-Security-Policy allows nothing but this origin and
the page's one inline script (by its hash). Swagger UI's online validator is switched off, as
it would send the schema to a third party. The app is built with ``docs_url=None`` and
``redoc_url=None`` and includes ``router``.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import lru_cache
from typing import Final

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS_PATH: Final = "/docs"
ASSETS_PATH: Final = "/docs/assets"
_ASSETS_PACKAGE: Final = ("fastapi_offline", "static")

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)

router = APIRouter(include_in_schema=False)
router.mount(ASSETS_PATH, StaticFiles(packages=[_ASSETS_PACKAGE]), name="docs-assets")


def _script_hash(script: str) -> str:
    digest = hashlib.sha256(script.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode('ascii')}'"


@lru_cache(maxsize=4)
def docs_page(title: str, openapi_url: str) -> tuple[bytes, str]:
    """The page's HTML and its Content-Security-Policy."""
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{title} - API",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon.png",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},
    )
    html = bytes(page.body).decode("utf-8")
    script_hashes = " ".join(_script_hash(script) for script in _INLINE_SCRIPT.findall(html))
    csp = (
        f"default-src 'self'; script-src 'self' {script_hashes}; "
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
    return html.encode("utf-8"), csp


@router.get(DOCS_PATH)
async def docs(request: Request) -> HTMLResponse:
    html, csp = docs_page(request.app.title, request.app.openapi_url or "/openapi.json")
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )
