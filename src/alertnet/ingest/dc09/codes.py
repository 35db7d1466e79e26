"""What a panel's message means: SIA-DCS and Contact ID codes → alertnet's domain (DESIGN §9.1).

``readings(token, data) -> tuple[Signal, ...]`` reads the data of a ``SIA-DCS`` message
(``#acct|N[ti…/][id…/][ri<area>/]<code><zone>``), an ``ADM-CID`` message
(``#acct|QEEE GG CCC``: qualifier, event, partition, zone or user) or a ``NULL`` link test and
maps it exactly as §9.1's table says: one ``Signal``, or, for a SIA block with several alarm
events, one per alarm; which of those speaks is a matter of priority, so
``alertnet.ingest.dc09.intake.classify`` picks it (``alerts.priority``, the one home of
priorities). Pure: this module imports nothing of alertnet (``firmware_sim`` imports it).

A code outside the table is ``Action.UNKNOWN`` with trouble ``unknown_code``: recorded,
acknowledged and rung on the console, never guessed into an alarm.

``dedup_key(token, seq, data, xdata)`` is the message's identity: ``dc09:<seq>:<h>``, ``h`` the
first 16 hex digits of SHA-256 over token, data and x-data — pad and timestamp left out, so an
encrypted retry (fresh pad, fresh time) is the same message. (The ``:<epoch minute>`` suffix
for a key first seen more than 10 minutes ago is the pipeline's business.)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = [
    "Action",
    "Category",
    "Signal",
    "TroubleKind",
    "dedup_key",
    "readings",
    "split_account",
]


class Action(StrEnum):
    ALARM = "alarm"  # opens an alert, or merges into the device's open one
    RESTORE = "restore"  # recorded on the open alert, never closes it
    CANCEL = "cancel"  # recorded on the open alert (§2.3: never stops a dispatch)
    RECORD = "record"  # an event only (open/close, status reports)
    TEST = "test"  # a test event (and the month's test received)
    SUPERVISION = "supervision"  # heard; the month's test received
    TROUBLE = "trouble"  # opens a trouble of ``Signal.trouble``'s kind
    TROUBLE_RESTORE = "trouble_restore"  # closes it
    UNKNOWN = "unknown"  # recorded, ACKed, a trouble ``unknown_code`` rings


class Category(StrEnum):
    PANIC = "panic"
    INTRUSION = "intrusion"
    FIRE = "fire"
    MEDICAL = "medical"
    TAMPER = "tamper"


class TroubleKind(StrEnum):
    MAINS = "mains"
    BATTERY = "battery"
    UNKNOWN_CODE = "unknown_code"


@dataclass(frozen=True, slots=True)
class Signal:
    """One message's meaning.

    ``code``: the SIA code (``BA``) or the Contact ID event with its qualifier letter (``E130``
    new, ``R130`` restore, ``P130`` status), ``NULL`` for a link test, or as much of the data as
    was read when it could not be. ``zone``, ``partition`` (SIA ``ri``, Contact ID ``GG``) and
    ``user`` (open/close, cancel) as digits, when the message has them; ``qualifier`` the
    Contact ID qualifier digit. ``other_codes``: further SIA codes in the same data block.
    """

    action: Action
    code: str
    category: Category | None = None
    trouble: TroubleKind | None = None
    silent: bool = False
    zone: str | None = None
    partition: str | None = None
    user: str | None = None
    qualifier: str | None = None
    other_codes: tuple[str, ...] = ()


# -- the table ----------------------------------------------------------------------------------

_A, _R = Action.ALARM, Action.RESTORE
_SIA: Final[dict[str, tuple[Action, Category | None, TroubleKind | None, bool]]] = {
    "BA": (_A, Category.INTRUSION, None, False),
    "BV": (_A, Category.INTRUSION, None, False),
    "BR": (_R, Category.INTRUSION, None, False),
    "PA": (_A, Category.PANIC, None, False),
    "PR": (_R, Category.PANIC, None, False),
    "HA": (_A, Category.PANIC, None, True),
    "HR": (_R, Category.PANIC, None, True),
    "FA": (_A, Category.FIRE, None, False),
    "FR": (_R, Category.FIRE, None, False),
    "MA": (_A, Category.MEDICAL, None, False),
    "MR": (_R, Category.MEDICAL, None, False),
    "TA": (_A, Category.TAMPER, None, False),
    "TR": (_R, Category.TAMPER, None, False),
    "AT": (Action.TROUBLE, None, TroubleKind.MAINS, False),
    "AR": (Action.TROUBLE_RESTORE, None, TroubleKind.MAINS, False),
    "YT": (Action.TROUBLE, None, TroubleKind.BATTERY, False),
    "YR": (Action.TROUBLE_RESTORE, None, TroubleKind.BATTERY, False),
    "OC": (Action.CANCEL, None, None, False),
    "BC": (Action.CANCEL, Category.INTRUSION, None, False),
    "OP": (Action.RECORD, None, None, False),
    "CL": (Action.RECORD, None, None, False),
    "RX": (Action.TEST, None, None, False),
    "RP": (Action.SUPERVISION, None, None, False),
}
#: SIA codes whose number is a user, not a zone.
_SIA_USER_CODES: Final = frozenset({"OP", "CL", "OC", "BC"})


def _cid_table() -> dict[int, tuple[Category, bool]]:
    table: dict[int, tuple[Category, bool]] = {}
    for event in (*range(130, 137), *range(138, 141)):
        table[event] = (Category.INTRUSION, False)
    table[146] = (Category.INTRUSION, True)  # silent burglary
    table[120] = table[123] = (Category.PANIC, False)
    for event in (121, 122, 124, 125):  # duress, silent hold-up, duress access/egress
        table[event] = (Category.PANIC, True)
    for event in range(110, 119):
        table[event] = (Category.FIRE, False)
    for event in range(100, 103):
        table[event] = (Category.MEDICAL, False)
    table[137] = table[144] = (Category.TAMPER, False)
    return table


_CID_ALARMS: Final = _cid_table()
_CID_TROUBLES: Final = {301: TroubleKind.MAINS, 302: TroubleKind.BATTERY}
_CID_OPEN_CLOSE: Final = frozenset({401, 402, 403, 404, 405, 407, 408, 409})
_CID_QUALIFIER_LETTER: Final = {"1": "E", "3": "R", "6": "P"}

# -- parsing ------------------------------------------------------------------------------------

_ACCOUNT_PREFIX: Final = re.compile(r"#([0-9A-Fa-f]{3,16})\|")
_CID: Final = re.compile(r"([0-9])([0-9]{3}) ?([0-9]{2}) ?([0-9]{3})")
_SIA_MODIFIER: Final = re.compile(r"(ti)([0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?)|(id|ri|pi)([0-9]*)")
_SIA_EVENT: Final = re.compile(r"([A-Z]{2})([0-9]*)(?:\^[^^]*\^?)?")


def split_account(data: str) -> tuple[str | None, str]:
    """``#1234|Nri1/BA501`` → ``("1234", "Nri1/BA501")``; data without the prefix unchanged."""
    match = _ACCOUNT_PREFIX.match(data)
    if match is None:
        return None, data
    return match[1], data[match.end() :]


