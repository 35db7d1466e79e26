"""Who may see and act on what (DESIGN §3, §5, §10): one ``Scope`` per caller, the only place
that decides it.

A scope is built from the caller (``Actor.scope``: role, user, post, mahalla) and applied to
every read: as an SQL condition on a query (``alerts()``, ``devices()``, ``mahallas()``,
``feed_rows()``), as a predicate on a feed row already in memory (``sees_feed_row``), and as
checks that raise ``Forbidden`` (403) before a read or an action (``ensure_…``). What a scope
does not name is private: a new resource or field reaches nobody until a method here lets it.

What each caller reaches:

* ``admin``, ``dispatcher`` — everything.
* ``post`` (bound to one post) — its own post: the alerts it holds or was ever offered, its
  offers and its status; it acts for that post only. No mahalla-wide reads (device and mahalla
  lists, statistics).
* ``observer`` (bound to one mahalla, the mahalla team) — that mahalla: its alerts, devices,
  figures and feed rows; never another mahalla's, never posts, never personal premises data.
* a post or observer bound to nothing — nothing (the database forbids it; the rule does too).

Resources read by the console alone (the post list, gateways, assign candidates) are gated by
role at the endpoint (``auth.deps.DispatcherActor``); the scope has nothing to narrow there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from alertnet.errors import Forbidden
from alertnet.models import (
    Alert,
    AlertCategory,
    Device,
    DeviceStatus,
    FeedItem,
    Mahalla,
    Offer,
    Role,
    Site,
)


class Reach(StrEnum):
    """How far a scope reaches, whatever the resource."""

    EVERYTHING = "everything"
    OWN_POST = "own_post"
    OWN_MAHALLA = "own_mahalla"
    NOTHING = "nothing"


class PremisesField(StrEnum):
    """The parts of a device's premises (DESIGN §10); the people data wave 2 adds."""

    REF = "ref"
    OWNER = "owner"
    ADDRESS = "address"
    STREET = "street"
    NOTES = "notes"
    CONTACTS = "contacts"


ALL_PREMISES_FIELDS = frozenset(PremisesField)
# What the post that holds or is offered an alert may read of its premises (§10).
_POST_PREMISES = frozenset(
    {PremisesField.ADDRESS, PremisesField.STREET, PremisesField.NOTES, PremisesField.CONTACTS}
)
# A silent alert (hold-up, duress): nobody from the post calls the site.
_POST_PREMISES_SILENT = _POST_PREMISES - {PremisesField.CONTACTS}
# The mahalla team: nothing beyond the street.
_OBSERVER_PREMISES = frozenset({PremisesField.STREET})
# What an alert record's events keep for all but the console (``Scope.shown_alert_record``).
# Reception figures stay (gateways and signal are the network's, nobody's private data).
_SHOWN_EVENT_FIELDS = frozenset(
    "counter code drill occurred_at received_at reception_count best_rssi best_snr gateways"
    " receptions".split()
)
# Sites whose devices are somebody's home or shop: an observer sees no name and no exact spot.
_PRIVATE_SITES = frozenset({Site.HOUSEHOLD, Site.BUSINESS})


