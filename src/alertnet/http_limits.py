"""Request bodies are refused by size before they are read (DESIGN §14 "Limits at the edge").

A body is held in memory whole by the endpoint that reads it, so without a limit four clients
sending 200 MB each take the process to gigabytes. ``BodySizeLimitMiddleware`` is a pure ASGI
middleware that knows each path's limit:

- a declared ``Content-Length`` over the limit is answered 413 at once; the app never runs and
  not a byte of the body is read;
- a body without a length (chunked) is counted as it streams in; the chunk that crosses the
  limit is the last one read, and the answer is 413 whatever the app did with the error.

After a 413 the server closes the connection instead of reading the rest of the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from alertnet.errors import PayloadTooLarge, error_body

KiB: Final = 1024

UPLINK_MAX_BODY_BYTES: Final = 4 * KiB
API_MAX_BODY_BYTES: Final = 64 * KiB

UPLINKS_PATH: Final = "/api/v1/uplinks"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """The largest body, in bytes, each path accepts; ``default_bytes`` for the others."""

    default_bytes: int = API_MAX_BODY_BYTES
    by_path: Mapping[str, int] = field(
        default_factory=lambda: {
            UPLINKS_PATH: UPLINK_MAX_BODY_BYTES,
        }
    )

    def for_path(self, path: str) -> int:
        return self.by_path.get(path.rstrip("/") or "/", self.default_bytes)


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when it declares none (or none usable)."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large_detail(limit_bytes: int) -> str:
    return f"the request body is larger than the {limit_bytes} bytes this path accepts"


async def send_too_large(send: Send, limit_bytes: int) -> None:
    detail = _too_large_detail(limit_bytes)
    body = json.dumps(error_body(PayloadTooLarge.code, detail), separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": PayloadTooLarge.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body is never read, so the connection cannot be reused.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyTooLarge(PayloadTooLarge):
    """Raised to the app by ``receive`` when a streamed body crosses its limit."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(_too_large_detail(limit_bytes))
        self.limit_bytes = limit_bytes


class _LimitedRequest:
    """One request's body counter; owns the answer once the body has crossed its limit."""

    def __init__(self, receive: Receive, send: Send, limit_bytes: int) -> None:
        self._receive = receive
        self._send = send
        self.limit_bytes = limit_bytes
        self.received_bytes = 0
        self.over_limit = False
        self.response_started = False
        self.refused = False

    async def receive(self) -> Message:
        if self.over_limit:
            # The app asks again after the refusal: the body stops here, for good.
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] == "http.request":
            self.received_bytes += len(message.get("body", b""))
            if self.received_bytes > self.limit_bytes:
                self.over_limit = True
                raise BodyTooLarge(self.limit_bytes)
        return message

    async def send(self, message: Message) -> None:
        if self.over_limit and not self.response_started:
            # Whatever the app answers after the refusal (FastAPI turns a failed body read
            # into a 400), the client gets the 413.
            if not self.refused:
                await self.refuse()
            return
        if message["type"] == "http.response.start":
            self.response_started = True
        await self._send(message)

    async def refuse(self) -> None:
        self.refused = True
        await send_too_large(self._send, self.limit_bytes)


class BodySizeLimitMiddleware:
    """Answers 413 to any HTTP request whose body is over its path's limit (see the module)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits | None = None) -> None:
        self.app = app
        self.limits = limits or BodyLimits()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit_bytes = self.limits.for_path(scope["path"])
        length = declared_length(scope)
        if length is not None and length > limit_bytes:
            await send_too_large(send, limit_bytes)
            return
        request = _LimitedRequest(receive, send, limit_bytes)
        try:
            await self.app(scope, request.receive, request.send)
        except Exception:
            if not request.over_limit or request.response_started:
                raise
            # The app failed because its body was cut off; the 413 below is the answer.
        if request.over_limit and not request.refused and not request.response_started:
            await request.refuse()
