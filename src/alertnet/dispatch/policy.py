"""The rules of DESIGN §4 as data: the dispatch numbers, the alert states dispatch groups, and
the outcomes a closed alert may have. Every other dispatch module reads them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal, get_args

from alertnet.config import Settings
from alertnet.models import AlertState

# What the post found; the tablet's close form and the service both accept exactly these.
Outcome = Literal["confirmed", "false_alarm", "no_one_found", "handed_over", "other"]
OUTCOMES: Final = frozenset[str](get_args(Outcome))

# An alert held by a post: the post is busy with it and can be offered nothing else.
ACTIVE_STATES: Final = (AlertState.ACCEPTED, AlertState.ON_SCENE)
# An alert waiting for a post: the dispatch queue.
WAITING_STATES: Final = (AlertState.NEW, AlertState.ESCALATED)

# The offer deadline is an operator setting (``ALERTNET_OFFER_TIMEOUT_S``, DESIGN §5): its
# default is written once, there.
_SETTINGS_OFFER_TIMEOUT_S: Final[float] = Settings.model_fields["offer_timeout_s"].default


@dataclass(frozen=True, slots=True)
class DispatchPolicy:
    """The numbers of DESIGN §4, in one value so tests and settings can change them."""

    offer_timeout_s: float = _SETTINGS_OFFER_TIMEOUT_S
    location_max_age_s: float = 300.0
    max_distance_m: float = 10_000.0
    max_refusals: int = 3
    # A post that refused an alert is not asked for that same alert again for a while: longer
    # after a decline (it said no) than after an expired offer (it may simply have missed it).
    # A dispatcher's withdraw is not a refusal and pauses nothing.
    decline_pause_s: float = 600.0
    expiry_pause_s: float = 120.0

    def __post_init__(self) -> None:
        if self.offer_timeout_s <= 0 or self.location_max_age_s <= 0:
            raise ValueError("timeouts must be positive")
        if self.decline_pause_s < 0 or self.expiry_pause_s < 0:
            raise ValueError("pauses must not be negative")
        if self.max_distance_m <= 0 or self.max_refusals < 1:
            raise ValueError("max_distance_m and max_refusals must be positive")

    @classmethod
    def from_settings(cls, settings: Settings) -> DispatchPolicy:
        return cls(offer_timeout_s=settings.offer_timeout_s)

    def location_fresh_after(self, now: datetime) -> datetime:
        """A post whose location is older than this is not eligible at ``now``."""
        return now - timedelta(seconds=self.location_max_age_s)

    def declined_pause_since(self, now: datetime) -> datetime:
        """A post that declined an alert after this instant is not asked it again at ``now``."""
        return now - timedelta(seconds=self.decline_pause_s)

    def expired_pause_since(self, now: datetime) -> datetime:
        """A post whose offer of an alert expired after this instant is not asked it again at
        ``now``."""
        return now - timedelta(seconds=self.expiry_pause_s)

    def declined_pause_until(self, declined_at: datetime) -> datetime:
        """A post that declined an alert at ``declined_at`` may be asked it again from then."""
        return declined_at + timedelta(seconds=self.decline_pause_s)

    def expired_pause_until(self, expired_at: datetime) -> datetime:
        """A post whose offer of an alert expired at ``expired_at`` may be asked it again from
        then."""
        return expired_at + timedelta(seconds=self.expiry_pause_s)

    def offer_deadline_at(self, offered_at: datetime) -> datetime:
        return offered_at + timedelta(seconds=self.offer_timeout_s)


DEFAULT_POLICY: Final = DispatchPolicy()
