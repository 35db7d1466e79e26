"""Hypothesis fuzz of every header and body field that reaches the database (DESIGN §14).

Each test sends a request that is valid but for the field under test, so the hostile value
gets as far into the app as it can: past the state checks, into a row. Values are arbitrary
text (NUL, lone surrogates, control and bidi characters, up to 70 000 characters), integers
beyond 32 and 64 bits, NaN and infinities, and JSON of the wrong type. Nothing may get a 5xx,
every refusal has the ``{"error", "detail", "code"}`` body, and after each test a valid press
still commits (the critical finding of issue 12: one odd header stopped ingest for good).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Iterator
from typing import Any, Final
from urllib.parse import quote

import pytest
import requests
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alertnet.protocol import EventCode, Uplink
from tests.fuzz.city import (
    CHANGED_USER,
    PRESSING_DEVICES,
    REQUEST_TIMEOUT_S,
    TABLET,
    UPLINKS_PATH,
    City,
    FuzzDevice,
    app_client,
    error_shape_problem,
    press,
    requests_made,
)

API: Final = "/api/v1"
FIELD_FUZZ: Final = "field fuzz"

# --- hostile values ---------------------------------------------------------------------------

BOUNDARY_INTEGERS: Final = (
    -(2**64),
    -(2**63) - 1,
    -(2**63),
    -(2**31) - 1,
    -(2**31),
    -1,
    0,
    2**31 - 1,
    2**31,
    2**32,
    2**63 - 1,
    2**63,
    2**64,
    10**100,
)
BOUNDARY_FLOATS: Final = (math.nan, math.inf, -math.inf, -0.0, 1e308, -1e308, 5e-324, 91.0)
# Characters that have broken a database, a log line or a parser somewhere.
HOSTILE_CHARACTERS: Final = (
    "\x00",
    "\ud800",
    "\udfff",
    "\x1b",
    "\x7f",
    "\u2028",
    "\u202e",
    "\ufeff",
    "\U0001f6a8",
    "\r",
    "\n",
    "'",
    '"',
    "\\",
    "%",
)
# Just over the column widths (16, 24, 32, 40, 64, 80, 120, 200, 300, 400) and the body limits.
LONG_LENGTHS: Final = (17, 25, 33, 41, 65, 81, 121, 201, 301, 401, 501, 2001, 5000, 70_000)

integers = st.one_of(st.sampled_from(BOUNDARY_INTEGERS), st.integers())
floats = st.one_of(st.sampled_from(BOUNDARY_FLOATS), st.floats())
any_character = st.one_of(
    st.sampled_from(HOSTILE_CHARACTERS), st.characters(codec=None, exclude_categories=())
)
texts = st.one_of(
    # Joined, not st.text: Hypothesis' text strategy refuses lone surrogates.
    st.lists(any_character, max_size=30).map("".join),
    st.builds(
        lambda fill, length: (fill * length)[:length],
        st.sampled_from(("a", "7", "\x00", "é", "\U0001f6a8", " ")),
        st.sampled_from(LONG_LENGTHS),
    ),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), integers, floats, texts),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
field_values = st.one_of(texts, integers, floats, json_values)
# What a header can carry at all: latin-1 without line breaks, not starting with a blank.
header_values = st.one_of(
    st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=80),
    st.builds(lambda length: "g" * length, st.sampled_from(LONG_LENGTHS[:-1])),
).map(str.lstrip)

FUZZ_SETTINGS: Final = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=50,
    # ``still_ingesting`` is function-scoped on purpose: it checks once, after all examples.
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)
# For requests that hash a password (argon2, slow on purpose) or take several steps.
FEW_EXAMPLES: Final = settings(FUZZ_SETTINGS, max_examples=25)


def with_field(valid: dict[str, Any], fields: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    """``valid`` with one of ``fields`` set to a hostile value (or dropped, or one added)."""
    replaced = st.tuples(st.sampled_from(fields), field_values).map(
        lambda change: {**valid, change[0]: change[1]}
    )
    dropped = st.sampled_from(fields).map(
        lambda name: {key: value for key, value in valid.items() if key != name}
    )
    added = st.tuples(texts, field_values).map(lambda extra: {**valid, extra[0]: extra[1]})
    return st.one_of(replaced, replaced, replaced, dropped, added)


# --- talking to the app -----------------------------------------------------------------------


def send(
    app: FastAPI,
    method: str,
    path: str,
    *,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    """One request to the fuzz app; a JSON ``body`` may hold NaN, infinities and surrogates."""
    all_headers = dict(headers or {})
    if body is not None:
        raw = json.dumps(body).encode()
        all_headers.setdefault("content-type", "application/json")
    requests_made[FIELD_FUZZ] += 1
    with app_client(app) as client:  # a fresh one: no cookie of a login is ever reused
        try:
            return client.request(
                method, path, data=raw, headers=all_headers, timeout=REQUEST_TIMEOUT_S
            )
        except requests.Timeout as exc:
            hang = f"no answer within {REQUEST_TIMEOUT_S} s: {method} {path}"
            raise AssertionError(hang) from exc
        except Exception as exc:
            # In-process, an error the app did not handle reaches the caller after its 500.
            raise AssertionError(f"500: the app raised {exc!r:.300} for {method} {path}") from exc


def assert_handled(response: requests.Response, what: str) -> None:
    """No 5xx, and a refusal in the one error shape."""
    assert response.status_code < 500, f"{response.status_code} for {what}: {response.text:.300}"
    if response.status_code >= 400:
        problem = error_shape_problem(response)
        assert problem is None, f"{problem} for {what}"


class Desk:
    """The dispatcher's and the fuzz tablet's moves that put an alert where a field reaches
    the database: open (a press), offered to the tablet's post, accepted, cancelled."""

    def __init__(self, app: FastAPI, city: City, device: FuzzDevice) -> None:
        self.app = app
        self.city = city
        self.device = device
        self.dispatcher = city.headers("dispatcher")
        self.tablet = city.headers(TABLET)

    def open_alert(self) -> int:
        with app_client(self.app) as client:
            assert press(client, self.city, self.device).status_code == 200
        alerts = send(self.app, "GET", f"{API}/alerts?state=open", headers=self.dispatcher)
        assert alerts.status_code == 200, alerts.text
        alert_id: int = next(
            alert["id"] for alert in alerts.json() if alert["device_eui"] == self.device.eui
        )
        return alert_id

    def offer_to_tablet(self, alert_id: int) -> int:
        post_id = self.city.accounts[TABLET].post_id
        assigned = send(
            self.app,
            "POST",
            f"{API}/alerts/{alert_id}/assign",
            body={"post_id": post_id},
            headers=self.dispatcher,
        )
        assert assigned.status_code == 200, assigned.text
        me = send(self.app, "GET", f"{API}/posts/me", headers=self.tablet)
        assert me.status_code == 200 and me.json()["offer"] is not None, me.text
        offer_id: int = me.json()["offer"]["id"]
        return offer_id

    def accept_on_tablet(self, alert_id: int) -> None:
        offer_id = self.offer_to_tablet(alert_id)
        accepted = send(self.app, "POST", f"{API}/offers/{offer_id}/accept", headers=self.tablet)
        assert accepted.status_code == 200, accepted.text

    def cancel(self, alert_id: int) -> None:
        """Clear the alert away, if a fuzzed request left it open."""
        send(
            self.app,
            "POST",
            f"{API}/alerts/{alert_id}/cancel",
            body={"reason": "fuzz clean-up"},
            headers=self.dispatcher,
        )


