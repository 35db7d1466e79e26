"""The pure parts of the auth dependencies: reading credentials, roles, the caller's scope.

The scope's own rules are tested in ``test_scope``."""

from __future__ import annotations

import pytest

from alertnet.auth.deps import (
    Actor,
    Credential,
    CredentialSource,
    credential_from,
    require_roles,
)
from alertnet.auth.scope import Reach, Scope
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


def test_an_actors_scope_is_built_from_the_caller() -> None:
    assert POST_7.scope == Scope(Role.POST, user_id=3, username="post7", post_id=7)
    assert OBSERVER_3.scope == Scope(Role.OBSERVER, user_id=4, username="observer3", mahalla_id=3)
    assert [actor.scope.reach for actor in (ADMIN, DISPATCHER, POST_7, OBSERVER_3)] == [
        Reach.EVERYTHING,
        Reach.EVERYTHING,
        Reach.OWN_POST,
        Reach.OWN_MAHALLA,
    ]
    # A changed binding is a different scope: the stream closes on it.
    assert Actor(3, "post7", Role.POST, 8, None).scope != POST_7.scope


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
