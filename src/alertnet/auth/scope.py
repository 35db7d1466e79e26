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

from sqlalchemy import ColumnElement, exists, false, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import Forbidden
from alertnet.models import Alert, Device, FeedItem, Mahalla, Offer, Role


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
                return Alert.mahalla_id == self.mahalla_id
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