# The spare devices (never pressed by schemathesis), one per use, so no test finds another's
# alert open or its device disabled.
HEALTH_CHECK, GATEWAY, RAW, CANCEL, DECLINE, CLOSE, DISABLED = range(7)


def spare_device(city: City, use: int) -> FuzzDevice:
    return city.devices[PRESSING_DEVICES + use]


@pytest.fixture
def still_ingesting(fuzz_app: FastAPI, fuzz_city: City) -> Iterator[None]:
    """After the test: a valid press still commits, and the API still reads the database."""
    yield
    device = spare_device(fuzz_city, HEALTH_CHECK)
    with app_client(fuzz_app) as client:
        response = press(client, fuzz_city, device)
    assert response.status_code == 200, response.text
    assert response.headers["x-alertnet-outcome"] == "new"
    alerts = send(fuzz_app, "GET", f"{API}/alerts", headers=fuzz_city.headers("dispatcher"))
    assert alerts.status_code == 200
    assert any(alert["device_eui"] == device.eui for alert in alerts.json())


pytestmark = pytest.mark.usefixtures("still_ingesting")

_unique = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_unique)}"


# --- uplinks ----------------------------------------------------------------------------------


@FUZZ_SETTINGS
@given(gateway=header_values, as_admin=st.booleans())
def test_gateway_header(fuzz_app: FastAPI, fuzz_city: City, gateway: str, as_admin: bool) -> None:
    """X-Alertnet-Gateway on a valid press, from an admin (stored) or anyone (ignored)."""
    device = spare_device(fuzz_city, GATEWAY)
    frame = Uplink.build(device.key, device.eui, fuzz_city.next_counter(device), EventCode.PANIC)
    headers = {"content-type": "application/octet-stream", "x-alertnet-gateway": gateway}
    if as_admin:
        headers.update(fuzz_city.headers("admin"))
    response = send(fuzz_app, "POST", UPLINKS_PATH, raw=frame.to_bytes(), headers=headers)
    assert_handled(response, f"X-Alertnet-Gateway {gateway!r:.120}")


