"""The one error tree of alertnet; each class carries the HTTP status it renders as.

    AlertnetError (500)
    ├── InvalidInput (422)        a request or CLI argument that cannot be used
    ├── Unauthorized (401)        no or bad credentials
    ├── Forbidden (403)           credentials fine, role or scope wrong
    ├── NotFound (404)
    ├── Conflict (409)            e.g. an illegal alert state transition, a duplicate name
    └── Unavailable (503)         database or broker unreachable

Domain code raises these; the handler in ``alertnet.app`` renders ``{"error", "detail"}`` and
never a stack trace. Third-party errors are wrapped at the boundary with ``raise … from exc``.
"""

from __future__ import annotations

from typing import ClassVar


class AlertnetError(Exception):
    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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


class Unavailable(AlertnetError):
    status_code = 503
    code = "unavailable"
