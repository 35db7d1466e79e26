"""HTTP ingest: ``POST /api/v1/uplinks`` for devices and gateways that speak HTTP.

The body is a binary frame (``application/octet-stream``) or the JSON form; the answer, sent
only after the commit, is the downlink ack in the same form. A device authenticates with its
frame's MIC, so an uplink needs no bearer token. Rejected input is quarantined and answered
422 with the reason. The body's size is limited before it is read (``alertnet.http_limits``).

``X-Alertnet-Gateway`` names the LoRa gateway that relayed the frame, and is stored with the
event (DESIGN §14): it counts only when the request carries the bearer token of an admin, the
one account that may speak for a gateway, and then it must be 1 to 64 of ``[A-Za-z0-9._:-]``
(else 400). Without that token the header is ignored whatever it holds, the uplink is recorded
as plain HTTP, and the answer says so in ``X-Alertnet-Gateway: ignored``: a device's alarm is
never refused for a header that would not reach the database.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from alertnet.auth.deps import CredentialSource, credential_from
from alertnet.auth.tokens import user_for_token
from alertnet.db import unit_of_work
from alertnet.errors import InvalidHeader, Unauthorized, error_body
from alertnet.ingest.pipeline import RawUplink
from alertnet.models import Role, Transport
from alertnet.protocol import WireFormat

router = APIRouter()

GATEWAY_HEADER: Final = "x-alertnet-gateway"
GATEWAY_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class GatewayHeader(StrEnum):
    """What became of ``X-Alertnet-Gateway``, echoed in the answer's header of that name."""

    USED = "used"
    IGNORED = "ignored"


def valid_gateway_id(value: str) -> str:
    """The header's gateway id, or InvalidHeader (400) when it is not 1 to 64 allowed characters."""
    if GATEWAY_ID_PATTERN.fullmatch(value) is None:
        raise InvalidHeader(
            "X-Alertnet-Gateway must be 1-64 characters of letters, digits and . _ : -"
        )
    return value


async def speaks_for_gateways(request: Request) -> bool:
    """True when the request carries a live bearer token of an active admin."""
    try:
        credential = credential_from(request.headers, {})
    except Unauthorized:
        return False
    if credential is None or credential.source is not CredentialSource.HEADER:
        return False
    async with unit_of_work(request.app.state.runtime.session_factory) as session:
        user = await user_for_token(session, credential.token)
    return user is not None and user.role == Role.ADMIN


async def relaying_gateway(request: Request) -> tuple[str | None, GatewayHeader | None]:
    """The gateway id to record for this uplink, and what became of the header."""
    header = request.headers.get(GATEWAY_HEADER)
    if header is None:
        return None, None
    if await speaks_for_gateways(request):
        return valid_gateway_id(header), GatewayHeader.USED
    return None, GatewayHeader.IGNORED


@router.post(
    "/api/v1/uplinks",
    summary="Submit one uplink frame (binary or JSON); answers the signed downlink ack",
    responses={
        200: {"content": {"application/octet-stream": {}, "application/json": {}}},
        400: {"description": "X-Alertnet-Gateway is not a valid gateway id"},
        413: {"description": "the body is larger than 4 KiB"},
        422: {"description": "the frame was rejected (and quarantined); the reason is the code"},
    },
)
async def post_uplink(request: Request) -> Response:
    gateway_id, gateway_header = await relaying_gateway(request)
    body = await request.body()
    raw = RawUplink(
        body,
        Transport.HTTP,
        gateway_id=gateway_id,
        source=f"http:{request.client.host if request.client else '?'}",
    )
    outcome = await request.app.state.runtime.pipeline.submit(raw)
    headers = {"x-alertnet-gateway": gateway_header.value} if gateway_header else {}
    if not outcome.accepted:
        reason = outcome.reason.value if outcome.reason else "rejected"
        detail = outcome.detail or f"the uplink was rejected ({reason}) and quarantined"
        return JSONResponse(error_body(reason, detail), status_code=422, headers=headers)
    ack = outcome.ack_bytes()
    media_type = (
        "application/json" if outcome.wire_format is WireFormat.JSON else "application/octet-stream"
    )
    headers["x-alertnet-outcome"] = outcome.disposition.value
    return Response(ack, media_type=media_type, headers=headers)
