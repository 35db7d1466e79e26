"""One DC-09 frame in, one answer out: the receiver's ``on_frame`` in front of the one pipeline.

``Dc09Intake.on_frame(raw, peer, transport)`` (DESIGN §9.1):

1. ``frame.parse_frame``: a bad length or CRC, or a frame that is not DC-09, is quarantined
   and gets no answer (the panel retries).
2. An unsupported token, an unknown (or disabled) account, or an encrypted message for an
   account without a key: ``DUH``, quarantined. Plain text for an account with a key:
   ``DUH`` (``encryption_required``), quarantined — a key is only worth having if it is used.
3. ``frame.open_envelope`` with the account's key; a wrong key is quarantined
   (``decrypt_failed``), no answer. An encrypted message without a timestamp or outside
   -40/+20 s of alertnet's clock: ``NAK`` (which carries the receiver's time), quarantined.
   A plain message's clock skew is kept on its event.
4. ``classify`` → a ``SourceEvent`` keyed ``codes.dedup_key`` (the 10-minute renewal is
   the pipeline's, ``renew_after_s``), ``Pipeline.submit_event``, and ``ACK`` (``*ACK`` for an
   encrypted message) once its batch has committed — also for a retry the pipeline finds to
   be a duplicate (counted as a reception, never processed twice).

Accounts are looked up in the database and cached for ``account_ttl_s``. A frame is refused
only on fresh facts: one the cached panel would refuse (disabled, a key that fails, plain text
to a key) is judged again on the panel as the database has it now, and the pipeline checks the
device's account, status and key again under its row lock. So a disabled, re-enabled or
re-keyed panel takes effect with its next message.
Nothing here raises into the receiver: a database that is away means no answer (the panel
retries) and a log line.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.alerts.priority import BASE_PRIORITY
from alertnet.ingest.dc09 import codes, frame
from alertnet.ingest.outcomes import Outcome, RawUplink
from alertnet.ingest.pipeline import Pipeline
from alertnet.ingest.sources import SourceEvent, SourceKind
from alertnet.models import AlertCategory, Device, DeviceStatus, Transport, utcnow
from alertnet.protocol import DecodeError, Reason

__all__ = ["RENEW_AFTER_S", "Dc09Intake", "Panel", "classify", "source_event"]

log = logging.getLogger(__name__)

#: A message key first seen longer ago is a new message (DESIGN §9.1: 10 minutes).
RENEW_AFTER_S: Final = 600.0
#: How long a frame waits for its commit before it is left unanswered (the panel retries; the
#: message is still committed, and the retry is then answered as a duplicate).
ANSWER_TIMEOUT_S: Final = 20.0
ACCOUNT_TTL_S: Final = 30.0
_MAX_CACHED_ACCOUNTS: Final = 100_000

_FRAME_REASONS: Final = {
    "bad_crc": Reason.BAD_CRC,
    "bad_length": Reason.BAD_LENGTH,
    "malformed": Reason.BAD_FRAME,
    "no_key": Reason.DECRYPT_FAILED,
    "decrypt_failed": Reason.DECRYPT_FAILED,
    "bad_timestamp": Reason.BAD_TIMESTAMP,
}
_TROUBLES: Final = {
    codes.TroubleKind.MAINS: ("mains_lost", "mains_restored"),
    codes.TroubleKind.BATTERY: ("low_battery", "battery_restored"),
    codes.TroubleKind.UNKNOWN_CODE: ("unknown_code", "unknown_code"),
}
_KINDS: Final = {
    codes.Action.ALARM: SourceKind.ALARM,
    codes.Action.RESTORE: SourceKind.RESTORE,
    codes.Action.CANCEL: SourceKind.CANCEL,
    codes.Action.RECORD: SourceKind.RECORD,
    codes.Action.TEST: SourceKind.TEST,
    codes.Action.SUPERVISION: SourceKind.SUPERVISION,
    codes.Action.TROUBLE: SourceKind.TROUBLE,
    codes.Action.TROUBLE_RESTORE: SourceKind.TROUBLE_RESTORE,
    codes.Action.UNKNOWN: SourceKind.TROUBLE,
}
# Contact ID 401-409: qualifier 1 is an opening (disarmed), 3 a closing (armed).
_OPEN_CLOSE: Final = {"OP": "opening", "CL": "closing", "E": "opening", "R": "closing"}


@dataclass(frozen=True, slots=True)
class Panel:
    """What answering a panel needs to know about the device behind its account."""

    device_id: int
    eui: str
    active: bool
    key: bytes | None


def _event_code(signal: codes.Signal) -> str:
    """The event's stored name (``events.code``), in the words of the other sources."""
    action = signal.action
    if action is codes.Action.ALARM and signal.category is not None:
        return signal.category.value
    if action in (codes.Action.TROUBLE, codes.Action.UNKNOWN) and signal.trouble is not None:
        return _TROUBLES[signal.trouble][0]
    if action is codes.Action.TROUBLE_RESTORE and signal.trouble is not None:
        return _TROUBLES[signal.trouble][1]
    if action is codes.Action.RECORD:
        if signal.code in _OPEN_CLOSE:
            return _OPEN_CLOSE[signal.code]
        if signal.code[1:].isdigit() and 401 <= int(signal.code[1:]) <= 409:
            return _OPEN_CLOSE.get(signal.code[:1], "status")
        return "status"
    return action.value  # restore, cancel, test, supervision


