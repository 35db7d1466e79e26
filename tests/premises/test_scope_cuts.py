"""The one scope's cuts of premises, devices and feed rows (DESIGN §10), without a database:
every read path (REST, stream, exports) applies these, so each rule is pinned here once.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from alertnet.auth.scope import Scope
from alertnet.models import Role
from alertnet.realtime.hub import FeedRecord

from .helpers import PREMISES

DISPATCHER = Scope(Role.DISPATCHER, user_id=1, username="disp")
ADMIN = Scope(Role.ADMIN, user_id=2, username="admin")
OBSERVER = Scope(Role.OBSERVER, user_id=3, username="obs", mahalla_id=7)
POST_1 = Scope(Role.POST, user_id=4, username="crew1", post_id=1)
POST_2 = Scope(Role.POST, user_id=5, username="crew2", post_id=2)


def alert_view(**changes: Any) -> dict[str, Any]:
    view = {
        "id": 10,
        "category": "intrusion",
        "device_site": "household",
        "device_name": "Dilnoza's flat",
        "address": PREMISES["address"],
        "premises": PREMISES,
        "silent": False,
        "lat": 41.311123,
        "lon": 69.279789,
        "post_id": None,
        "offered_post_id": 1,
        "mahalla_id": 7,
    }
    view.update(changes)
    return view


@pytest.mark.parametrize("site", ["household", "business"])
def test_an_observer_sees_a_private_device_nameless_and_to_three_decimals(site: str) -> None:
    assert OBSERVER.shown_device(site=site, name="Shop", lat=41.31149, lon=69.2795) == (
        "",
        41.311,
        69.279,
    )
    for scope in (DISPATCHER, ADMIN, POST_1):
        assert scope.shown_device(site=site, name="Shop", lat=41.31149, lon=69.2795) == (
            "Shop",
            41.31149,
            69.2795,
        )
    assert OBSERVER.shown_device(site="public", name="Gate", lat=41.31149, lon=69.2795) == (
        "Gate",
        41.31149,
        69.2795,
    )


def test_each_scope_reads_its_cut_of_an_alert() -> None:
    view = alert_view()
    assert DISPATCHER.shown_alert(view) == view
    offered = POST_1.shown_alert(view)
    assert set(offered["premises"]) == {"address", "street", "notes", "contacts"}
    assert offered["device_name"] == "Dilnoza's flat" and offered["lat"] == 41.311123
    # Holding it counts like being offered it; a post that is neither reads no premises.
    assert "contacts" in POST_2.shown_alert(alert_view(post_id=2, offered_post_id=None))["premises"]
    outsider = POST_2.shown_alert(view)
    assert outsider["premises"] == {} and outsider["address"] == ""
    silent = POST_1.shown_alert(alert_view(silent=True))
    assert set(silent["premises"]) == {"address", "street", "notes"}
    observed = OBSERVER.shown_alert(view)
    assert observed["premises"] == {"street": PREMISES["street"]}
    assert (observed["device_name"], observed["address"]) == ("", "")
    assert (observed["lat"], observed["lon"]) == (41.311, 69.28)
    # The input is never changed in place (the hub keeps the full row for the console).
    assert view == alert_view()


def test_a_view_that_does_not_name_its_site_is_cut_as_a_household() -> None:
    view = alert_view()
    del view["device_site"]
    observed = OBSERVER.shown_alert(view)
    assert observed["device_name"] == "" and observed["lat"] == 41.311


def test_feed_rows_are_cut_and_private_troubles_dropped_for_observers() -> None:
    trouble = alert_view(category="trouble", device_site="business")
    assert OBSERVER.shown_feed_data("alert.updated", trouble) is None
    assert OBSERVER.shown_feed_data(
        "alert.updated", alert_view(category="trouble", device_site="public")
    )
    assert DISPATCHER.shown_feed_data("alert.updated", trouble) == trouble
    offer = {"id": 5, "post_id": 1, "post": "P-1", "reason": "tyre", "alert": alert_view()}
    # An offer names a post, its distance and why it declined: not the mahalla team's.
    assert OBSERVER.shown_feed_data("offer.created", offer) is None
    assert OBSERVER.shown_feed_data("offer.updated", offer) is None
    shown = POST_1.shown_feed_data("offer.created", offer)
    assert shown is not None and "owner" not in shown["alert"]["premises"]
    assert OBSERVER.shown_feed_data("device.updated", {"eui": "x", "site": "business"}) is None
    assert OBSERVER.shown_feed_data("device.updated", {"eui": "x"}) is None
    assert OBSERVER.shown_feed_data("device.updated", {"eui": "x", "site": "public"}) == {
        "eui": "x",
        "site": "public",
    }
    assert POST_1.shown_feed_data("post.updated", {"id": 1, "status": "busy"}) == {
        "id": 1,
        "status": "busy",
    }


def test_a_feed_type_without_a_written_cut_reaches_only_the_console() -> None:
    data = {"secret": "only the console may read this"}
    assert DISPATCHER.shown_feed_data("alert.future_kind", data) == data
    assert OBSERVER.shown_feed_data("alert.future_kind", data) is None
    assert POST_1.shown_feed_data("alert.future_kind", data) is None


def test_a_feed_record_is_cut_once_per_reader_kind_and_never_changes_the_console_text() -> None:
    record = FeedRecord.build(3, "offer.created", {"alert": alert_view()}, post_id=1, mahalla_id=7)
    console = record.text_for(DISPATCHER)
    assert console == record.text and "123-45-67" in console
    crew = record.text_for(POST_1)
    assert (
        crew is not None
        and "123-45-67" in crew
        and "owner" not in json.loads(crew)["data"]["alert"]["premises"]
    )
    assert record.text_for(OBSERVER) is None  # offers are not the mahalla team's
    opened = FeedRecord.build(3, "alert.opened", alert_view(), mahalla_id=7)
    observed = opened.text_for(OBSERVER)
    assert observed is not None and "123-45-67" not in observed and "Karimova" not in observed
    assert opened.text_for(OBSERVER) is observed  # cached
    assert json.loads(observed)["seq"] == 3


def test_device_rows_for_an_observer_carry_no_health_of_homes() -> None:
    row = {
        "eui": "a",
        "site": "household",
        "name": "Flat",
        "address": "Navoiy 17",
        "lat": 41.311123,
        "lon": 69.279789,
        "status": "offline",
        "battery": 3,
        "last_seen_at": "2026-01-01T00:00:00+00:00",
        "troubles": ["offline"],
        "trouble_alert_ids": [4],
        "silent": True,
        "premises": PREMISES,
    }
    shown = OBSERVER.shown_device_view(row)
    assert shown["premises"] == {"street": PREMISES["street"]}
    assert (shown["name"], shown["address"], shown["status"], shown["battery"]) == (
        "",
        "",
        None,
        None,
    )
    assert shown["troubles"] == [] and shown["silent"] is None and shown["lat"] == 41.311
    assert DISPATCHER.shown_device_view(row) == row
