"""The post resource shape of DESIGN §5, shared by the console's list, the tablet, the feed and
the admin API."""

from __future__ import annotations

from typing import Any

from alertnet.models import Post


def post_view(post: Post) -> dict[str, Any]:
    """``{"id", "callsign", "status", "lat", "lon", "location_at"}`` of one post."""
    return {
        "id": post.id,
        "callsign": post.callsign,
        "status": post.status,
        "lat": post.lat,
        "lon": post.lon,
        "location_at": post.location_at.isoformat() if post.location_at is not None else None,
    }
