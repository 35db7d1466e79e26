"""Action plans (DESIGN §10): per alert category an ordered checklist the console shows on the
alert, with the steps a dispatcher ticked — and the workflow read and feed message that show
notes, acknowledgement and plan together.

Steps. A shipped step is ``{"key": "call-site"}``: its wording is the console catalog's
``plan-step.<key>`` in each language (en/uz/ru), so a default plan reads in the dispatcher's
language. A step an admin writes is ``{"text": "…"}``, shown as written (one language: the
admin's). An admin's plan may mix both. ``"not_silent": true`` marks a step that must not be
done for a silent alert (calling the site of a hold-up): the console shows it struck through
and ticking it is refused (``StepNotForSilent``).

Plans. ``DEFAULT_PLANS`` ship with alertnet; ``PUT /action-plans/{category}`` stores an admin's
plan (``action_plans`` row), ``DELETE`` returns the category to the default. An alert always
shows its category's current plan.

Ticks. ``POST /alerts/{id}/steps/{n}`` appends an ``alert_step_ticks`` row (who, when, and the
step as it read then) — the audit record — and is idempotent: a step already ticked stays
ticked by whoever was first. There is no un-tick: a mistake is corrected with a note. When an
admin changes a plan after a tick, the tick still names the step it was; a step of the new
plan at the same number counts as ticked only if it is the same step (``earlier_ticks`` keeps
the others).

Who: every read and write here is the console's (dispatchers and admins; plan edits: admins);
``Scope.reads_alert_workflow`` keeps it from observers and posts, and the ``alert.workflow``
feed rows name no post and no mahalla, so only the console's streams receive them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet import db
from alertnet.alerts.notes import Note, notes_for
from alertnet.alerts.views import iso
from alertnet.errors import Conflict, InvalidInput, NotFound
from alertnet.models import (
    ActionPlan,
    Alert,
    AlertAcknowledgement,
    AlertCategory,
    AlertStepTick,
    utcnow,
)
from alertnet.realtime.feed import FeedMessage, append

# Every category an alert can have (§3), camera included (§9.3) whether or not the enum has it.
PLAN_CATEGORIES: Final = tuple(
    dict.fromkeys((*(category.value for category in AlertCategory), "camera"))
)
MAX_STEPS: Final = 20
STEP_MAX_CHARS: Final = 300

_NOT_SILENT: Final = {"not_silent": True}


def _step(key: str, **flags: Any) -> dict[str, Any]:
    return {"key": key, **flags}


# Alarm-receiving-centre practice for Tashkent: the site is called to verify (never for a silent
# alarm), the post is sent, the other emergency services (101 fire, 103 ambulance) and the
# duty officer are told.
DEFAULT_PLANS: Final[Mapping[str, tuple[dict[str, Any], ...]]] = {
    "panic": (
        _step("call-site", **_NOT_SILENT),
        _step("send-post"),
        _step("inform-duty-officer"),
    ),
    "intrusion": (
        _step("call-site", **_NOT_SILENT),
        _step("send-post"),
        _step("call-keyholder"),
        _step("inform-duty-officer"),
    ),
    "fire": (
        _step("call-fire-service"),
        _step("call-site", **_NOT_SILENT),
        _step("send-post"),
        _step("inform-duty-officer"),
    ),
    "medical": (
        _step("call-ambulance"),
        _step("call-site", **_NOT_SILENT),
        _step("send-post"),
    ),
    "tamper": (
        _step("check-device"),
        _step("call-site", **_NOT_SILENT),
        _step("send-post"),
    ),
    "camera": (
        _step("view-snapshot"),
        _step("send-post"),
        _step("call-site", **_NOT_SILENT),
    ),
    "trouble": (
        _step("check-device"),
        _step("call-site"),
        _step("arrange-service"),
    ),
}

# The keys a step may name: each has ``plan-step.<key>`` in every catalog (a test checks).
STEP_KEYS: Final = frozenset(step["key"] for plan in DEFAULT_PLANS.values() for step in plan)


class StepNotForSilent(Conflict):
    """A step marked ``not_silent`` (calling the site) on a silent alert."""

    code = "step_not_for_silent"


def _check_category(category: str) -> None:
    if category not in PLAN_CATEGORIES:
        raise NotFound(f"no action plan for category {category!r}")


def normalised_steps(steps: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """An admin's steps as stored: each exactly one of a known ``key`` or a non-blank ``text``,
    with ``not_silent`` kept only when true. ``InvalidInput`` otherwise."""
    if len(steps) > MAX_STEPS:
        raise InvalidInput(f"a plan has at most {MAX_STEPS} steps")
    stored = []
    for number, step in enumerate(steps, start=1):
        key, text = step.get("key"), step.get("text")
        if (key is None) == (text is None):
            raise InvalidInput(f"step {number}: give either a key or a text")
        entry: dict[str, Any]
        if key is not None:
            if key not in STEP_KEYS:
                raise InvalidInput(f"step {number}: unknown step key {key!r}")
            entry = {"key": key}
        else:
            cleaned = " ".join(str(text).split())
            if not cleaned:
                raise InvalidInput(f"step {number}: the text is empty")
            entry = {"text": cleaned}
        if step.get("not_silent"):
            entry["not_silent"] = True
        stored.append(entry)
    return stored


def _same_step(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return a.get("key") == b.get("key") and a.get("text") == b.get("text")


async def plan_of(session: AsyncSession, category: str) -> dict[str, Any]:
    """``{"category", "default", "steps", "updated_by", "updated_at"}`` for one category."""
    _check_category(category)
    # Re-read: an upsert in this session may have changed the row behind the identity map.
    row = await session.get(ActionPlan, category, populate_existing=True)
    if row is None:
        return {
            "category": category,
            "default": True,
            "steps": [dict(step) for step in DEFAULT_PLANS[category]],
            "updated_by": None,
            "updated_at": None,
        }
    return {
        "category": category,
        "default": False,
        "steps": [dict(step) for step in row.steps],
        "updated_by": row.updated_by,
        "updated_at": iso(row.updated_at),
    }


async def all_plans(session: AsyncSession) -> list[dict[str, Any]]:
    return [await plan_of(session, category) for category in PLAN_CATEGORIES]


async def save_plan(
    session: AsyncSession, category: str, steps: Sequence[Mapping[str, Any]], *, actor: str
) -> dict[str, Any]:
    """Store an admin's plan for ``category`` (replacing any earlier one)."""
    _check_category(category)
    values = {"steps": normalised_steps(steps), "updated_at": utcnow(), "updated_by": actor}
    # One statement, so two admins saving at once never collide on the key: the last one wins.
    await session.execute(
        db.insert(session, ActionPlan)
        .values(category=category, **values)
        .on_conflict_do_update(index_elements=[ActionPlan.category], set_=values)
    )
    return await plan_of(session, category)


