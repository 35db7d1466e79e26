"""A device's premises and call list (DESIGN §10): what may be stored, read from the API, a CSV
row or the CLI, and written to the device row.

Premises are ``ref`` (devices sharing a ref are one site), ``owner``, ``address`` (the device's
existing column), ``street``, ``notes`` (entrance, floor, key-holder instructions) and
``contacts``, the ordered call list ``[{name, phone, relation}]``. Every input path validates
through ``PremisesIn`` (``alertnet.validation`` text with lengths, a phone pattern), so the API,
the CSV import and the CLI accept exactly the same values. Who may read which part is decided
by ``alertnet.auth.scope`` alone; this module only builds the full record.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from alertnet.errors import InvalidInput
from alertnet.models import Device
from alertnet.validation import SafeLine, SafeStr

MAX_REF_LENGTH: Final = 64
MAX_OWNER_LENGTH: Final = 200
MAX_PREMISES_ADDRESS_LENGTH: Final = 300  # the column devices.address
MAX_STREET_LENGTH: Final = 200
MAX_NOTES_LENGTH: Final = 2000
MAX_CONTACTS: Final = 10
MAX_CONTACT_NAME_LENGTH: Final = 120
MAX_PHONE_LENGTH: Final = 32
MAX_RELATION_LENGTH: Final = 60
# A number as people write it: an optional +, digits, spaces, dashes, parentheses.
PHONE_PATTERN: Final = r"^\+?[0-9(][0-9 ()\-]*[0-9]$"
MIN_PHONE_DIGITS: Final = 3

# The CSV columns (DESIGN §10); contacts are numbered from 1: contact1_name, contact1_phone, …
CSV_COLUMNS: Final = ("premises_ref", "owner", "address", "street", "notes")
CSV_CONTACT_FIELDS: Final = ("name", "phone", "relation")
_CSV_CONTACT_COLUMN = re.compile(r"contact([1-9][0-9]?)_(name|phone|relation)")

Ref = Annotated[SafeLine, StringConstraints(max_length=MAX_REF_LENGTH)]
Phone = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_PHONE_LENGTH, pattern=PHONE_PATTERN)
]


class ContactIn(BaseModel):
    """One person to call, in the order the call list gives."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[SafeLine, StringConstraints(min_length=1, max_length=MAX_CONTACT_NAME_LENGTH)]
    phone: Phone = Field(description="digits, optionally a leading + and spaces or dashes")
    relation: Annotated[SafeLine, StringConstraints(max_length=MAX_RELATION_LENGTH)] = ""


class PremisesIn(BaseModel):
    """The whole premises of a device; a PUT replaces them all (absent fields become empty)."""

    model_config = ConfigDict(extra="forbid")

    ref: Ref | None = Field(default=None, description="devices sharing a ref are one site")
    owner: Annotated[SafeLine, StringConstraints(max_length=MAX_OWNER_LENGTH)] = ""
    address: Annotated[SafeLine, StringConstraints(max_length=MAX_PREMISES_ADDRESS_LENGTH)] = ""
    street: Annotated[SafeLine, StringConstraints(max_length=MAX_STREET_LENGTH)] = ""
    notes: Annotated[SafeStr, StringConstraints(max_length=MAX_NOTES_LENGTH)] = ""
    contacts: list[ContactIn] = Field(default_factory=list, max_length=MAX_CONTACTS)


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    phone: str
    relation: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "phone": self.phone, "relation": self.relation}


@dataclass(frozen=True, slots=True)
class Premises:
    """Validated premises, as stored on the device row."""

    ref: str | None = None
    owner: str = ""
    address: str = ""
    street: str = ""
    notes: str = ""
    contacts: tuple[Contact, ...] = ()

    @classmethod
    def of(cls, body: PremisesIn) -> Premises:
        """From a validated request; text is trimmed and an empty ref is no ref."""
        contacts = tuple(
            Contact(c.name.strip(), c.phone.strip(), c.relation.strip()) for c in body.contacts
        )
        for index, contact in enumerate(contacts):
            if sum(ch.isdigit() for ch in contact.phone) < MIN_PHONE_DIGITS:
                raise InvalidInput(
                    f"contacts.{index}.phone: {contact.phone!r} has fewer than "
                    f"{MIN_PHONE_DIGITS} digits"
                )
            if not contact.name:
                raise InvalidInput(f"contacts.{index}.name: the name is empty")
        return cls(
            ref=(body.ref or "").strip() or None,
            owner=body.owner.strip(),
            address=body.address.strip(),
            street=body.street.strip(),
            notes=body.notes.strip(),
            contacts=contacts,
        )

    @classmethod
    def of_device(cls, device: Device) -> Premises:
        return cls(
            ref=device.premises_ref,
            owner=device.owner,
            address=device.address,
            street=device.street,
            notes=device.notes,
            contacts=tuple(Contact(**contact) for contact in device.contacts or []),
        )

    def apply_to(self, device: Device) -> None:
        device.premises_ref = self.ref
        device.owner = self.owner
        device.address = self.address
        device.street = self.street
        device.notes = self.notes
        device.contacts = [contact.as_dict() for contact in self.contacts]

    def as_dict(self) -> dict[str, Any]:
        """The full record (``PremisesField`` names): filter it with ``Scope.visible_premises``."""
        return premises_dict(
            self.ref,
            self.owner,
            self.address,
            self.street,
            self.notes,
            [contact.as_dict() for contact in self.contacts],
        )


