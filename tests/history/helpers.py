"""A small city with a known past, for the history, export and shift report tests.

Three mahallas (one with a Cyrillic name), a public panic button, a household's intrusion alarm
(with premises and a call list an observer must never see) and a shop's fire alarm whose name is
a spreadsheet formula. Nine alerts from the evening of 1 March to the morning of 3 March 2026
(Tashkent time), each with its audit trail; the day shift of 2 March (08:00-20:00) holds A2-A8.
Every alert is in a state the running dispatcher leaves alone (closed, cancelled, escalated with
no post on duty, accepted), so the tests read exactly what was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.db import unit_of_work
from alertnet.models import Alert, AlertAcknowledgement, AlertAudit, AlertNote
from tests.auth.helpers import Account, create_account
from tests.support.factories import (
    create_alert,
    create_device,
    create_mahalla,
    create_offer,
    create_post,
)

TASHKENT: Final = ZoneInfo("Asia/Tashkent")
PANIC_EUI: Final = "70b3d57ed0009001"
HOME_EUI: Final = "70b3d57ed0009002"
SHOP_EUI: Final = "70b3d57ed0009003"
HOME_NAME: Final = "Karimov house"
HOME_OWNER: Final = "Karimov Anvar"
HOME_ADDRESS: Final = "Bodomzor yoʻli 12, kv. 5"  # noqa: RUF001
HOME_STREET: Final = "Bodomzor yoʻli"  # noqa: RUF001
HOME_PHONE: Final = "+998 90 123 45 67"
HOME_AT: Final = (41.329123, 69.279876)
SHOP_NAME: Final = '=HYPERLINK("http://evil.example","click")'
SHOP_OWNER: Final = "ООО «Ромашка»"  # noqa: RUF001
SHOP_STREET: Final = "улица Амира Темура"
YUNUSOBOD: Final = "Юнусабад"
DISPATCHER_NOTE: Final = "neighbour called: two men at the back door"
CLOSE_NOTE: Final = "child pressed it"
CANCEL_REASON: Final = "test by the installer, owner informed"


def local(day: int, hour: int, minute: int, second: int = 0) -> datetime:
    """A time on ``day`` March 2026 in Tashkent, as an aware UTC instant."""
    return datetime(2026, 3, day, hour, minute, second, tzinfo=TASHKENT).astimezone(UTC)


@dataclass(frozen=True)
class Archive:
    dispatcher: Account
    observer_bodomzor: Account
    observer_chorsu: Account
    crew: Account
    chorsu: int
    bodomzor: int
    yunusobod: int
    p1: int
    p2: int
    ids: dict[str, int]  # "A1" … "A9"


Step = tuple[float, str, str | None, str, str]  # seconds after opening, actor, from, to, why


async def _story(session: AsyncSession, alert: Alert, steps: list[Step]) -> None:
    for seconds, actor, from_state, to_state, reason in steps:
        session.add(
            AlertAudit(
                alert_id=alert.id,
                at=alert.opened_at + timedelta(seconds=seconds),
                actor=actor,
                from_state=from_state,
                to_state=to_state,
                reason=reason,
            )
        )
    await session.flush()


def _handled(accept_s: float, scene_s: float, close_s: float, post: str) -> list[Step]:
    return [
        (0, "device", None, "new", ""),
        (1, "dispatcher", "new", "offered", f"nearest post {post}"),
        (accept_s, f"post:{post}", "offered", "accepted", ""),
        (scene_s, f"post:{post}", "accepted", "on_scene", ""),
        (close_s, f"post:{post}", "on_scene", "closed", ""),
    ]


def _times(opened: datetime, accept_s: float, scene_s: float, close_s: float) -> dict[str, Any]:
    return {
        "opened_at": opened,
        "first_offered_at": opened + timedelta(seconds=1),
        "accepted_at": opened + timedelta(seconds=accept_s),
        "on_scene_at": opened + timedelta(seconds=scene_s),
        "closed_at": opened + timedelta(seconds=close_s),
    }


async def build_archive(session_factory: async_sessionmaker[AsyncSession]) -> Archive:
    async with unit_of_work(session_factory) as session:
        chorsu = await create_mahalla(session, name="Chorsu", risk="red")
        bodomzor = await create_mahalla(session, name="Bodomzor", risk="green")
        yunusobod = await create_mahalla(session, name=YUNUSOBOD, risk="yellow")
        panic = await create_device(
            session,
            eui=PANIC_EUI,
            mahalla_id=chorsu.id,
            name="Chorsu bazaar, gate 3",
            address="Chorsu bazaar, gate 3",
        )
        home = await create_device(
            session,
            eui=HOME_EUI,
            kind="intrusion_alarm",
            site="household",
            lat=HOME_AT[0],
            lon=HOME_AT[1],
            mahalla_id=bodomzor.id,
            name=HOME_NAME,
            owner=HOME_OWNER,
            address=HOME_ADDRESS,
            street=HOME_STREET,
            notes="key with the neighbour at no. 14",
            contacts=[{"name": "Anvar", "phone": HOME_PHONE, "relation": "owner"}],
        )
        shop = await create_device(
            session,
            eui=SHOP_EUI,
            kind="fire_alarm",
            site="business",
            lat=41.3601,
            lon=69.2899,
            mahalla_id=yunusobod.id,
            name=SHOP_NAME,
            owner=SHOP_OWNER,
            address="улица Амира Темура, 108",
            street=SHOP_STREET,
        )
        p1 = await create_post(session, callsign="P-1", status="off_duty")
        p2 = await create_post(session, callsign="P-2", status="off_duty")
        ids: dict[str, int] = {}

        a1 = await create_alert(
            session, panic, state="closed", outcome="false_alarm", note=CLOSE_NOTE,
            post_id=p1.id, **_times(local(1, 22, 30), 20, 240, 1200),
        )  # fmt: skip
        await _story(session, a1, _handled(20, 240, 1200, "P-1"))
        a2 = await create_alert(
            session, home, category="intrusion", state="closed", outcome="confirmed",
            post_id=p2.id, escalated_at=local(2, 8, 10, 30),
            **_times(local(2, 8, 10), 120, 600, 1800),
        )  # fmt: skip
        await _story(
            session,
            a2,
            [
                (0, "device", None, "new", ""),
                (30, "dispatcher", "new", "escalated", "no post eligible"),
                (100, "disp", "escalated", "offered", "assigned by disp"),
                (120, "post:P-2", "offered", "accepted", ""),
                (600, "post:P-2", "accepted", "on_scene", ""),
                (1800, "post:P-2", "on_scene", "closed", ""),
            ],
        )
        session.add(
            AlertNote(alert_id=a2.id, at=local(2, 8, 11), author="disp", text=DISPATCHER_NOTE)
        )
        a3 = await create_alert(
            session, shop, category="fire", state="cancelled", opened_at=local(2, 9, 0),
            closed_at=local(2, 9, 5),
        )  # fmt: skip
        await _story(
            session,
            a3,
            [(0, "device", None, "new", ""), (300, "disp", "new", "cancelled", CANCEL_REASON)],
        )
        a4 = await create_alert(
            session, panic, state="closed", outcome="other", drill=True, post_id=p1.id,
            **_times(local(2, 10, 0), 30, 60, 600),
        )  # fmt: skip
        await _story(session, a4, _handled(30, 60, 600, "P-1"))
        a5 = await create_alert(
            session, panic, state="closed", outcome="confirmed", post_id=p1.id, refusal_count=1,
            **_times(local(2, 11, 0), 40, 300, 1800),
        )  # fmt: skip
        await create_offer(
            session, a5, p2, state="declined", offered_at=local(2, 11, 0, 1),
            decided_at=local(2, 11, 0, 10), reason="busy",
        )  # fmt: skip
        await create_offer(
            session, a5, p1, state="accepted", offered_at=local(2, 11, 0, 11),
            decided_at=local(2, 11, 0, 40),
        )  # fmt: skip
        await _story(session, a5, _handled(40, 300, 1800, "P-1"))
        a6 = await create_alert(
            session, shop, category="trouble", trouble="offline", state="closed",
            outcome="resolved", priority=20, opened_at=local(2, 12, 0), closed_at=local(2, 13, 0),
        )  # fmt: skip
        await _story(
            session,
            a6,
            [(0, "supervision", None, "new", ""), (3600, "device", "new", "closed", "heard")],
        )
        a7 = await create_alert(
            session, home, category="intrusion", state="escalated", opened_at=local(2, 19, 30),
            escalated_at=local(2, 19, 31),
        )  # fmt: skip
        await _story(
            session,
            a7,
            [(0, "device", None, "new", ""), (60, "dispatcher", "new", "escalated", "no post")],
        )
        session.add(
            AlertAcknowledgement(
                alert_id=a7.id, at=local(2, 19, 32), actor="disp", state="escalated"
            )
        )
        a8 = await create_alert(
            session, panic, state="accepted", post_id=p1.id, opened_at=local(2, 19, 45),
            first_offered_at=local(2, 19, 45, 1), accepted_at=local(2, 19, 45, 10),
        )  # fmt: skip
        await _story(session, a8, _handled(10, 10**6, 10**6, "P-1")[:3])
        a9 = await create_alert(
            session, panic, category="medical", state="closed", outcome="handed_over",
            post_id=p2.id, **_times(local(3, 9, 0), 10, 100, 1000),
        )  # fmt: skip
        await _story(session, a9, _handled(10, 100, 1000, "P-2"))
        for name, alert in zip(
            ("A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8", "A9"),
            (a1, a2, a3, a4, a5, a6, a7, a8, a9),
            strict=True,
        ):
            ids[name] = alert.id
        return Archive(
            dispatcher=await create_account(session, "disp", "dispatcher"),
            observer_bodomzor=await create_account(
                session, "obs-bodomzor", "observer", mahalla_name="Bodomzor"
            ),
            observer_chorsu=await create_account(
                session, "obs-chorsu", "observer", mahalla_name="Chorsu"
            ),
            crew=await create_account(session, "crew1", "post", post_callsign="P-1"),
            chorsu=chorsu.id,
            bodomzor=bodomzor.id,
            yunusobod=yunusobod.id,
            p1=p1.id,
            p2=p2.id,
            ids=ids,
        )
