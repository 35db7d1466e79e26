"""CAP 1.2 out through the real app (DESIGN §9.4): each document checked against the CAP 1.2
rules (``tests.cap.cap12``), the message sequence read from the audit trail, and what each
caller may see (DESIGN §10: an observer gets no name and no exact spot of a home's alarm)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.alerts.cap import cap_feed, cap_time
from alertnet.auth.scope import Scope
from alertnet.db import unit_of_work
from alertnet.models import Alert, AlertAudit, Role, utcnow
from tests.auth.helpers import Account, bearer, create_account
from tests.cap.cap12 import NS, assert_valid_cap
from tests.support.asgi import AppClient, alertnet_api
from tests.support.factories import create_alert, create_device, create_mahalla, create_post

ATOM = "http://www.w3.org/2005/Atom"
TASHKENT = ZoneInfo("Asia/Tashkent")
BUTTON_NAME = "Chorsu bazaar button 3"
BUTTON_AT = (41.326512, 69.235874)
HOME_NAME = "Karimov house"
HOME_ADDRESS = "Bodomzor yoli 12, kv. 5"
HOME_AT = (41.329123, 69.279876)
SENT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d")


@dataclass(frozen=True)
class City:
    dispatcher: Account
    observer: Account  # Chorsu's mahalla team
    crew: Account  # post P-1, holding the panic alert
    panic: Alert  # public button, silent, accepted by P-1
    intrusion: Alert  # a household's alarm in Chorsu, closed as a false alarm
    fire: Alert  # Bodomzor, cancelled
    drill: Alert  # a drill on the public button, escalated
    trouble: Alert
    old: Alert  # closed three days ago: not in the feed


async def _trail(
    session: AsyncSession, alert: Alert, *steps: tuple[float, str | None, str]
) -> None:
    for seconds, from_state, to_state in steps:
        session.add(
            AlertAudit(
                alert_id=alert.id,
                at=alert.opened_at + timedelta(seconds=seconds),
                actor="test",
                from_state=from_state,
                to_state=to_state,
                reason="",
            )
        )


async def _city(session_factory: async_sessionmaker[AsyncSession]) -> City:
    opened = utcnow() - timedelta(hours=2)
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        bodomzor = await create_mahalla(session, name="Bodomzor", risk="green")
        button = await create_device(
            session,
            name=BUTTON_NAME,
            site="public",
            lat=BUTTON_AT[0],
            lon=BUTTON_AT[1],
            mahalla_id=chorsu.id,
        )
        home = await create_device(
            session,
            kind="intrusion_alarm",
            name=HOME_NAME,
            address=HOME_ADDRESS,
            site="household",
            lat=HOME_AT[0],
            lon=HOME_AT[1],
            mahalla_id=chorsu.id,
        )
        shop = await create_device(session, kind="fire_alarm", mahalla_id=bodomzor.id)
        school = await create_device(session, name="School 110 gate", mahalla_id=chorsu.id)
        post = await create_post(session, callsign="P-1", status="busy")
        panic = await create_alert(
            session, button, state="accepted", opened_at=opened, post_id=post.id, silent=True
        )
        await _trail(
            session,
            panic,
            (0, None, "new"),
            (1, "new", "offered"),
            (31, "offered", "new"),  # expired: still open, no new message
            (32, "new", "offered"),
            (40, "offered", "accepted"),
            (41, "accepted", "accepted"),  # an audited note: the state does not change
        )
        intrusion = await create_alert(
            session,
            home,
            category="intrusion",
            state="closed",
            opened_at=opened + timedelta(minutes=5),
            closed_at=opened + timedelta(minutes=30),
            outcome="false_alarm",
            press_count=3,
        )
        await _trail(
            session,
            intrusion,
            (0, None, "new"),
            (2, "new", "escalated"),
            (60, "escalated", "offered"),
            (70, "offered", "accepted"),
            (300, "accepted", "on_scene"),
            (1500, "on_scene", "closed"),
        )
        fire = await create_alert(
            session,
            shop,
            category="fire",
            state="cancelled",
            opened_at=opened + timedelta(minutes=10),
            closed_at=opened + timedelta(minutes=12),
        )
        await _trail(session, fire, (0, None, "new"), (120, "new", "cancelled"))
        drill = await create_alert(
            session, school, state="escalated", drill=True, opened_at=opened + timedelta(hours=1)
        )
        await _trail(session, drill, (0, None, "new"), (1, "new", "escalated"))
        trouble = await create_alert(
            session, button, category="trouble", trouble="mains", opened_at=opened
        )
        old = await create_alert(
            session,
            button,
            category="medical",
            state="closed",
            opened_at=opened - timedelta(days=3),
            closed_at=opened - timedelta(days=3) + timedelta(minutes=20),
        )
        await _trail(session, old, (0, None, "new"), (1200, "new", "closed"))
        return City(
            dispatcher=await create_account(session, "disp", "dispatcher"),
            observer=await create_account(session, "obs", "observer", mahalla_name="Chorsu"),
            crew=await create_account(session, "crew1", "post", post_callsign="P-1"),
            panic=panic,
            intrusion=intrusion,
            fire=fire,
            drill=drill,
            trouble=trouble,
            old=old,
        )


def _text(root: ET.Element, path: str) -> str | None:
    found = root.find("/".join(f"{{{NS}}}{part}" for part in path.split("/")))
    return None if found is None else found.text


async def _cap(api: AppClient, alert_id: int, who: Account) -> ET.Element:
    answer = await api.get(f"/api/v1/alerts/{alert_id}/cap", headers=bearer(who))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/cap+xml")
    return assert_valid_cap(answer.content)


async def test_each_alert_is_its_latest_message_numbered_from_the_audit_trail(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await _city(session_factory)
    sender = api.runtime.settings.cap_sender
    first_sent = {
        alert.id: cap_time(alert.opened_at, TASHKENT)
        for alert in (city.panic, city.intrusion, city.fire)
    }

    panic = await _cap(api, city.panic.id, city.dispatcher)
    assert _text(panic, "identifier") == f"alertnet-{city.panic.id}-2"  # open, accepted
    assert _text(panic, "sender") == sender
    assert _text(panic, "sent") == cap_time(city.panic.opened_at + timedelta(seconds=40), TASHKENT)
    assert _text(panic, "sent").endswith("+05:00")  # type: ignore[union-attr]
    assert (_text(panic, "status"), _text(panic, "msgType")) == ("Actual", "Update")
    assert (_text(panic, "scope"), bool(_text(panic, "restriction"))) == ("Restricted", True)
    assert _text(panic, "references") == (
        f"{sender},alertnet-{city.panic.id}-1,{first_sent[city.panic.id]}"
    )
    assert [
        _text(panic, f"info/{f}") for f in ("category", "urgency", "severity", "certainty")
    ] == [
        "Security",
        "Immediate",
        "Severe",
        "Observed",
    ]
    assert _text(panic, "info/responseType") is None
    assert "SILENT" in (_text(panic, "info/instruction") or "")
    assert _text(panic, "info/area/areaDesc") == "Chorsu"
    assert _text(panic, "info/area/circle") == f"{BUTTON_AT[0]},{BUTTON_AT[1]} 0.1"

    closed = await _cap(api, city.intrusion.id, city.dispatcher)
    assert _text(closed, "identifier") == f"alertnet-{city.intrusion.id}-4"
    assert _text(closed, "msgType") == "Update"
    assert _text(closed, "sent") == cap_time(city.intrusion.closed_at, TASHKENT)  # type: ignore[arg-type]
    assert (_text(closed, "info/urgency"), _text(closed, "info/responseType")) == (
        "Past",
        "AllClear",
    )
    assert (_text(closed, "info/category"), _text(closed, "info/severity")) == (
        "Security",
        "Moderate",
    )
    assert HOME_NAME in (_text(closed, "info/headline") or "")  # the console sees it all
    assert HOME_ADDRESS not in ET.tostring(closed, encoding="unicode")  # nobody gets this

    cancelled = await _cap(api, city.fire.id, city.dispatcher)
    assert _text(cancelled, "identifier") == f"alertnet-{city.fire.id}-2"
    assert _text(cancelled, "msgType") == "Cancel"
    assert _text(cancelled, "references") == (
        f"{sender},alertnet-{city.fire.id}-1,{first_sent[city.fire.id]}"
    )
    assert (_text(cancelled, "info/category"), _text(cancelled, "info/severity")) == (
        "Fire",
        "Severe",
    )
    assert _text(cancelled, "info/responseType") is None

    drill = await _cap(api, city.drill.id, city.dispatcher)
    assert _text(drill, "identifier") == f"alertnet-{city.drill.id}-1"
    assert (_text(drill, "status"), _text(drill, "msgType")) == ("Exercise", "Alert")
    assert _text(drill, "references") is None
    assert _text(drill, "sent") == cap_time(city.drill.opened_at, TASHKENT)

    medical = await _cap(api, city.old.id, city.dispatcher)
    assert (_text(medical, "info/category"), _text(medical, "info/severity")) == (
        "Health",
        "Severe",
    )


async def test_what_each_caller_may_read(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await _city(session_factory)
    home = await _cap(api, city.intrusion.id, city.observer)
    text = ET.tostring(home, encoding="unicode")
    assert HOME_NAME not in text and HOME_ADDRESS not in text
    circle = _text(home, "info/area/circle")
    assert circle == f"{round(HOME_AT[0], 3)},{round(HOME_AT[1], 3)} 0.1"
    public = await _cap(api, city.panic.id, city.observer)
    assert BUTTON_NAME in (_text(public, "info/headline") or "")  # public buttons in full
    assert _text(public, "info/area/circle") == f"{BUTTON_AT[0]},{BUTTON_AT[1]} 0.1"

    async def status(alert_id: int, who: Account | None) -> int:
        headers = bearer(who) if who is not None else {}
        return (await api.get(f"/api/v1/alerts/{alert_id}/cap", headers=headers)).status_code

    assert await status(city.fire.id, city.observer) == 403  # another mahalla
    assert await status(city.panic.id, city.crew) == 200  # the post holding it
    assert await status(city.fire.id, city.crew) == 403
    assert await status(city.panic.id, None) == 401
    assert await status(city.trouble.id, city.dispatcher) == 404  # troubles are not CAP
    assert await status(10**12, city.dispatcher) == 404


async def test_the_atom_feed_lists_the_callers_recent_alerts_linking_their_cap(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    city = await _city(session_factory)

    async def feed(who: Account) -> ET.Element:
        answer = await api.get("/api/v1/cap.atom", headers=bearer(who))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("application/atom+xml")
        assert HOME_ADDRESS.encode() not in answer.content
        root = ET.fromstring(answer.content)  # well-formed
        assert root.tag == f"{{{ATOM}}}feed"
        for required in ("id", "title", "updated", f"author/{{{ATOM}}}name"):
            assert root.find(f"{{{ATOM}}}{required}") is not None, required
        return root

    root = await feed(city.dispatcher)
    entries = root.findall(f"{{{ATOM}}}entry")
    linked = []
    for entry in entries:
        for required in ("id", "title", "updated", "summary"):
            assert entry.find(f"{{{ATOM}}}{required}") is not None, required
        datetime.fromisoformat(entry.findtext(f"{{{ATOM}}}updated") or "")
        [link] = entry.findall(f"{{{ATOM}}}link")
        assert (link.get("rel"), link.get("type")) == ("alternate", "application/cap+xml")
        href = link.get("href") or ""
        assert href.startswith("http://alertnet/api/v1/alerts/") and href.endswith("/cap")
        document = await api.get(href, headers=bearer(city.dispatcher))
        identifier = _text(assert_valid_cap(document.content), "identifier")
        assert (entry.findtext(f"{{{ATOM}}}summary") or "").startswith(f"{identifier}:")
        linked.append(int(href.split("/")[-2]))
    # Newest first; the trouble and the alert of three days ago are not in it.
    assert linked == [city.drill.id, city.fire.id, city.intrusion.id, city.panic.id]

    observed = await feed(city.observer)
    hrefs = [link.get("href") for link in observed.iter(f"{{{ATOM}}}link")]
    assert not any(f"/alerts/{city.fire.id}/" in (href or "") for href in hrefs)
    assert HOME_NAME not in ET.tostring(observed, encoding="unicode")


@pytest.mark.parametrize("timezone", ["UTC", "America/Caracas"])
async def test_sent_is_in_the_configured_zone_with_utc_written_minus_zero(
    db_url: str, session_factory: async_sessionmaker[AsyncSession], timezone: str
) -> None:
    city = await _city(session_factory)
    async with alertnet_api(db_url, timezone=timezone, cap_sender="police@example.uz") as api:
        panic = await _cap(api, city.panic.id, city.dispatcher)
    sent = _text(panic, "sent") or ""
    assert SENT.fullmatch(sent)
    assert sent.endswith("-00:00" if timezone == "UTC" else "-04:00")
    assert _text(panic, "sender") == "police@example.uz"
    assert (_text(panic, "references") or "").startswith("police@example.uz,")


async def test_braces_in_the_feeds_host_are_only_text_in_its_links(
    api: AppClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    # The links are built from the request's URL (its Host header): ``{b}`` in it once made
    # ``str.format`` raise (a 500). Starlette now drops such a Host and uses the server's
    # name, so the feed is called directly with one as well.
    city = await _city(session_factory)
    headers = {**bearer(city.dispatcher), "Host": "a{b}"}
    answer = await api.get("/api/v1/cap.atom", headers=headers)
    assert answer.status_code == 200, answer.text
    async with session_factory() as session:
        document = await cap_feed(
            session,
            Scope(Role.DISPATCHER, user_id=1, username="disp"),
            sender="alertnet",
            zone=TASHKENT,
            now=utcnow(),
            feed_url="http://a{b}/api/v1/cap.atom",
            cap_url="http://a{b}/api/v1/alerts/{id}/cap",
        )
    root = ET.fromstring(document)
    hrefs = [link.get("href") or "" for link in root.iter(f"{{{ATOM}}}link")]
    assert f"http://a{{b}}/api/v1/alerts/{city.panic.id}/cap" in hrefs
