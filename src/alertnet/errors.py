"""The one error tree of alertnet, and the one place that renders errors for HTTP clients.

    AlertnetError (500)
    ├── InvalidHeader (400)       a request header that cannot be used (e.g. X-Alertnet-Gateway)
    ├── InvalidInput (422)        a request or CLI argument that cannot be used
    ├── Unauthorized (401)        no or bad credentials
    ├── Forbidden (403)           credentials fine, role or scope wrong
    ├── NotFound (404)
    ├── Conflict (409)            e.g. an illegal alert state transition, a duplicate name
    ├── PayloadTooLarge (413)     a request body over its limit (``alertnet.http_limits``)
    └── Unavailable (503)         database or broker unreachable

Domain code raises these; third-party errors are wrapped at the boundary with ``raise … from
exc``. Every 4xx and 5xx answer has the body ``{"error", "detail", "code"}`` (DESIGN §14):
``code`` is a stable snake_case name for programs, ``error`` is the same name (the field
clients have always read), ``detail`` is one English sentence for people. That holds for this
tree, for FastAPI's request validation (422), for Starlette's own answers (400, 404 for an
unknown route, 405, …) and for anything unexpected (500, logged, never a stack trace to the
client). ``install_error_handlers`` puts the handlers on an app.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, ClassVar, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class AlertnetError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidHeader(AlertnetError):
    status_code = 400
    code = "invalid_header"


class InvalidInput(AlertnetError):
    status_code = 422
    code = "invalid_input"


class Unauthorized(AlertnetError):
    status_code = 401
    code = "unauthorized"


class Forbidden(AlertnetError):
    status_code = 403
    code = "forbidden"


class NotFound(AlertnetError):
    status_code = 404
    code = "not_found"


class Conflict(AlertnetError):
    status_code = 409
    code = "conflict"


class PayloadTooLarge(AlertnetError):
    status_code = 413
    code = "payload_too_large"


class Unavailable(AlertnetError):
    status_code = 503
    code = "unavailable"


# --- rendering -------------------------------------------------------------------------------

# Starlette and FastAPI raise HTTPException with a status alone (an unknown route, a method
# the route does not take, a body FastAPI could not parse); these give them stable codes.
_CODES_BY_STATUS: Final[Mapping[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    503: "unavailable",
}
_DETAILS_BY_STATUS: Final[Mapping[int, str]] = {
    404: "nothing is served at this path",
    405: "this path does not take this HTTP method",
}
# A request with hundreds of bad fields must not get an answer of hundreds of lines.
_MAX_VALIDATION_ERRORS_SHOWN = 10
_MAX_DETAIL_CHARS = 2000
INTERNAL_ERROR_DETAIL: Final = "an internal error occurred; it was logged"


def error_body(code: str, detail: str) -> dict[str, str]:
    """The JSON body of every 4xx and 5xx answer."""
    return {"error": code, "detail": detail[:_MAX_DETAIL_CHARS], "code": code}


def error_response(
    status_code: int, code: str, detail: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, detail), status_code=status_code, headers=headers)


def code_for_status(status_code: int) -> str:
    """The stable code of an HTTP status that carries no code of its own."""
    if status_code in _CODES_BY_STATUS:
        return _CODES_BY_STATUS[status_code]
    return "internal_error" if status_code >= 500 else "http_error"


def describe_validation_errors(errors: list[Any]) -> str:
    """``body.lat: Input should be less than or equal to 90; …``, without echoing inputs."""
    parts = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', 'invalid')}"
        for error in errors[:_MAX_VALIDATION_ERRORS_SHOWN]
    ]
    if len(errors) > _MAX_VALIDATION_ERRORS_SHOWN:
        parts.append(f"and {len(errors) - _MAX_VALIDATION_ERRORS_SHOWN} more")
    return "; ".join(parts) or "the request is not valid"


def _http_exception_detail(exc: StarletteHTTPException) -> str:
    if exc.status_code in _DETAILS_BY_STATUS:
        return _DETAILS_BY_STATUS[exc.status_code]
    if isinstance(exc.detail, str) and exc.detail:
        return exc.detail
    try:
        return HTTPStatus(exc.status_code).phrase
    except ValueError:
        return "the request failed"


def install_error_handlers(app: FastAPI) -> None:
    """Render every error as ``{"error", "detail", "code"}``; never a stack trace."""

    @app.exception_handler(AlertnetError)
    async def _alertnet_error(_request: Request, exc: AlertnetError) -> JSONResponse:
        return error_response(exc.status_code, exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = describe_validation_errors(list(exc.errors()))
        return error_response(InvalidInput.status_code, InvalidInput.code, detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(
            exc.status_code,
            code_for_status(exc.status_code),
            _http_exception_detail(exc),
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", INTERNAL_ERROR_DETAIL)
