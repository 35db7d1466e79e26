"""A checker of OASIS CAP 1.2 documents, written from the standard (CAP v1.2, OASIS Standard,
1 July 2010: §3.2 the element tables, §3.3.2 the date-time format, §3.4 the XML schema).

No XSD validator ships with the project, so the schema is written out here as data: each
element's children in their ``xs:sequence`` order with min/max occurrences, the enumerations,
and the value rules the standard's tables add (identifier and sender without spaces, commas,
``<`` or ``&``; date-times ``YYYY-MM-DDThh:mm:ss±hh:mm`` with ``-00:00`` for UTC and no ``Z``;
``restriction`` when scope is ``Restricted``, ``addresses`` when ``Private``; ``references``
as whitespace-separated ``sender,identifier,sent`` triples on an Update, Cancel, Ack or Error;
``circle`` as ``lat,lon radius`` in WGS 84 with the radius in km; ``polygon`` as four or more
pairs, closed). ``cap_errors`` lists every violation; ``assert_valid_cap`` fails on any.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

NS: Final = "urn:oasis:names:tc:emergency:cap:1.2"

Check = Callable[[str], str | None]  # the problem with a value, or None


def enumeration(*values: str) -> Check:
    def check(text: str) -> str | None:
        return None if text in values else f"{text!r} is not one of {', '.join(values)}"

    return check


def any_text(text: str) -> str | None:
    return None


def non_empty(text: str) -> str | None:
    return None if text.strip() else "must not be empty"


def no_restricted(text: str) -> str | None:
    """identifier, sender: 'MUST NOT include spaces, commas or restricted characters'."""
    if not text:
        return "must not be empty"
    if any(char in text for char in " ,<&") or any(char.isspace() for char in text):
        return f"{text!r} contains a space, comma, '<' or '&'"
    return None


_DATE_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[-+]\d\d:\d\d")


def date_time(text: str) -> str | None:
    """§3.3.2: no fraction, a numeric offset, 'Z' not permitted, UTC written -00:00."""
    if _DATE_TIME.fullmatch(text) is None:
        return f"{text!r} is not YYYY-MM-DDThh:mm:ss±hh:mm"
    if text.endswith("+00:00"):
        return f"{text!r}: UTC must be written -00:00"
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return f"{text!r} is not a real date and time"
    return None


_LANGUAGE: Final = re.compile(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*")  # RFC 3066


def language(text: str) -> str | None:
    return None if _LANGUAGE.fullmatch(text) else f"{text!r} is not an RFC 3066 language tag"


_NUMBER: Final = r"-?\d+(?:\.\d+)?"
_PAIR: Final = rf"({_NUMBER}),({_NUMBER})"


def _pair_problem(lat: str, lon: str) -> str | None:
    if not -90 <= float(lat) <= 90 or not -180 <= float(lon) <= 180:
        return f"{lat},{lon} is not a WGS 84 point"
    return None


def circle(text: str) -> str | None:
    match = re.fullmatch(rf"{_PAIR} (\d+(?:\.\d+)?)", text)
    if match is None:
        return f"{text!r} is not 'lat,lon radius'"
    return _pair_problem(match[1], match[2])


def polygon(text: str) -> str | None:
    pairs = text.split()
    if len(pairs) < 4:
        return f"{text!r}: a polygon needs at least four points"
    for pair in pairs:
        match = re.fullmatch(_PAIR, pair)
        if match is None:
            return f"{pair!r} is not 'lat,lon'"
        problem = _pair_problem(match[1], match[2])
        if problem:
            return problem
    return None if pairs[0] == pairs[-1] else f"{text!r}: first and last points differ"


def references(text: str) -> str | None:
    entries = text.split()
    if not entries:
        return "must name at least one message"
    for entry in entries:
        parts = entry.split(",")
        if len(parts) != 3:
            return f"{entry!r} is not sender,identifier,sent"
        problem = no_restricted(parts[0]) or no_restricted(parts[1]) or date_time(parts[2])
        if problem:
            return f"{entry!r}: {problem}"
    return None


def decimal(text: str) -> str | None:
    return None if re.fullmatch(_NUMBER, text) else f"{text!r} is not a decimal"


def integer(text: str) -> str | None:
    return None if re.fullmatch(r"\d+", text) else f"{text!r} is not an integer"


def any_uri(text: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:\S+", text) else f"{text!r} is no URI"


@dataclass(frozen=True)
class Element:
    """One element of a sequence: simple (``check``) or complex (``children``)."""

    name: str
    min: int = 1
    max: int | None = 1  # None: unbounded
    check: Check = any_text
    children: tuple[Element, ...] = ()


def pair(name: str, min_occurs: int = 0) -> Element:
    """eventCode, parameter, geocode: a valueName and a value."""
    return Element(
        name,
        min_occurs,
        None,
        children=(Element("valueName", check=non_empty), Element("value")),
    )


AREA: Final = (
    Element("areaDesc", check=non_empty),
    Element("polygon", 0, None, polygon),
    Element("circle", 0, None, circle),
    pair("geocode"),
    Element("altitude", 0, 1, decimal),
    Element("ceiling", 0, 1, decimal),
)
RESOURCE: Final = (
    Element("resourceDesc", check=non_empty),
    Element("mimeType", check=non_empty),
    Element("size", 0, 1, integer),
    Element("uri", 0, 1, any_uri),
    Element("derefUri", 0, 1),
    Element("digest", 0, 1),
)
INFO: Final = (
    Element("language", 0, 1, language),
    Element(
        "category",
        1,
        None,
        enumeration(
            "Geo",
            "Met",
            "Safety",
            "Security",
            "Rescue",
            "Fire",
            "Health",
            "Env",
            "Transport",
            "Infra",
            "CBRNE",
            "Other",
        ),
    ),
    Element("event", check=non_empty),
    Element(
        "responseType",
        0,
        None,
        enumeration(
            "Shelter",
            "Evacuate",
            "Prepare",
            "Execute",
            "Avoid",
            "Monitor",
            "Assess",
            "AllClear",
            "None",
        ),
    ),
    Element("urgency", check=enumeration("Immediate", "Expected", "Future", "Past", "Unknown")),
    Element("severity", check=enumeration("Extreme", "Severe", "Moderate", "Minor", "Unknown")),
    Element(
        "certainty", check=enumeration("Observed", "Likely", "Possible", "Unlikely", "Unknown")
    ),
    Element("audience", 0, 1),
    pair("eventCode"),
    Element("effective", 0, 1, date_time),
    Element("onset", 0, 1, date_time),
    Element("expires", 0, 1, date_time),
    Element("senderName", 0, 1),
    Element("headline", 0, 1),
    Element("description", 0, 1),
    Element("instruction", 0, 1),
    Element("web", 0, 1, any_uri),
    Element("contact", 0, 1),
    pair("parameter"),
    Element("resource", 0, None, children=RESOURCE),
    Element("area", 0, None, children=AREA),
)
ALERT: Final = (
    Element("identifier", check=no_restricted),
    Element("sender", check=no_restricted),
    Element("sent", check=date_time),
    Element("status", check=enumeration("Actual", "Exercise", "System", "Test", "Draft")),
    Element("msgType", check=enumeration("Alert", "Update", "Cancel", "Ack", "Error")),
    Element("source", 0, 1),
    Element("scope", check=enumeration("Public", "Restricted", "Private")),
    Element("restriction", 0, 1),
    Element("addresses", 0, 1),
    Element("code", 0, None),
    Element("note", 0, 1),
    Element("references", 0, 1, references),
    Element("incidents", 0, 1),
    Element("info", 0, None, children=INFO),
)


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def _sequence(
    parent: ET.Element, spec: tuple[Element, ...], path: str, errors: list[str], *, lax_end: bool
) -> None:
    """Match ``parent``'s children against ``spec`` in order (xs:sequence)."""
    position = 0
    counts = [0] * len(spec)
    for child in parent:
        namespace, name = _local(child.tag)
        if namespace != NS:
            if lax_end:  # <alert> ends with xs:any ##other (e.g. a ds:Signature)
                continue
            errors.append(f"{path}/{child.tag}: element outside the CAP namespace")
            continue
        index = next((i for i in range(position, len(spec)) if spec[i].name == name), None)
        if index is None:
            known = any(element.name == name for element in spec)
            errors.append(f"{path}/{name}: {'out of order' if known else 'not allowed here'}")
            continue
        position = index
        element = spec[position]
        counts[position] += 1
        if element.max is not None and counts[position] > element.max:
            errors.append(f"{path}/{name}: more than {element.max}")
        _element(child, element, f"{path}/{name}", errors)
    for element, count in zip(spec, counts, strict=True):
        if count < element.min:
            errors.append(f"{path}/{element.name}: required, missing")