def classify(token: str, data: str) -> codes.Signal:
    """The meaning of a ``token`` message (without ``*``) carrying ``data``: of the readings
    ``codes.readings`` gives, the alarm of the highest base priority (DESIGN §4, panic over
    fire over … tamper; the first of equals) speaks."""
    return max(codes.readings(token, data), key=_base_priority)


def _base_priority(signal: codes.Signal) -> int:
    if signal.category is None:
        return 0
    return BASE_PRIORITY[AlertCategory(signal.category.value)]


def source_event(
    envelope: frame.Envelope,
    message: frame.Message,
    panel: Panel,
    *,
    received_at: datetime,
    peer: str,
) -> SourceEvent:
    """The pipeline's event for an opened DC-09 message of ``panel``."""
    signal = classify(envelope.token, message.data)
    kind = _KINDS[signal.action]
    # The trouble a trouble event raises, or its restore clears: its kind, not the event's name.
    trouble = _TROUBLES[signal.trouble][0] if signal.trouble is not None else None
    details: dict[str, Any] = {
        "token": envelope.token,
        "code": signal.code,
        "zone": signal.zone,
        "partition": signal.partition,
        "user": signal.user,
        "qualifier": signal.qualifier,
        "account": envelope.account,
        "seq": envelope.seq,
        "encrypted": envelope.encrypted,
    }
    if signal.other_codes:
        details["other_codes"] = ",".join(signal.other_codes)
    if message.timestamp is not None:
        details["clock_skew_s"] = round((message.timestamp - received_at).total_seconds(), 1)
    where = " ".join(
        f"{name} {value}"
        for name, value in (("zone", signal.zone), ("area", signal.partition))
        if value is not None
    )
    return SourceEvent(
        device_id=panel.device_id,
        dedup_key=codes.dedup_key(envelope.token, envelope.seq, message.data, message.xdata),
        kind=kind,
        code=_event_code(signal),
        transport=Transport.DC09,
        received_at=received_at,
        category=AlertCategory(signal.category.value) if signal.category is not None else None,
        trouble=trouble,
        silent=signal.silent,
        details={key: value for key, value in details.items() if value is not None},
        reason=f"DC-09 {envelope.token} {signal.code}" + (f" {where}" if where else ""),
        raw=envelope.raw,
        source=peer,
        renew_after_s=RENEW_AFTER_S,
        check_dc09_key=True,
        dc09_key=panel.key if envelope.encrypted else None,
        dc09_account=envelope.account.upper(),
    )


class _Again(enum.Enum):
    """``Dc09Intake._submit``'s "look the account up again and resubmit"."""

    AGAIN = "again"


