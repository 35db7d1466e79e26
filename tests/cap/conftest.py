"""The CAP tests create accounts by the handful: hash their passwords once per run."""

from __future__ import annotations

import pytest

from tests.auth.helpers import fast_password_hashing

__all__ = ["fast_password_hashing"]


@pytest.fixture(autouse=True)
def _fast_password_hashing(fast_password_hashing: None) -> None:
    """See ``tests.auth.helpers.fast_password_hashing``."""
