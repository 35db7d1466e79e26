"""Cross-site request forgery: the session cookie changes state only from alertnet's own pages.

Browsers attach the ``alertnet_session`` cookie to whatever sends a request to alertnet.
SameSite=Strict keeps other *sites* from making them, but not other origins of the same site:
a page served from the same host on another port is same-site, and its requests would carry
the cookie. So a request that could change state (POST, PUT, PATCH, DELETE) and is
authenticated by the cookie must show it comes from alertnet's own origin (DESIGN §14):

* ``Sec-Fetch-Site`` (set by the browser, not by page scripts), when present, decides:
  ``same-origin`` (a page of alertnet) or ``none`` (the user's own navigation) pass, while
  ``same-site`` and ``cross-site`` are refused;
* otherwise ``Origin``, which browsers send with every such request, must be exactly this
  request's own ``scheme://host[:port]``;
* a cookie request with neither is refused: it is no browser we know, and scripts and devices
  authenticate with ``Authorization: Bearer``, which no other page can make a browser send.

Bearer-token requests are not checked: a token must be read and sent on purpose. The same
checks, applied to a login, stop another origin from logging a browser into an account it
chose (login CSRF); a login with neither header is an API client and passes.
"""

from __future__ import annotations

from typing import ClassVar, Final
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from alertnet.errors import Forbidden

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# A WebSocket handshake to ws://host:port is opened by the pages of http://host:port.
PAGE_SCHEME_OF_WEBSOCKET: Final = {"ws": "http", "wss": "https"}


class CrossOriginRequest(Forbidden):
    """A cookie-authenticated change from a page of another origin (403)."""

    code: ClassVar[str] = "cross_origin_request"


def normalized_origin(url: str) -> str | None:
    """``scheme://host:port`` in lower case with the port always written, or None if unusable."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if not scheme or not host:
        return None
    if port is None:
        port = DEFAULT_PORTS.get(scheme)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def own_origin(connection: HTTPConnection) -> str | None:
    """The origin of alertnet's pages that may send this request: the scheme from the
    transport, the host from ``Host``. A WebSocket handshake, addressed to ``ws://host:port``
    (``wss``), comes from the pages of ``http://host:port`` (``https``)."""
    scheme = PAGE_SCHEME_OF_WEBSOCKET.get(connection.url.scheme, connection.url.scheme)
    return normalized_origin(f"{scheme}://{connection.url.netloc}")


def cross_origin_reason(connection: HTTPConnection) -> str | None:
    """Why the request does not come from this server's own origin, or None when it does."""
    fetch_site = connection.headers.get("sec-fetch-site")
    if fetch_site is not None:
        if fetch_site.strip().lower() in ALLOWED_FETCH_SITES:
            return None
        return f"the browser says it comes from another origin (Sec-Fetch-Site: {fetch_site})"
    origin = connection.headers.get("origin")
    if origin is None:
        return "it shows no Origin or Sec-Fetch-Site"
    if normalized_origin(origin) is None or normalized_origin(origin) != own_origin(connection):
        return f"its Origin {origin[:100]!r} is not this server's"
    return None


def ensure_same_origin(connection: HTTPConnection, *, by_cookie: bool) -> None:
    """Refuse (403) a state-changing request authenticated by the cookie from another origin.

    ``by_cookie``: the request's credential is the session cookie (``auth.deps.Credential``).
    """
    if not by_cookie:
        return
    if connection.scope.get("method", "GET").upper() in SAFE_METHODS:
        return
    reason = cross_origin_reason(connection)
    if reason is not None:
        raise CrossOriginRequest(
            f"the session cookie cannot be used for this request: {reason}; alertnet's pages "
            "send it from their own origin, other clients use 'Authorization: Bearer <token>'"
        )


def ensure_login_not_cross_origin(connection: HTTPConnection) -> None:
    """Refuse a login a browser makes on behalf of a page of another origin.

    API clients send neither ``Origin`` nor ``Sec-Fetch-Site`` and may log in.
    """
    headers = connection.headers
    if "origin" not in headers and "sec-fetch-site" not in headers:
        return
    reason = cross_origin_reason(connection)
    if reason is not None:
        raise CrossOriginRequest(f"a login from another origin is refused: {reason}")