async def reset_plan(session: AsyncSession, category: str) -> dict[str, Any]:
    """Return ``category`` to the plan shipped with alertnet."""
    _check_category(category)
    await session.execute(delete(ActionPlan).where(ActionPlan.category == category))
    return await plan_of(session, category)


def _tick_view(tick: AlertStepTick) -> dict[str, Any]:
    return {"n": tick.n, **tick.step, "by": tick.actor, "at": iso(tick.at)}


async def ticks_for(
    session: AsyncSession, alert_ids: Sequence[int]
) -> dict[int, list[AlertStepTick]]:
    """``{alert_id: [tick, …]}`` in the order they were ticked, for timelines and reports
    (each tick's ``step`` is ``{"key"}`` or ``{"text"}`` as the step read then). Callers check
    ``Scope.reads_alert_workflow``."""
    found: dict[int, list[AlertStepTick]] = {alert_id: [] for alert_id in alert_ids}
    if not found:
        return found
    rows = await session.scalars(
        select(AlertStepTick)
        .where(AlertStepTick.alert_id.in_(list(found)))
        .order_by(AlertStepTick.id)
    )
    for row in rows:
        found[row.alert_id].append(row)
    return found


async def tick_step(session: AsyncSession, alert: Alert, n: int, *, actor: str) -> dict[str, Any]:
    """Tick step ``n`` (1-based) of ``alert``'s plan (the alert locked by the caller).

    Returns the tick (``new``: False when the step was already ticked, by whoever was first).
    ``NotFound`` for a step the plan does not have, ``StepNotForSilent`` for a step that must
    not be done on a silent alert.
    """
    steps = (await plan_of(session, alert.category))["steps"]
    if not 1 <= n <= len(steps):
        raise NotFound(f"the {alert.category} plan has no step {n}")
    step = steps[n - 1]
    if step.get("not_silent") and alert.silent:
        raise StepNotForSilent(f"step {n} is not done for a silent alert")
    earlier = await session.scalars(
        select(AlertStepTick)
        .where(AlertStepTick.alert_id == alert.id, AlertStepTick.n == n)
        .order_by(AlertStepTick.id)
    )
    for tick in earlier:
        if _same_step(tick.step, step):
            return {**_tick_view(tick), "new": False}
    snapshot = {key: value for key, value in step.items() if key in ("key", "text")}
    tick = AlertStepTick(alert_id=alert.id, n=n, step=snapshot, at=utcnow(), actor=actor)
    session.add(tick)
    await session.flush()
    return {**_tick_view(tick), "new": True}