_AGAIN: Final = _Again.AGAIN


class _Refused(Exception):
    """A frame that is quarantined, with its answer (None: silence)."""

    def __init__(self, reason: Reason, detail: str, answer: bytes | None = None) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail
        self.answer = answer


class Dc09Intake:
    """The DC-09 receiver's ``on_frame`` and ``on_garbage``; see the module docstring."""

    def __init__(
        self,
        pipeline: Pipeline,
        session_factory: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = utcnow,
        account_ttl_s: float = ACCOUNT_TTL_S,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> None:
        self._pipeline = pipeline
        self._session_factory = session_factory
        self._clock = clock
        self._account_ttl_s = account_ttl_s
        self._answer_timeout_s = answer_timeout_s
        self._accounts: dict[str, tuple[float, Panel | None]] = {}
        self.lookup_failures = 0
        self.unanswered = 0

    # -- the receiver's callbacks ---------------------------------------------------------------

    async def on_frame(self, raw: bytes, peer: str, transport: str) -> bytes | None:
        """Process one frame; the answer to send (None: no answer). Never raises."""
        received_at = self._clock()
        source = f"{transport}:{peer}"
        try:
            return await self._process(raw, source, received_at)
        except _Refused as refused:
            await self._quarantine(raw, source, received_at, refused.reason, refused.detail)
            return refused.answer
        except asyncio.CancelledError:
            raise
        except Exception:
            self.lookup_failures += 1
            log.exception("DC-09 frame from %s could not be processed; left unanswered", source)
            return None

    async def on_garbage(self, raw: bytes, peer: str, reason: str) -> None:
        """Bytes outside any frame (``garbage``, ``truncated``, ``line_too_long``)."""
        quarantine_reason = Reason.LINE_TOO_LONG if reason == "line_too_long" else Reason.BAD_FRAME
        await self._quarantine(raw, peer, self._clock(), quarantine_reason, reason)

    # -- one frame ------------------------------------------------------------------------------

    async def _process(self, raw: bytes, source: str, received_at: datetime) -> bytes | None:
        try:
            envelope = frame.parse_frame(raw)
        except frame.FrameError as exc:
            raise _Refused(_FRAME_REASONS.get(exc.reason, Reason.BAD_FRAME), str(exc)) from None
        if not envelope.supported:
            raise _Refused(
                Reason.UNSUPPORTED_TOKEN, f"token {envelope.token!r}", frame.duh(envelope)
            )
        account = envelope.account.upper()
        answer = await self._submit(envelope, account, source, received_at, last_try=False)
        if answer is _AGAIN:  # the account moved (or its device went) since it was cached
            answer = await self._submit(envelope, account, source, received_at, last_try=True)
        assert answer is not _AGAIN
        return answer

    async def _submit(
        self,
        envelope: frame.Envelope,
        account: str,
        source: str,
        received_at: datetime,
        *,
        last_try: bool,
    ) -> bytes | _Again | None:
        """Open, check and submit the message as from the account's panel: the answer, or
        ``_AGAIN`` when the batch found the account no longer that device's (its cache entry
        is dropped, so another try looks it up afresh)."""
        known, cached = await self._panel(account)
        try:
            message, panel = self._opened(envelope, account, known, received_at)
        except _Refused:
            if not cached:
                raise
            # Refused on cached facts: look again, so a panel re-keyed, re-enabled or given
            # plain text since is judged on what it is now (the batch then checks under its
            # row lock that it still is).
            self._accounts.pop(account, None)
            fresh, _cached = await self._panel(account)
            if fresh == known:
                raise
            message, panel = self._opened(envelope, account, fresh, received_at)
        event = source_event(envelope, message, panel, received_at=received_at, peer=source)
        outcome = await self._committed(self._pipeline.submit_event(event))
        if outcome is None:
            return None
        if outcome.accepted:
            return frame.ack(envelope, panel.key if envelope.encrypted else None)
        self._accounts.pop(account, None)  # refused under the row lock: look again next time
        if outcome.reason in (Reason.UNKNOWN_ACCOUNT, Reason.UNKNOWN_DEVICE):
            return None if last_try else _AGAIN
        if outcome.reason in (
            Reason.DISABLED_DEVICE,
            Reason.UNKNOWN_DEVICE,
            Reason.ENCRYPTION_REQUIRED,
        ):
            return frame.duh(envelope)
        return None

    def _opened(
        self,
        envelope: frame.Envelope,
        account: str,
        panel: Panel | None,
        received_at: datetime,
    ) -> tuple[frame.Message, Panel]:
        """The message inside, opened with ``panel``'s key and checked against what the panel
        is (active, key or no key) and alertnet's clock, and that panel; a refusal names what
        is wrong."""
        if panel is None or not panel.active:
            state = "unknown" if panel is None else f"disabled ({panel.eui})"
            reason = Reason.UNKNOWN_ACCOUNT if panel is None else Reason.DISABLED_DEVICE
            raise _Refused(reason, f"account {account} is {state}", frame.duh(envelope))
        try:
            message = frame.open_envelope(envelope, panel.key)
        except frame.FrameError as error:
            reason = _FRAME_REASONS.get(error.reason, Reason.BAD_FRAME)
            detail = f"account {account} ({panel.eui}): {error}"
            if error.reason == "no_key":
                raise _Refused(reason, detail, frame.duh(envelope)) from None
            if error.reason == "bad_timestamp":
                raise _Refused(reason, detail, frame.nak(received_at)) from None
            raise _Refused(reason, detail) from None
        if envelope.encrypted:
            assert message.timestamp is not None
            if not frame.timestamp_ok(message.timestamp, received_at):
                raise _Refused(
                    Reason.BAD_TIMESTAMP,
                    f"account {account}: sent at {message.timestamp.isoformat()}, "
                    f"received at {received_at.isoformat()}",
                    frame.nak(received_at),
                )
        elif panel.key is not None:
            raise _Refused(
                Reason.ENCRYPTION_REQUIRED,
                f"account {account} ({panel.eui}) has a key; plain text is refused",
                frame.duh(envelope),
            )
        return message, panel

    async def _committed(self, future: asyncio.Future[Outcome]) -> Outcome | None:
        """The outcome once committed; None if that takes too long (the panel will retry).

        Shielded: a frame given up on (a timeout, a connection gone) is still processed.
        """
        try:
            async with asyncio.timeout(self._answer_timeout_s):
                return await asyncio.shield(future)
        except TimeoutError:
            self.unanswered += 1
            log.warning("DC-09 message not committed within %.0f s", self._answer_timeout_s)
            return None

    async def _quarantine(
        self, raw: bytes, source: str, received_at: datetime, reason: Reason, detail: str
    ) -> None:
        """Keep refused input through the pipeline (batched, retried while the database is
        away); waits for the commit, so a flood of garbage slows only its own connection."""
        rejected = DecodeError(reason, detail)
        future = self._pipeline.submit(
            RawUplink(raw, Transport.DC09, received_at=received_at, source=source), rejected
        )
        await self._committed(future)

    # -- accounts -------------------------------------------------------------------------------

    async def _panel(self, account: str) -> tuple[Panel | None, bool]:
        """The device behind ``account`` (upper-case), cached for a short while; and whether
        it came from the cache (True) or from the database just now."""
        now = time.monotonic()
        cached = self._accounts.get(account)
        if cached is not None and now - cached[0] < self._account_ttl_s:
            return cached[1], True
        async with self._session_factory() as session:
            row = (
                await session.execute(
                    select(Device.id, Device.eui, Device.status, Device.dc09_key).where(
                        Device.dc09_account == account
                    )
                )
            ).first()
        panel = (
            Panel(row.id, row.eui, row.status != DeviceStatus.DISABLED, row.dc09_key)
            if row is not None
            else None
        )
        if len(self._accounts) >= _MAX_CACHED_ACCOUNTS:
            self._accounts.clear()
        if panel is not None:  # unknown accounts are looked up each time: one may be added
            self._accounts[account] = (now, panel)
        return panel, False
