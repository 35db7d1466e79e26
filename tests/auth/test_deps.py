"""The pure parts of the auth dependencies: reading credentials, and the scope rules."""

from __future__ import annotations

import pytest

from alertnet.auth.deps import (
    Actor,
    Credential,
    CredentialSource,
    credential_from,
    ensure_mahalla_visible,
    ensure_post_owns,
    require_roles,
)
from alertnet.errors import Forbidden, Unauthorized
from alertnet.models import Role

ADMIN = Actor(1, "admin1", Role.ADMIN, None, None)
DISPATCHER = Actor(2, "dispatch1", Role.DISPATCHER, None, None)
POST_7 = Actor(3, "post7", Role.POST, 7, None)
OBSERVER_3 = Actor(4, "observer3", Role.OBSERVER, None, 3)


def test_bearer_header_comes_first_then_query_then_cookie() -> None:
    cookies = {"alertnet_session": "from-cookie"}
    header = {"authorization": "Bearer from-header"}
    assert credential_from(header, cookies, "from-query") == Credential(
        "from-header", CredentialSource.HEADER
    )
    assert credential_from({}, cookies, "from-query") == Credential(
        "from-query", CredentialSource.QUERY
    )
    assert credential_from({}, cookies) == Credential("from-cookie", CredentialSource.COOKIE)
    assert credential_from({}, {}) is None
    assert credential_from({"authorization": "bearer  spaced "}, {}) == Credential(
        "spaced", CredentialSource.HEADER
    )


@pytest.mark.parametrize("value", ["", "Bearer", "Bearer   ", "Basic abc", "Token abc"])
def test_a_malformed_authorization_header_is_unauthorized(value: str) -> None:
    with pytest.raises(Unauthorized):
        credential_from({"authorization": value}, {"alertnet_session": "cookie"})


def test_ensure_post_owns_only_lets_the_posts_own_crew_through() -> None:
    ensure_post_owns(POST_7, 7)
    for actor, post_id in [(POST_7, 8), (POST_7, None), (ADMIN, 7), (DISPATCHER, 7)]:
        with pytest.raises(Forbidden):
            ensure_post_owns(actor, post_id)
    with pytest.raises(Forbidden):
        ensure_post_owns(OBSERVER_3, 7)


def test_ensure_mahalla_visible() -> None:
    for actor in [ADMIN, DISPATCHER]:
        ensure_mahalla_visible(actor, 3)
        ensure_mahalla_visible(actor, None)
    ensure_mahalla_visible(OBSERVER_3, 3)
    for actor, mahalla_id in [(OBSERVER_3, 4), (OBSERVER_3, None), (POST_7, 3)]:
        with pytest.raises(Forbidden):
            ensure_mahalla_visible(actor, mahalla_id)


async def test_require_roles() -> None:
    console = require_roles(Role.DISPATCHER, "admin")
    assert await console(DISPATCHER) is DISPATCHER
    assert await console(ADMIN) is ADMIN
    with pytest.raises(Forbidden, match="needs the role admin or dispatcher"):
        await console(POST_7)
    with pytest.raises(ValueError):
        require_roles()
    with pytest.raises(ValueError):
        require_roles("superuser")