@dataclass(frozen=True, slots=True)
class Scope:
    """What one caller may see and act on; a stream ends when its caller's scope changes."""

    role: Role
    user_id: int
    username: str
    post_id: int | None = None
    mahalla_id: int | None = None

    def __post_init__(self) -> None:
        # An unknown role is a ValueError here rather than a scope that might reach something.
        object.__setattr__(self, "role", Role(self.role))

    @property
    def reach(self) -> Reach:
        if self.role in (Role.ADMIN, Role.DISPATCHER):
            return Reach.EVERYTHING
        if self.role is Role.POST and self.post_id is not None:
            return Reach.OWN_POST
        if self.role is Role.OBSERVER and self.mahalla_id is not None:
            return Reach.OWN_MAHALLA
        return Reach.NOTHING

    # --- SQL conditions, for the queries that read these resources ------------------------

    def alerts(self) -> ColumnElement[bool]:
        """The alerts this scope sees: a post's are those it holds or was ever offered."""
        match self.reach:
            case Reach.EVERYTHING:
                return true()
            case Reach.OWN_POST:
                offered = select(Offer.alert_id).where(Offer.post_id == self.post_id)
                return or_(Alert.post_id == self.post_id, Alert.id.in_(offered))
            case Reach.OWN_MAHALLA:
                # A household's or a business's trouble (offline, battery, mains) tells which
                # home is unprotected: the mahalla team gets those as counts per street only.
                device = aliased(Device)
                private = select(device.id).where(device.site.in_(_PRIVATE_SITES))
                private_trouble = and_(
                    Alert.category == AlertCategory.TROUBLE, Alert.device_id.in_(private)
                )
                return and_(Alert.mahalla_id == self.mahalla_id, not_(private_trouble))
            case _:
                return false()

    def devices(self) -> ColumnElement[bool]:
        """The devices this scope sees (a post reads none: it is sent to alerts, not devices)."""
        match self.reach:
            case Reach.EVERYTHING:
                return true()
            case Reach.OWN_MAHALLA:
                return Device.mahalla_id == self.mahalla_id
            case _:
                return false()

    def mahallas(self) -> ColumnElement[bool]:
        """The mahallas this scope sees."""
        match self.reach:
            case Reach.EVERYTHING:
                return true()
            case Reach.OWN_MAHALLA:
                return Mahalla.id == self.mahalla_id
            case _:
                return false()

    def feed_rows(self) -> ColumnElement[bool]:
        """The feed rows this scope sees: ``sees_feed_row`` as SQL (the tests check both agree)."""
        match self.reach:
            case Reach.EVERYTHING:
                return true()
            case Reach.OWN_POST:
                return FeedItem.post_id == self.post_id
            case Reach.OWN_MAHALLA:
                return FeedItem.mahalla_id == self.mahalla_id
            case _:
                return false()

    # --- predicates, for rows already in memory ---------------------------------------------

    def sees_feed_row(self, *, post_id: int | None, mahalla_id: int | None) -> bool:
        """Whether a feed row about ``post_id`` and ``mahalla_id`` reaches this scope.

        A post sees the rows about it (its offers, the alerts it holds, its own status); an
        observer the rows of its mahalla; a row about nobody in particular (both empty) only
        the console.
        """
        match self.reach:
            case Reach.EVERYTHING:
                return True
            case Reach.OWN_POST:
                return post_id == self.post_id
            case Reach.OWN_MAHALLA:
                return mahalla_id == self.mahalla_id
            case _:
                return False

    def sees_mahalla(self, mahalla_id: int | None) -> bool:
        """Whether this scope may read what happens in mahalla ``mahalla_id`` as a whole.

        A post sees its own offers and alerts, not whole mahallas.
        """
        match self.reach:
            case Reach.EVERYTHING:
                return True
            case Reach.OWN_MAHALLA:
                return mahalla_id == self.mahalla_id
            case _:
                return False

    def reads_alert_workflow(self) -> bool:
        """Whether this scope reads the dispatchers' notes, acknowledgements' history and
        action-plan ticks on the alerts it sees (DESIGN §10): the console only. Notes may name
        callers and neighbours: never an observer; a post's tablet neither (``alerts.notes``).
        Their feed rows name no post and no mahalla, so ``sees_feed_row`` agrees."""
        return self.reach is Reach.EVERYTHING

    def premises_fields(self, *, involved: bool, silent: bool) -> frozenset[PremisesField]:
        """The premises fields of an alert's device that this scope may read (DESIGN §10).

        ``involved``: the alert is held by, or was offered to, this scope's post. ``silent``:
        the alert is silent (the post then gets no call list). Dispatchers and admins read it
        all; an observer never more than the street.
        """
        match self.reach:
            case Reach.EVERYTHING:
                return ALL_PREMISES_FIELDS
            case Reach.OWN_POST if involved:
                return _POST_PREMISES_SILENT if silent else _POST_PREMISES
            case Reach.OWN_MAHALLA:
                return _OBSERVER_PREMISES
            case _:
                return frozenset()

    def visible_premises(
        self, premises: Mapping[str, Any], *, involved: bool, silent: bool
    ) -> dict[str, Any]:
        """``premises`` without what this scope may not read; an unknown key never passes."""
        allowed = self.premises_fields(involved=involved, silent=silent)
        return {key: value for key, value in premises.items() if key in allowed}

    def hides_site(self, site: str | None) -> bool:
        """Whether this scope sees a device on ``site`` only as a dot on a street (DESIGN §10):
        an observer, for a household's or a business's device."""
        return self.role is Role.OBSERVER and site in _PRIVATE_SITES

    def shown_device(
        self, *, site: str, name: str, lat: float, lon: float
    ) -> tuple[str, float, float]:
        """The name and position of a device on ``site`` as this scope may read them (§10).

        An observer gets no name and coordinates rounded to 3 decimals (about 100 m) for a
        household's or a business's device; everyone else the inputs unchanged.
        """
        if self.hides_site(site):
            return "", round(lat, 3), round(lon, 3)
        return name, lat, lon

    # --- views as this scope may read them (DESIGN §10): every path applies these -------------
    # A view whose device site is not stated is treated as a household's: privacy fails closed.

    def involved_in(self, alert_view: Mapping[str, Any]) -> bool:
        """Whether this scope's post holds the alert of ``alert_view`` or has it on offer now:
        the post that may read its address, notes and call list."""
        if self.reach is not Reach.OWN_POST or self.post_id is None:
            return False
        return self.post_id in (alert_view.get("post_id"), alert_view.get("offered_post_id"))

    def shown_alert(self, alert_view: Mapping[str, Any]) -> dict[str, Any]:
        """An alert view (``alerts.views``, or a record built on it) as this scope may read it:
        ``premises`` cut by ``visible_premises`` (the top-level ``address`` follows them), the
        device's name and position by ``shown_device``."""
        shown = dict(alert_view)
        if self.reach is Reach.EVERYTHING:
            return shown
        premises = self.visible_premises(
            alert_view.get("premises") or {},
            involved=self.involved_in(alert_view),
            silent=bool(alert_view.get("silent")),
        )
        shown["premises"] = premises
        shown["address"] = premises.get(PremisesField.ADDRESS, "")
        if "lat" in alert_view and "lon" in alert_view:
            name, shown["lat"], shown["lon"] = self.shown_device(
                site=_site_of(alert_view.get("device_site")),
                name=str(alert_view.get("device_name") or ""),
                lat=alert_view["lat"],
                lon=alert_view["lon"],
            )
            shown["device_name"] = name
        return shown

    def shown_alert_record(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """An alert's full record (``dispatch.views.alert_record``) as this scope may read it.

        ``shown_alert`` first; then, for all but the console (``reads_alert_workflow``): no
        closing ``note`` and no ``audit[].reason`` (cancel and call-override reasons may name
        people); of ``offers`` a post keeps its own rows only and an observer gets none (other
        posts' callsigns, distances and decline reasons are the console's); each event keeps
        its code, times, drill flag and reception figures only: no ``details`` or
        ``dedup_key`` (a camera's sub-label and snapshot, a panel's user, zone and account).
        """
        shown = self.shown_alert(record)
        if self.reads_alert_workflow():
            return shown
        shown["note"] = None
        shown["audit"] = [{**row, "reason": None} for row in record.get("audit") or []]
        own = self.post_id if self.reach is Reach.OWN_POST else None
        shown["offers"] = [
            dict(offer)
            for offer in record.get("offers") or []
            if own is not None and offer.get("post_id") == own
        ]
        shown["events"] = [
            {key: value for key, value in event.items() if key in _SHOWN_EVENT_FIELDS}
            for event in record.get("events") or []
        ]
        return shown

    def shown_offer(self, offer_view: Mapping[str, Any]) -> dict[str, Any]:
        """An offer view (``dispatch.views``) with its alert as ``shown_alert`` gives it."""
        shown = dict(offer_view)
        alert_view = offer_view.get("alert")
        if alert_view is not None:
            shown["alert"] = self.shown_alert(alert_view)
        return shown

    def shown_device_view(self, device_view: Mapping[str, Any]) -> dict[str, Any]:
        """A device row (``GET /devices``) as this scope may read it.

        Its ``premises`` are cut by ``visible_premises`` (an observer: the street). For an
        observer a household's or a business's device is a dot on its street: no name, no
        address, its position to 3 decimals and no health at all — which homes are offline
        it learns only as counts per street (``devices.api``: ``/devices/offline-by-street``).
        """
        shown = dict(device_view)
        if "premises" in device_view:
            shown["premises"] = self.visible_premises(
                device_view["premises"], involved=False, silent=bool(device_view.get("silent"))
            )
        if self.reach is Reach.EVERYTHING:
            return shown
        site = _site_of(device_view.get("site"))
        if not self.hides_site(site):
            return shown
        name, shown["lat"], shown["lon"] = self.shown_device(
            site=site, name="", lat=device_view["lat"], lon=device_view["lon"]
        )
        shown.update(
            name=name,
            address="",
            status=None,
            battery=None,
            last_seen_at=None,
            troubles=[],
            trouble_alert_ids=[],
            silent=None,
        )
        return shown

    def device_health_visible(self) -> ColumnElement[bool]:
        """SQL: the devices whose health (status, troubles) this scope may select on: not a
        household's or a business's for an observer, every device for anyone else."""
        if self.role is Role.OBSERVER:
            return Device.site.not_in(_PRIVATE_SITES)
        return true()

    def reads_private_sites(self) -> bool:
        """Whether this scope reads households' and businesses' sites one by one in the
        programme's figures (DESIGN §12's exemplary houses: each site's online share, tests,
        incidents): the console only. An observer gets them as counts per street (§10), the
        way it learns which homes are offline."""
        return self.reach is Reach.EVERYTHING

    def counts_offline_by_street(self) -> ColumnElement[bool]:
        """SQL: the devices counted in offline-by-street figures: offline households' and
        businesses' devices (what an observer may know of them)."""
        return and_(Device.status == DeviceStatus.OFFLINE, Device.site.in_(_PRIVATE_SITES))

    def shown_feed_data(self, type_: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """A feed row's data as this scope may read it; None: this scope gets no such row.

        Routing (``sees_feed_row``) has already let the row through; this cuts its content the
        way the REST reads are cut: alerts as ``shown_alert``, offers as ``shown_offer``. An
        observer gets no trouble alert of a household or a business, no ``offer.*`` row and no
        ``device.updated`` but a public device's.
        """
        if self.reach is Reach.EVERYTHING:
            return dict(data)
        if type_ == "alert.workflow" and not self.reads_alert_workflow():
            return None  # notes and ticks: the console's alone (routing sends them nowhere else)
        observer = self.role is Role.OBSERVER
        if type_ in ("alert.opened", "alert.updated"):
            if observer and data.get("category") == AlertCategory.TROUBLE:
                if self.hides_site(_site_of(data.get("device_site"))):
                    return None
            return self.shown_alert(data)
        if type_ in ("offer.created", "offer.updated"):
            # An offer names a post, its distance and why it declined: not the mahalla team's
            # (the alert rows carry the state). A post's own offers reach it.
            return None if observer else self.shown_offer(data)
        if type_ == "device.updated":
            return dict(data) if not observer or data.get("site") == Site.PUBLIC else None
        if type_ == "post.updated":
            return dict(data)  # routed to its own post only
        # A type added later reaches only the console until its cut is written here.
        return None

    # --- checks: Forbidden unless the caller may ---------------------------------------------

    def ensure_sees_mahalla(self, mahalla_id: int | None) -> None:
        if not self.sees_mahalla(mahalla_id):
            raise Forbidden(f"{self.username} may not see this mahalla")

    async def ensure_sees_alert(self, session: AsyncSession, alert_id: int) -> None:
        """Forbidden unless ``alerts()`` includes alert ``alert_id`` (a single read and a list
        never disagree). Check that the alert exists first: a missing one is NotFound."""
        reach = self.reach
        if reach is Reach.EVERYTHING:
            return
        if reach is not Reach.NOTHING:
            visible = exists().where(Alert.id == alert_id, self.alerts())
            if await session.scalar(select(visible)):
                return
        if reach is Reach.OWN_POST:
            raise Forbidden("this alert was never offered to your post")
        if reach is Reach.OWN_MAHALLA:
            raise Forbidden(f"{self.username} may not see this mahalla")
        raise self._bound_to_nothing()

    def ensure_reads_area(self, what: str) -> None:
        """Forbidden unless the caller reads whole mahallas (``what``: the device list, …).

        The console and the mahalla team do; a post reads only what is its own.
        """
        match self.reach:
            case Reach.EVERYTHING | Reach.OWN_MAHALLA:
                return
            case Reach.OWN_POST:
                raise Forbidden(f"posts do not read {what}")
            case _:
                raise self._bound_to_nothing()

    def reads_post_figures(self) -> bool:
        """Whether figures that name posts (a drill's per-post answers, which post held each
        alert) reach this scope: the console only, as ``ensure_reads_statistics(per="post")``
        refuses them to an observer."""
        return self.reach is Reach.EVERYTHING

    def ensure_reads_statistics(self, per: str = "mahalla") -> None:
        """Forbidden unless the caller may read figures grouped ``per`` mahalla or post.

        Filter mahalla rows with ``sees_mahalla``: an observer gets its own mahalla's only.
        """
        self.ensure_reads_area("statistics")
        if self.reach is Reach.OWN_MAHALLA and per != "mahalla":
            raise Forbidden("an observer reads its own mahalla's figures only")

    def ensure_follows_feed(self) -> None:
        """Forbidden for a caller whose scope sees no feed row at all."""
        if self.reach is Reach.NOTHING:
            raise self._bound_to_nothing()

    def own_post_id(self) -> int:
        """The post a tablet account acts for; Forbidden for any other account."""
        if self.reach is Reach.OWN_POST and self.post_id is not None:
            return self.post_id
        if self.role is Role.POST:
            raise self._bound_to_nothing()
        raise Forbidden(f"{self.username} does not act for a post")

    def ensure_acts_for_post(self, post_id: int | None) -> None:
        """Forbidden unless the caller is the crew of post ``post_id`` (a tablet acting for
        itself). Dispatchers and admins act on posts through their own endpoints (assign,
        withdraw), never through the tablet's."""
        if self.reach is not Reach.OWN_POST or post_id is None or post_id != self.post_id:
            raise Forbidden(f"{self.username} does not act for this post")

    def _bound_to_nothing(self) -> Forbidden:
        bound_to = "a post" if self.role is Role.POST else "a mahalla"
        return Forbidden(f"{self.username} is not bound to {bound_to}")


def _site_of(site: Any) -> str:
    """A view's device site; an unstated one counts as a household's (privacy fails closed)."""
    return str(site) if site else Site.HOUSEHOLD.value
