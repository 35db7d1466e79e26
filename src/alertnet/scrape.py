"""``GET /metrics`` for Prometheus, open only to those allowed to scrape it (DESIGN §14).

The metrics tell how busy the alarm path is and when it fails, which is not for anyone on the
network. A scrape is allowed from an address in ``ALERTNET_METRICS_ALLOW`` (comma-separated
addresses and CIDR networks; empty by default), with ``Authorization: Bearer`` and the
``ALERTNET_METRICS_TOKEN`` (Prometheus' ``authorization`` setting), or with the token or
session of an admin. Anyone else gets 401 (no credentials) or 403 (not an admin).
"""

from __future__ import annotations

import ipaddress
import secrets
from functools import lru_cache

from fastapi import APIRouter, Request, Response

from alertnet.auth.deps import actor_for_credential, request_credential
from alertnet.db import unit_of_work
from alertnet.errors import Forbidden, Unauthorized, Unavailable
from alertnet.models import Role

router = APIRouter(include_in_schema=False)

PROMETHEUS_TEXT = "text/plain; version=0.0.4"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def scrape_networks(setting: str) -> tuple[Network, ...]:
    """``127.0.0.1, 10.0.0.0/8`` → the networks; ValueError for an entry that is neither."""
    return tuple(
        ipaddress.ip_network(entry, strict=False)
        for entry in filter(None, (part.strip() for part in setting.split(",")))
    )


def from_scrape_address(request: Request, setting: str) -> bool:
    if not setting or request.client is None:
        return False
    try:
        networks = scrape_networks(setting)
    except ValueError as exc:
        raise Unavailable(f"ALERTNET_METRICS_ALLOW is not valid: {exc}") from exc
    try:
        address = ipaddress.ip_address(request.client.host)
    except ValueError:  # not an IP address (a Unix socket, a test client's name)
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack listener's view of an IPv4 client
    return any(address in network for network in networks)


def has_scrape_token(request: Request, scrape_token: str) -> bool:
    if not scrape_token:
        return False
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        token.strip().encode(), scrape_token.encode()
    )


async def ensure_may_scrape(request: Request) -> None:
    """Returns when the caller may read the metrics (see the module); Unauthorized/Forbidden."""
    settings = request.app.state.runtime.settings
    if from_scrape_address(request, settings.metrics_allow):
        return
    if has_scrape_token(request, settings.metrics_token):
        return
    credential = request_credential(request)
    if credential is None:
        raise Unauthorized(
            "the metrics need 'Authorization: Bearer <token>' of an admin or the scrape token"
        )
    async with unit_of_work(request.app.state.runtime.session_factory) as session:
        actor = await actor_for_credential(session, credential)
    if actor.role is not Role.ADMIN:
        raise Forbidden(f"the metrics are for admins and the scraper; {actor.username} is not")


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    await ensure_may_scrape(request)
    return Response(request.app.state.runtime.metrics.render(), media_type=PROMETHEUS_TEXT)