def _mutated_frame(city: City, position: int, value: int) -> bytes:
    device = spare_device(city, RAW)
    frame = bytearray(
        Uplink.build(device.key, device.eui, city.next_counter(device), EventCode.PANIC).to_bytes()
    )
    frame[position % len(frame)] = value
    return bytes(frame)


@FUZZ_SETTINGS
@given(
    body=st.one_of(
        st.binary(max_size=64),
        st.binary(min_size=22, max_size=22),
        st.sampled_from(LONG_LENGTHS).map(lambda length: b"\x01" * length),
        st.tuples(st.integers(0, 21), st.integers(0, 255)),
    ),
    content_type=st.sampled_from(
        ("application/octet-stream", "application/json", "text/plain", "")
    ),
)
def test_uplink_bytes(
    fuzz_app: FastAPI, fuzz_city: City, body: bytes | tuple[int, int], content_type: str
) -> None:
    raw = body if isinstance(body, bytes) else _mutated_frame(fuzz_city, *body)
    headers = {"content-type": content_type} if content_type else {}
    response = send(fuzz_app, "POST", UPLINKS_PATH, raw=raw, headers=headers)
    assert_handled(response, f"uplink body {raw[:80]!r}")


UPLINK_JSON_FIELDS: Final = ("v", "dev", "cnt", "ev", "flags", "bat", "age", "mic")


@FUZZ_SETTINGS
@given(change=st.tuples(st.sampled_from(UPLINK_JSON_FIELDS), field_values), text_body=texts)
def test_uplink_json(
    fuzz_app: FastAPI, fuzz_city: City, change: tuple[str, Any], text_body: str
) -> None:
    """The JSON form with one field hostile (so the MIC fails: the quarantine path), and text
    that is not JSON at all."""
    device = spare_device(fuzz_city, RAW)
    valid = json.loads(
        Uplink.build(device.key, device.eui, fuzz_city.next_counter(device), EventCode.FIRE)
        .to_json()
        .decode()
    )
    field, value = change
    for body in ({**valid, field: value}, text_body):
        raw = json.dumps(body).encode() if isinstance(body, dict) else body.encode(errors="replace")
        response = send(
            fuzz_app, "POST", UPLINKS_PATH, raw=raw, headers={"content-type": "application/json"}
        )
        assert_handled(response, f"uplink JSON {raw[:200]!r}")


# --- login and the admin's registry -----------------------------------------------------------


@FUZZ_SETTINGS
@given(body=with_field({"username": "someone", "password": "x" * 12}, ("username", "password")))
def test_login(fuzz_app: FastAPI, body: dict[str, Any]) -> None:
    response = send(fuzz_app, "POST", f"{API}/auth/login", body=body)
    assert_handled(response, f"login {body!r:.300}")


