"""HTTP ingest: ``POST /api/v1/uplinks`` for devices and gateways that speak HTTP.

The body is a binary frame (``application/octet-stream``) or the JSON form; the answer, sent
only after the commit, is the downlink ack in the same form. A device authenticates with its
frame's MIC, so this endpoint takes no bearer token. Rejected input is quarantined and
answered 422 with the reason.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from alertnet.ingest.pipeline import RawUplink
from alertnet.models import Transport
from alertnet.protocol import WireFormat

router = APIRouter()

MAX_BODY_BYTES = 4096


@router.post(
    "/api/v1/uplinks",
    summary="Submit one uplink frame (binary or JSON); answers the signed downlink ack",
    responses={200: {"content": {"application/octet-stream": {}, "application/json": {}}}},
)
async def post_uplink(request: Request) -> Response:
    body = await request.body()
    gateway_id = request.headers.get("x-alertnet-gateway")
    raw = RawUplink(
        body[: MAX_BODY_BYTES + 1],
        Transport.HTTP,
        gateway_id=gateway_id,
        source=f"http:{request.client.host if request.client else '?'}",
    )
    outcome = await request.app.state.runtime.pipeline.submit(raw)
    if not outcome.accepted:
        return JSONResponse(
            {
                "error": outcome.reason.value if outcome.reason else "rejected",
                "detail": outcome.detail,
            },
            status_code=422,
        )
    ack = outcome.ack_bytes()
    media_type = (
        "application/json" if outcome.wire_format is WireFormat.JSON else "application/octet-stream"
    )
    return Response(
        ack, media_type=media_type, headers={"x-alertnet-outcome": outcome.disposition.value}
    )
