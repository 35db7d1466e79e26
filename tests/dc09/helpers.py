"""A stand-in for ``dc09.intake``: §9.1's answer rules over the pure frame functions, with no
pipeline behind it, so the receiver and the simulator can be tested on real sockets alone.

``ReferenceIntake(accounts)`` answers ACK (``*ACK`` when encrypted), NAK for an encrypted
message outside the time window, DUH for an unknown account or token, and nothing for a bad
CRC, length or anything else refused; it keeps what it saw.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime

from alertnet.ingest.dc09.frame import (
    FrameError,
    Message,
    ack,
    duh,
    nak,
    open_envelope,
    parse_frame,
    timestamp_ok,
)


@dataclass
class ReferenceIntake:
    accounts: dict[str, bytes | None]
    accepted: list[tuple[str, str, Message, str]] = field(default_factory=list)  # acct, seq
    refused: list[str] = field(default_factory=list)  # reasons
    garbage: list[tuple[bytes, str, str]] = field(default_factory=list)

    async def on_frame(self, raw: bytes, peer: str, transport: str) -> bytes | None:
        try:
            envelope = parse_frame(raw)
        except FrameError as exc:
            self.refused.append(exc.reason)
            return None
        if not envelope.supported or envelope.account.upper() not in self.accounts:
            self.refused.append("duh")
            return duh(envelope)
        key = self.accounts[envelope.account.upper()]
        try:
            message = open_envelope(envelope, key)
        except FrameError as exc:
            self.refused.append(exc.reason)
            return nak() if exc.reason == "bad_timestamp" else None
        now = datetime.now(UTC)
        if envelope.encrypted and not timestamp_ok(message.timestamp or now, now):
            self.refused.append("bad_timestamp")
            return nak(now)
        await asyncio.sleep(0)  # where the real intake commits
        self.accepted.append((envelope.account, envelope.seq, message, transport))
        return ack(envelope, key if envelope.encrypted else None)

    async def on_garbage(self, raw: bytes, peer: str, reason: str) -> None:
        self.garbage.append((raw, peer, reason))