REGISTRY: Final[dict[str, tuple[Callable[[], dict[str, Any]], tuple[str, ...]]]] = {
    "devices": (
        lambda: {
            "eui": f"{next(_unique):016x}",
            "kind": "panic_button",
            "lat": 41.3,
            "lon": 69.2,
            "mahalla": "Chorsu",
            "site": "public",
            "name": "Shop 7",
            "address": "Chorsu bazaar, row 3",
            "supervision_interval_s": 900,
        },
        (
            "eui",
            "kind",
            "lat",
            "lon",
            "key",
            "mahalla",
            "site",
            "name",
            "address",
            "supervision_interval_s",
        ),
    ),
    "posts": (
        lambda: {"callsign": unique("F-"), "lat": 41.3, "lon": 69.2, "mahalla": "Chorsu"},
        ("callsign", "lat", "lon", "mahalla"),
    ),
    "mahallas": (
        lambda: {
            "name": unique("Fuzz mahalla "),
            "risk": "yellow",
            "district": "Olmazor",
            "region": "Tashkent",
            "lat": 41.3,
            "lon": 69.2,
            "households": 1200,
            "businesses": 80,
        },
        ("name", "risk", "district", "region", "lat", "lon", "households", "businesses"),
    ),
    "users": (
        lambda: {
            "username": unique("fuzz-user-"),
            "role": "observer",
            "mahalla": "Chorsu",
            "password": "correct horse battery staple",
        },
        ("username", "role", "post", "mahalla", "password"),
    ),
}


@pytest.mark.parametrize("resource", list(REGISTRY))
@FEW_EXAMPLES
@given(data=st.data())
def test_admin_registers(
    fuzz_app: FastAPI, fuzz_city: City, resource: str, data: st.DataObject
) -> None:
    valid, fields = REGISTRY[resource]
    body = data.draw(with_field(valid(), fields), label="body")
    response = send(
        fuzz_app, "POST", f"{API}/{resource}", body=body, headers=fuzz_city.headers("admin")
    )
    assert_handled(response, f"POST /{resource} {body!r:.300}")


# A URL path is UTF-8 (percent-encoded): lone surrogates cannot be sent in one.
path_texts = texts.map(
    lambda text: text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
)


@FUZZ_SETTINGS
@given(eui=st.one_of(st.just(None), path_texts), status=field_values)
def test_admin_changes_a_device(
    fuzz_app: FastAPI, fuzz_city: City, eui: str | None, status: Any
) -> None:
    target = quote(eui, safe="") if eui else spare_device(fuzz_city, DISABLED).eui
    response = send(
        fuzz_app,
        "PATCH",
        f"{API}/devices/{target}",
        body={"status": status},
        headers=fuzz_city.headers("admin"),
    )
    assert_handled(response, f"PATCH /devices/{target:.200} status {status!r:.200}")


@FEW_EXAMPLES
@given(
    username=st.one_of(st.just(None), path_texts),
    body=with_field(
        {"active": True, "role": "observer", "mahalla": "Chorsu"},
        ("active", "role", "post", "mahalla", "password"),
    ),
)
def test_admin_changes_a_user(
    fuzz_app: FastAPI, fuzz_city: City, username: str | None, body: dict[str, Any]
) -> None:
    target = quote(username, safe="") if username else fuzz_city.accounts[CHANGED_USER].username
    response = send(
        fuzz_app,
        "PATCH",
        f"{API}/users/{target}",
        body=body,
        headers=fuzz_city.headers("admin"),
    )
    assert_handled(response, f"PATCH /users/{target:.200} {body!r:.300}")


# --- reasons and notes: each on an alert where the text is stored ------------------------------


@FEW_EXAMPLES
@given(reason=field_values)
def test_cancel_reason(fuzz_app: FastAPI, fuzz_city: City, reason: Any) -> None:
    desk = Desk(fuzz_app, fuzz_city, spare_device(fuzz_city, CANCEL))
    alert_id = desk.open_alert()
    try:
        response = send(
            fuzz_app,
            "POST",
            f"{API}/alerts/{alert_id}/cancel",
            body={"reason": reason},
            headers=desk.dispatcher,
        )
        assert_handled(response, f"cancel reason {reason!r:.300}")
    finally:
        desk.cancel(alert_id)