def premises_dict(
    ref: str | None,
    owner: str,
    address: str,
    street: str,
    notes: str,
    contacts: list[dict[str, str]] | None,
) -> dict[str, Any]:
    """The premises record from device columns, as every view carries it before the scope."""
    return {
        "ref": ref,
        "owner": owner,
        "address": address,
        "street": street,
        "notes": notes,
        "contacts": [dict(contact) for contact in contacts or []],
    }


def parse_premises(value: Mapping[str, Any]) -> Premises:
    """Validate premises given as plain values (a CSV row, the CLI); InvalidInput if bad."""
    try:
        body = PremisesIn.model_validate(value)
    except ValidationError as exc:
        raise InvalidInput(_describe(exc)) from None
    return Premises.of(body)


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "premises: " + "; ".join(parts)


def is_csv_column(column: str) -> bool:
    """Whether ``column`` is a premises column of the device CSV."""
    return column in CSV_COLUMNS or _CSV_CONTACT_COLUMN.fullmatch(column) is not None


def premises_from_csv(values: Mapping[str, str]) -> Premises | None:
    """The premises of one CSV row, None when the file has no premises column but ``address``.

    Contact slots are read in their numbered order; an all-empty slot is skipped, so
    ``contact2_*`` may be left empty in rows with a single contact.
    """
    contact_columns: dict[int, dict[str, str]] = {}
    for column, value in values.items():
        match = _CSV_CONTACT_COLUMN.fullmatch(column)
        if match is not None:
            contact_columns.setdefault(int(match[1]), {})[match[2]] = value
    # ``address`` alone is the device CSV's older column: the device keeps it, as before.
    if not contact_columns and not any(
        column in values for column in CSV_COLUMNS if column != "address"
    ):
        return None
    contacts = []
    for slot in sorted(contact_columns):
        fields = contact_columns[slot]
        if not any(fields.values()):
            continue
        for required in ("name", "phone"):
            if not fields.get(required):
                raise InvalidInput(f"contact{slot}_{required} is empty (contact {slot} is given)")
        contacts.append(
            {
                "name": fields["name"],
                "phone": fields["phone"],
                "relation": fields.get("relation", ""),
            }
        )
    return parse_premises(
        {
            "ref": values.get("premises_ref") or None,
            "owner": values.get("owner", ""),
            "address": values.get("address", ""),
            "street": values.get("street", ""),
            "notes": values.get("notes", ""),
            "contacts": contacts,
        }
    )


async def set_premises(session: AsyncSession, device: Device, premises: Premises) -> Device:
    """Replace ``device``'s premises (the caller's transaction commits)."""
    premises.apply_to(device)
    await session.flush()
    return device


def parse_cli_premises(
    *,
    ref: str | None,
    owner: str,
    address: str,
    street: str,
    notes: str,
    contacts: list[str],
) -> Premises | None:
    """The premises of ``alertnet device add`` (None when only ``--address`` or nothing is
    given); each contact is ``NAME;PHONE[;RELATION]``."""
    if not (ref or owner or street or notes or contacts):
        return None
    parsed = []
    for contact in contacts:
        parts = [part.strip() for part in contact.split(";")]
        if len(parts) not in (2, 3):
            raise InvalidInput(f"--contact {contact!r}: give NAME;PHONE or NAME;PHONE;RELATION")
        parsed.append(dict(zip(CSV_CONTACT_FIELDS, parts, strict=False)))
    return parse_premises(
        {
            "ref": ref,
            "owner": owner,
            "address": address,
            "street": street,
            "notes": notes,
            "contacts": parsed,
        }
    )
