"""A readiness probe for fault tests: ``/readyz`` polled all through a scenario, every answer
kept, so a test can say what the probe saw while a part was down and after it came back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Final

import httpx

from tests.support.polling import eventually

__all__ = ["RECOVERY_BOUND_S", "ProbeAnswer", "ReadinessProbe", "now", "reports_down"]

#: How long the suite waits for things that must happen "eventually" (generous on purpose:
#: these bound a hang, they are not performance claims).
RECOVERY_BOUND_S: Final = 30.0


def now() -> float:
    return time.monotonic()


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """One ``/readyz`` request: when it was sent, and its answer (None: no answer in time)."""

    sent_at: float
    status: int | None
    body: Any = None


def reports_down(body: Any, part: str) -> bool:
    """True when a ``/readyz`` body names ``part`` as not ok.

    ``{"broker": "disconnected"}`` does, and so does the part's name anywhere in a value
    (a list of failing tasks, a reason); ``{"broker": "ok"}`` does not.
    """
    if isinstance(body, dict):
        return any(
            (value != "ok") if key == part else reports_down(value, part)
            for key, value in body.items()
        )
    if isinstance(body, list):
        return any(reports_down(value, part) for value in body)
    return isinstance(body, str) and part in body


class ReadinessProbe:
    """Polls ``/readyz`` every ``interval_s`` (each request waits at most ``timeout_s``)."""

    def __init__(self, base_url: str, *, interval_s: float = 0.05, timeout_s: float = 2.0) -> None:
        self.base_url = base_url
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.answers: list[ProbeAnswer] = []

    async def run(self) -> None:
        # No keep-alive: every probe is a fresh request, as an orchestrator's would be.
        limits = httpx.Limits(max_keepalive_connections=0)
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout_s, limits=limits
        ) as client:
            while True:
                sent_at = now()
                try:
                    response = await client.get("/readyz")
                except httpx.HTTPError:
                    self.answers.append(ProbeAnswer(sent_at, None))
                else:
                    try:
                        body: Any = response.json()
                    except json.JSONDecodeError:
                        body = response.text
                    self.answers.append(ProbeAnswer(sent_at, response.status_code, body))
                await asyncio.sleep(self.interval_s)

    def between(self, start: float, end: float) -> list[ProbeAnswer]:
        """The answers to requests sent in ``[start, end)``."""
        return [answer for answer in self.answers if start <= answer.sent_at < end]

    def assert_down_between(self, start: float, end: float, part: str) -> None:
        """Every request sent in ``[start, end)`` got a 503 naming ``part`` (at least three)."""
        answers = self.between(start, end)
        assert len(answers) >= 3, f"the probe sent only {len(answers)} requests: {answers}"
        wrong = [a for a in answers if a.status != 503 or not reports_down(a.body, part)]
        assert not wrong, (
            f"{len(wrong)} of {len(answers)} /readyz answers did not say {part!r} was down: "
            f"{wrong[:5]}"
        )

    def assert_ready_between(self, start: float, end: float) -> None:
        """Every answer to a request sent in ``[start, end)`` was 200 (or, on a loaded
        machine, no answer in time): no 503 once the part is back."""
        answers = self.between(start, end)
        assert answers, "the probe sent nothing after recovery"
        wrong = [answer for answer in answers if answer.status not in (200, None)]
        assert not wrong, f"/readyz said not ready after recovery: {wrong[:5]}"

    async def first(self, status: int, *, after: float, bound_s: float = RECOVERY_BOUND_S) -> float:
        """When the first request sent after ``after`` that got ``status`` was sent."""
        return (await self.first_answer(status, after=after, bound_s=bound_s)).sent_at

    async def first_answer(
        self, status: int, *, after: float, bound_s: float = RECOVERY_BOUND_S
    ) -> ProbeAnswer:
        """The first answer ``status`` to a request sent after ``after``."""

        def first_with_status() -> ProbeAnswer | None:
            answers = self.between(after, float("inf"))
            return next((answer for answer in answers if answer.status == status), None)

        def seen() -> str:
            return f"statuses seen: {Counter(a.status for a in self.between(after, float('inf')))}"

        answer = await eventually(
            first_with_status,
            lambda answer: answer is not None,
            awaiting=f"/readyz to answer {status}",
            timeout_s=bound_s,
            interval_s=self.interval_s,
            details=seen,
        )
        assert answer is not None
        return answer
