"""schemathesis against the app's own OpenAPI, as each role: no 5xx, no hang, every error shaped.

Every operation the schema lists is called with generated requests, valid and invalid
(schemathesis' examples, coverage and fuzzing phases: boundary values, out-of-range integers,
NUL and odd characters, wrong types, extra fields), by an observer, a post, a dispatcher and
an admin of the fuzz city in turn. The budget is fixed and the generation derandomized (one
seed), so a run makes the same requests every time and stays within a few minutes on 2 cores.

The schema is the one ``create_app`` publishes (it needs no database, so it is read when the
module is collected); the requests go to the running fuzz app, in-process.
"""

from __future__ import annotations

from typing import Any, Final

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from alertnet.app import create_app
from alertnet.config import Settings
from tests.fuzz.city import REQUEST_TIMEOUT_S, ROLES, City, error_shape_problem, requests_made

SEED: Final = 12
# Fuzzing-phase examples per operation and role; the examples and coverage phases add theirs.
MAX_EXAMPLES_PER_OPERATION: Final = 25


def _published_schema() -> schemathesis.BaseSchema:
    app = create_app(Settings(database_url="sqlite+aiosqlite://", mqtt_url="mqtt://127.0.0.1:1"))
    loaded = schemathesis.openapi.from_dict(app.openapi())
    loaded.config.seed = SEED
    loaded.config.generation.update(
        max_examples=MAX_EXAMPLES_PER_OPERATION, deterministic=True, database="none"
    )
    loaded.config.update(request_timeout=REQUEST_TIMEOUT_S)
    return loaded


schema = _published_schema()


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=MAX_EXAMPLES_PER_OPERATION,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(
    case: schemathesis.Case[Any], role: str, fuzz_app: FastAPI, fuzz_city: City
) -> None:
    headers = fuzz_city.headers(role)
    # A hang raises requests' ReadTimeout here, which fails the test.
    response = case.call(app=fuzz_app, headers=headers, timeout=REQUEST_TIMEOUT_S)
    requests_made[f"schemathesis as {role}"] += 1
    reproduction = case.as_curl_command(headers=headers)
    assert response.status_code < 500, f"{response.status_code} for {reproduction}"
    if response.status_code >= 400:
        problem = error_shape_problem(response)
        assert problem is None, f"{problem} for {reproduction}"