async def alert_plan(session: AsyncSession, alert: Alert) -> dict[str, Any]:
    """The alert's checklist: its category's plan, each step with who ticked it and when."""
    plan = await plan_of(session, alert.category)
    ticks = (
        await session.scalars(
            select(AlertStepTick)
            .where(AlertStepTick.alert_id == alert.id)
            .order_by(AlertStepTick.id)
        )
    ).all()
    steps = []
    matched: set[int] = set()
    for n, step in enumerate(plan["steps"], start=1):
        done = next((tick for tick in ticks if tick.n == n and _same_step(tick.step, step)), None)
        if done is not None:
            matched.add(done.id)
        steps.append(
            {
                "n": n,
                "key": step.get("key"),
                "text": step.get("text"),
                "not_silent": bool(step.get("not_silent")),
                "skipped": bool(step.get("not_silent")) and alert.silent,
                "ticked_by": done.actor if done else None,
                "ticked_at": iso(done.at) if done else None,
            }
        )
    return {
        "category": alert.category,
        "default": plan["default"],
        "steps": steps,
        "earlier_ticks": [_tick_view(tick) for tick in ticks if tick.id not in matched],
    }


async def workflow_of(session: AsyncSession, alert: Alert) -> dict[str, Any]:
    """What the console adds to an alert's record: notes, each acknowledgement, the plan.

    The caller has checked ``Scope.reads_alert_workflow``.
    """
    notes: list[Note] = (await notes_for(session, [alert.id]))[alert.id]
    acknowledgements = await session.scalars(
        select(AlertAcknowledgement)
        .where(AlertAcknowledgement.alert_id == alert.id)
        .order_by(AlertAcknowledgement.id)
    )
    return {
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": iso(alert.acknowledged_at),
        "acknowledgements": [
            {"at": iso(row.at), "by": row.actor, "state": row.state} for row in acknowledgements
        ],
        "notes": [note.view() for note in notes],
        "plan": await alert_plan(session, alert),
    }


async def announce(
    session: AsyncSession, alert: Alert, action: str, *, by: str, **detail: Any
) -> None:
    """An ``alert.workflow`` feed row for the console in the caller's transaction: ``action``
    (``note``, ``step``, ``acknowledge``) on alert ``alert``, with what was done."""
    data = {"alert_id": alert.id, "action": action, "by": by, **detail}
    # No post and no mahalla: only scopes that reach everything (the console) receive it.
    await append(session, [FeedMessage("alert.workflow", data, alert_id=alert.id)])