def readings(token: str, data: str) -> tuple[Signal, ...]:
    """What a ``token`` message (without ``*``) carrying ``data`` may mean: one ``Signal``, or
    one per alarm event (in block order) of a SIA block that holds several."""
    token = token.upper()
    if token == "NULL":
        return (Signal(Action.SUPERVISION, "NULL"),)
    _account, payload = split_account(data)
    if token == "ADM-CID":
        return (_contact_id(payload),)
    if token == "SIA-DCS":
        return _sia(payload)
    return (_unknown(f"{token}:{payload}"),)


def _unknown(
    code: str,
    zone: str | None = None,
    partition: str | None = None,
    qualifier: str | None = None,
    other_codes: tuple[str, ...] = (),
) -> Signal:
    return Signal(
        Action.UNKNOWN,
        code[:32],
        trouble=TroubleKind.UNKNOWN_CODE,
        zone=zone,
        partition=partition,
        qualifier=qualifier,
        other_codes=other_codes,
    )


def _contact_id(payload: str) -> Signal:
    match = _CID.fullmatch(payload.strip())
    if match is None:
        return _unknown(payload)
    qualifier, event_text, partition, zone = match.groups()
    event = int(event_text)
    letter = _CID_QUALIFIER_LETTER.get(qualifier)
    code = f"{letter or qualifier}{event_text}"
    if letter is None:
        return _unknown(code, zone, partition, qualifier)
    restore = qualifier == "3"
    status = qualifier == "6"
    if event in _CID_ALARMS:
        category, silent = _CID_ALARMS[event]
        action = Action.RECORD if status else Action.RESTORE if restore else Action.ALARM
        return Signal(action, code, category, None, silent, zone, partition, None, qualifier)
    if event in _CID_TROUBLES:
        kind = _CID_TROUBLES[event]
        action = Action.RECORD if status else Action.TROUBLE_RESTORE if restore else Action.TROUBLE
        return Signal(action, code, None, kind, False, zone, partition, None, qualifier)
    if event == 406:
        return Signal(Action.CANCEL, code, None, None, False, None, partition, zone, qualifier)
    if event in _CID_OPEN_CLOSE:
        return Signal(Action.RECORD, code, None, None, False, None, partition, zone, qualifier)
    if event == 601:
        return Signal(Action.TEST, code, None, None, False, zone, partition, None, qualifier)
    if event in (602, 603):
        return Signal(Action.SUPERVISION, code, None, None, False, zone, partition, None, qualifier)
    return _unknown(code, zone, partition, qualifier)