def _element(node: ET.Element, element: Element, path: str, errors: list[str]) -> None:
    if node.attrib:
        errors.append(f"{path}: CAP elements carry no attributes, got {sorted(node.attrib)}")
    if element.children:
        if (node.text or "").strip():
            errors.append(f"{path}: text in a complex element")
        _sequence(node, element.children, path, errors, lax_end=False)
        return
    if len(node):
        errors.append(f"{path}: a simple element with children")
    problem = element.check(node.text or "")
    if problem:
        errors.append(f"{path}: {problem}")


def cap_errors(document: bytes) -> list[str]:
    """Every way ``document`` breaks CAP 1.2 (empty when it is a valid CAP 1.2 alert)."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        return [f"not well-formed XML: {exc}"]
    if root.tag != f"{{{NS}}}alert":
        return [f"the root is {root.tag}, not {{{NS}}}alert"]
    errors: list[str] = []
    if root.attrib:
        errors.append(f"alert: no attributes allowed, got {sorted(root.attrib)}")
    _sequence(root, ALERT, "alert", errors, lax_end=True)

    def text(name: str) -> str | None:
        found = root.find(f"{{{NS}}}{name}")
        return None if found is None else (found.text or "")

    scope = text("scope")
    if scope == "Restricted" and text("restriction") is None:
        errors.append("alert/restriction: required when scope is Restricted")
    if scope == "Private" and text("addresses") is None:
        errors.append("alert/addresses: required when scope is Private")
    if text("msgType") in ("Update", "Cancel", "Ack", "Error") and text("references") is None:
        errors.append(f"alert/references: required for msgType {text('msgType')}")
    return errors


def assert_valid_cap(document: bytes) -> ET.Element:
    """The parsed document; AssertionError listing every violation of CAP 1.2."""
    errors = cap_errors(document)
    assert not errors, "not valid CAP 1.2:\n  " + "\n  ".join(errors)
    return ET.fromstring(document)
