"""The tablet's own post (location, duty status, what it holds) and the console's post list.

A post acts only on itself (``/posts/me/…``). Going available or reporting a location may hand
the post a waiting alert at once; going off duty gives back a pending offer. Those changes run
through the dispatcher so the device downlinks go out after the commit.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from alertnet.alerts.views import alert_views
from alertnet.auth.deps import DbSession, DispatcherActor, PostActor, own_post_id
from alertnet.dispatch.service import offer_views, post_view
from alertnet.models import Alert, AlertState, Offer, OfferState, Post
from alertnet.posts import service

router = APIRouter(prefix="/api/v1", tags=["posts"])


class LocationIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    accuracy_m: float | None = Field(default=None, ge=0, le=100_000)


class StatusIn(BaseModel):
    status: Literal["available", "off_duty"]


async def _me(request: Request, post_id: int) -> dict[str, Any]:
    """The post with its pending offer and the alert it holds: what a tablet shows on load."""
    async with request.app.state.runtime.session_factory() as session:
        post = await session.get_one(Post, post_id)
        offer_id = await session.scalar(
            select(Offer.id).where(Offer.post_id == post_id, Offer.state == OfferState.PENDING)
        )
        offers = await offer_views(session, [offer_id] if offer_id else [])
        alert_id = await session.scalar(
            select(Alert.id).where(
                Alert.post_id == post_id,
                Alert.state.in_((AlertState.ACCEPTED, AlertState.ON_SCENE)),
            )
        )
        alerts = await alert_views(session, [alert_id] if alert_id else [])
    return {
        "post": post_view(post),
        "offer": offers.get(offer_id) if offer_id else None,
        "alert": alerts.get(alert_id) if alert_id else None,
    }


@router.get("/posts/me", summary="The tablet's post, its pending offer and its current alert")
async def get_me(request: Request, actor: PostActor) -> dict[str, Any]:
    return await _me(request, own_post_id(actor))


@router.post("/posts/me/location", summary="Report the post's position (every few seconds)")
async def report_location(request: Request, body: LocationIn, actor: PostActor) -> dict[str, Any]:
    post_id = own_post_id(actor)
    dispatcher = request.app.state.runtime.dispatcher
    await dispatcher.perform(
        lambda session: service.report_location(
            session, post_id, body.lat, body.lon, body.accuracy_m, policy=dispatcher.policy
        )
    )
    return await _me(request, post_id)


@router.post("/posts/me/status", summary="Go available or off duty")
async def set_status(request: Request, body: StatusIn, actor: PostActor) -> dict[str, Any]:
    post_id = own_post_id(actor)
    dispatcher = request.app.state.runtime.dispatcher
    await dispatcher.perform(
        lambda session: service.set_status(
            session, post_id, body.status, actor.username, policy=dispatcher.policy
        )
    )
    return await _me(request, post_id)


@router.get("/posts", summary="Every post with status and last position")
async def list_posts(session: DbSession, actor: DispatcherActor) -> list[dict[str, Any]]:
    posts = await session.scalars(select(Post).order_by(Post.callsign))
    return [post_view(post) for post in posts]