def _sia(payload: str) -> tuple[Signal, ...]:
    """``N`` (new event), then ``/``-separated elements: modifiers (``ti``, ``id``, ``ri``,
    ``pi``) and events (two capitals and a number). ``ri`` is the area of the events after it."""
    elements = _sia_elements(payload[1:]) if payload.startswith("N") else None
    if elements is None:
        elements = _sia_elements(payload)
    if elements is None:
        return (_unknown(payload),)
    events: list[tuple[str, str, str | None]] = []  # code, number, area
    area: str | None = None
    for kind, value in elements:
        if kind == "ri":
            area = value or None
        elif len(kind) == 2 and kind.isupper():
            events.append((kind, value, area))
    if not events:
        return (_unknown(payload),)
    # One event per message is the rule; of several, an alarm speaks (which one is the
    # caller's choice by priority), else the first; the rest are kept as ``other_codes``.
    alarms = [e for e in events if e[0] in _SIA and _SIA[e[0]][0] is Action.ALARM]
    return tuple(_sia_signal(chosen, events) for chosen in (alarms or events[:1]))


def _sia_signal(
    chosen: tuple[str, str, str | None], events: list[tuple[str, str, str | None]]
) -> Signal:
    others = tuple(code for code, _number, _area in events if (code, _number, _area) != chosen)
    code, number, area = chosen
    digits = number or None
    if code not in _SIA:
        return _unknown(code, digits, area, None, others)
    action, category, trouble, silent = _SIA[code]
    user = digits if code in _SIA_USER_CODES else None
    zone = None if code in _SIA_USER_CODES else digits
    return Signal(action, code, category, trouble, silent, zone, area, user, None, others)


def _sia_elements(text: str) -> list[tuple[str, str]] | None:
    """``ri1/BA501/BR502`` → ``[("ri", "1"), ("BA", "501"), ("BR", "502")]``.

    A new element may follow a number directly (``ri1BA501``). Reading stops at the first
    element that is neither a modifier nor an event (a text block): what came before counts if
    it holds an event, else None."""
    elements: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if text[position] == "/":
            position += 1
            continue
        modifier = _SIA_MODIFIER.match(text, position)
        if modifier is not None:
            if modifier[1]:
                elements.append((modifier[1], modifier[2]))
            else:
                elements.append((modifier[3], modifier[4]))
            position = modifier.end()
            continue
        event = _SIA_EVENT.match(text, position)
        if event is None:
            has_event = any(len(kind) == 2 and kind.isupper() for kind, _ in elements)
            return elements if has_event else None
        elements.append((event[1], event[2]))
        position = event.end()
    return elements


def dedup_key(token: str, seq: str, data: str, xdata: Sequence[str]) -> str:
    """``dc09:<seq>:<first 16 hex of SHA-256 over token, data and x-data>`` (``token`` without
    ``*``; ``xdata`` the blocks without brackets, as ``Message.xdata``)."""
    identity = json.dumps([token.lstrip("*"), data, list(xdata)], separators=(",", ":"))
    digest = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return f"dc09:{seq}:{digest}"
