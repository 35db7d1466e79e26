"""Who sees which feed rows on the stream (DESIGN §5): the rule, pure, in one place.

Admins and dispatchers see every row. A post sees the rows about it — its offers, the alerts
it holds, its own status — which are the rows whose ``post_id`` is its post. An observer (the
mahalla team) sees the rows whose ``mahalla_id`` is its mahalla. A row about nobody in
particular (``post_id`` and ``mahalla_id`` both empty) reaches admins and dispatchers only.

The hub applies the same rule as an SQL condition when it reads old rows from the database;
the tests check that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass

# The role names of ``alertnet.models.Role``, spelled out so this module imports nothing.
_SEE_EVERYTHING = frozenset({"admin", "dispatcher"})
_POST = "post"
_OBSERVER = "observer"


class NoFeedScope(ValueError):
    """The role, or its binding to a post or mahalla, gives no right to any feed row."""


@dataclass(frozen=True, slots=True)
class FeedScope:
    """Exactly one of: everything, one post's rows, one mahalla's rows."""

    everything: bool = False
    post_id: int | None = None
    mahalla_id: int | None = None

    def __post_init__(self) -> None:
        chosen = [self.everything, self.post_id is not None, self.mahalla_id is not None]
        if sum(chosen) != 1:
            raise ValueError("a feed scope is everything, one post or one mahalla")

    def allows(self, *, post_id: int | None, mahalla_id: int | None) -> bool:
        """Whether a row with this ``post_id`` and ``mahalla_id`` is visible in this scope."""
        if self.everything:
            return True
        if self.post_id is not None:
            return post_id == self.post_id
        return mahalla_id == self.mahalla_id


EVERYTHING = FeedScope(everything=True)


def scope_for(role: str, *, post_id: int | None, mahalla_id: int | None) -> FeedScope:
    """The feed scope of a user; NoFeedScope for an unknown role or an unbound post/observer."""
    if role in _SEE_EVERYTHING:
        return EVERYTHING
    if role == _POST:
        if post_id is None:
            raise NoFeedScope("a post user that is bound to no post sees nothing")
        return FeedScope(post_id=post_id)
    if role == _OBSERVER:
        if mahalla_id is None:
            raise NoFeedScope("an observer that is bound to no mahalla sees nothing")
        return FeedScope(mahalla_id=mahalla_id)
    raise NoFeedScope(f"role {role!r} has no access to the feed")