@FEW_EXAMPLES
@given(reason=field_values)
def test_decline_reason(fuzz_app: FastAPI, fuzz_city: City, reason: Any) -> None:
    desk = Desk(fuzz_app, fuzz_city, spare_device(fuzz_city, DECLINE))
    alert_id = desk.open_alert()
    try:
        offer_id = desk.offer_to_tablet(alert_id)
        response = send(
            fuzz_app,
            "POST",
            f"{API}/offers/{offer_id}/decline",
            body={"reason": reason},
            headers=desk.tablet,
        )
        assert_handled(response, f"decline reason {reason!r:.300}")
    finally:
        desk.cancel(alert_id)


@FEW_EXAMPLES
@given(body=with_field({"outcome": "false_alarm", "note": "nobody there"}, ("outcome", "note")))
def test_close_note(fuzz_app: FastAPI, fuzz_city: City, body: dict[str, Any]) -> None:
    desk = Desk(fuzz_app, fuzz_city, spare_device(fuzz_city, CLOSE))
    alert_id = desk.open_alert()
    try:
        desk.accept_on_tablet(alert_id)
        response = send(
            fuzz_app, "POST", f"{API}/alerts/{alert_id}/close", body=body, headers=desk.tablet
        )
        assert_handled(response, f"close {body!r:.300}")
    finally:
        desk.cancel(alert_id)


@FUZZ_SETTINGS
@given(
    body=with_field({"lat": 41.21, "lon": 69.11, "accuracy_m": 12.5}, ("lat", "lon", "accuracy_m"))
)
def test_location_report(fuzz_app: FastAPI, fuzz_city: City, body: dict[str, Any]) -> None:
    response = send(
        fuzz_app,
        "POST",
        f"{API}/posts/me/location",
        body=body,
        headers=fuzz_city.headers(TABLET),
    )
    assert_handled(response, f"location {body!r:.300}")


# --- ids in paths and query strings -----------------------------------------------------------

# Every id a request names, by the role that may name it; {n} is the number under test.
ID_REQUESTS: Final = (
    ("dispatcher", "GET", "/alerts/{n}", None),
    ("dispatcher", "GET", "/alerts/{n}/candidates", None),
    ("dispatcher", "POST", "/alerts/{n}/assign", {"post_id": 1}),
    ("dispatcher", "POST", "/alerts/1/assign", {"post_id": "{n}"}),
    ("dispatcher", "POST", "/alerts/{n}/cancel", {"reason": "fuzz"}),
    ("dispatcher", "POST", "/offers/{n}/withdraw", None),
    ("dispatcher", "GET", "/alerts?mahalla_id={n}", None),
    ("dispatcher", "GET", "/devices?mahalla_id={n}", None),
    ("dispatcher", "GET", "/stats/counts?mahalla_id={n}", None),
    ("observer", "GET", "/alerts?mahalla_id={n}", None),
    (TABLET, "POST", "/offers/{n}/accept", None),
    (TABLET, "POST", "/offers/{n}/decline", {"reason": "fuzz"}),
    (TABLET, "POST", "/alerts/{n}/arrive", None),
    (TABLET, "POST", "/alerts/{n}/close", {"outcome": "other"}),
)
# Far from the city's own ids, so no request acts on a real alert or offer.
foreign_ids = st.one_of(
    st.sampled_from(BOUNDARY_INTEGERS), st.integers(min_value=10**6), st.integers(max_value=0)
)


@FUZZ_SETTINGS
@given(request=st.sampled_from(ID_REQUESTS), number=foreign_ids)
def test_ids(
    fuzz_app: FastAPI, fuzz_city: City, request: tuple[str, str, str, Any], number: int
) -> None:
    role, method, template, body = request
    path = API + template.replace("{n}", str(number))
    if body is not None:
        body = {key: number if value == "{n}" else value for key, value in body.items()}
    response = send(fuzz_app, method, path, body=body, headers=fuzz_city.headers(role))
    assert_handled(response, f"{method} {path} {body!r}")
