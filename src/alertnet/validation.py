"""Field types for request models, so that no request value can break the database (DESIGN §14).

A NUL character cannot be stored in a PostgreSQL text column (the insert fails and would become
a 500), and an integer beyond 32 bits does not fit an ``INTEGER`` column. Request models build
their fields from these types and add each field's own length or range on top:

    class MahallaIn(BaseModel):
        name: Annotated[SafeLine, StringConstraints(min_length=1, max_length=120)]
        note: Annotated[SafeStr, StringConstraints(max_length=2000)] = ""
        households: Annotated[int, Field(ge=0, le=INT32_MAX)] = 0

The rules are patterns, so the OpenAPI schema states them and clients (and schemathesis) see
them. Lone surrogates need no rule: pydantic already refuses them in any ``str``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

# Any text a column can hold: everything but NUL (tabs and line breaks allowed, e.g. notes).
SafeStr = Annotated[str, StringConstraints(pattern=r"^[^\x00]*$")]

# One line of text for names, identifiers and addresses: no control characters at all, so a
# value cannot forge a line in a log or a CSV export.
SafeLine = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]*$")]

INT32_MAX = 2**31 - 1

# An integer an ``INTEGER`` column (32 bits signed) can hold; narrow it further per field.
Int32 = Annotated[int, Field(ge=-(2**31), le=INT32_MAX)]

# An integer a ``BIGINT`` column (64 bits signed: alert and offer ids) can hold.
Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]

Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]
