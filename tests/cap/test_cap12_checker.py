"""The CAP 1.2 checker itself: the standard's own example passes, and each rule catches what
it is there for (a checker that accepts everything would prove nothing about alertnet)."""

from __future__ import annotations

import pytest

from tests.cap.cap12 import assert_valid_cap, cap_errors

# CAP v1.2 Appendix A.1, "Homeland Security Advisory System Alert".
STANDARD_EXAMPLE = b"""<?xml version = "1.0" encoding = "UTF-8"?>
<alert xmlns = "urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>43b080713727</identifier>
  <sender>hsas@dhs.gov</sender>
  <sent>2003-04-02T14:39:01-05:00</sent>
  <status>Actual</status>
  <msgType>Alert</msgType>
  <scope>Public</scope>
  <info>
    <category>Security</category>
    <event>Homeland Security Advisory System Update</event>
    <urgency>Immediate</urgency>
    <severity>Severe</severity>
    <certainty>Likely</certainty>
    <senderName>U.S. Government, Department of Homeland Security</senderName>
    <headline>Homeland Security Sets Code ORANGE</headline>
    <description>The Department of Homeland Security has elevated the Homeland Security
    Advisory System threat level to ORANGE / High in response to intelligence which may
    indicate a heightened threat of terrorism.</description>
    <instruction> A High Condition is declared when there is a high risk of terrorist
    attacks.</instruction>
    <web>http://www.dhs.gov/dhspublic/display?theme=29</web>
    <parameter>
      <valueName>HSAS</valueName>
      <value>ORANGE</value>
    </parameter>
    <resource>
      <resourceDesc>Image file (GIF)</resourceDesc>
      <mimeType>image/gif</mimeType>
      <uri>http://www.dhs.gov/dhspublic/getAdvisoryImage</uri>
    </resource>
    <area>
      <areaDesc>U.S. nationwide and interests worldwide</areaDesc>
    </area>
  </info>
</alert>
"""


def test_the_standards_example_is_valid() -> None:
    assert_valid_cap(STANDARD_EXAMPLE)


def _broken(old: bytes, new: bytes) -> bytes:
    assert old in STANDARD_EXAMPLE
    return STANDARD_EXAMPLE.replace(old, new, 1)


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        (_broken(b"<sender>hsas@dhs.gov</sender>", b""), "alert/sender: required"),
        (_broken(b"hsas@dhs.gov", b"hsas dhs"), "space, comma"),
        (_broken(b"43b080713727", b"43b0,80713727"), "space, comma"),
        (_broken(b"-05:00</sent>", b"Z</sent>"), "YYYY-MM-DD"),
        (_broken(b"14:39:01-05:00", b"14:39:01.5-05:00"), "YYYY-MM-DD"),
        (_broken(b"14:39:01-05:00", b"14:39:01+00:00"), "-00:00"),
        (_broken(b"2003-04-02T", b"2003-02-30T"), "real date"),
        (_broken(b"<status>Actual", b"<status>Real"), "not one of"),
        (_broken(b"<msgType>Alert", b"<msgType>Update"), "references: required"),
        (_broken(b"<scope>Public", b"<scope>Restricted"), "restriction: required"),
        (_broken(b"<scope>Public", b"<scope>Private"), "addresses: required"),
        (_broken(b"<category>Security", b"<category>Police"), "not one of"),
        (_broken(b"<urgency>Immediate</urgency>", b""), "urgency: required"),
        (_broken(b"<certainty>Likely", b"<certainty>Sure"), "not one of"),
        (
            _broken(b"<identifier>43b080713727</identifier>", b"").replace(
                b"<sent>", b"<identifier>43b080713727</identifier><sent>"
            ),
            "out of order",
        ),
        (_broken(b"<headline>", b"<colour>red</colour><headline>"), "not allowed here"),
        (
            _broken(b"<areaDesc>U.S.", b"<circle>41.3,69.2</circle><areaDesc>U.S."),
            "out of order",
        ),
        (
            _broken(b"worldwide</areaDesc>", b"worldwide</areaDesc><circle>41.3;69.2 1</circle>"),
            "lat,lon radius",
        ),
        (
            _broken(b"worldwide</areaDesc>", b"worldwide</areaDesc><circle>141.3,69.2 1</circle>"),
            "WGS 84",
        ),
        (
            _broken(b"worldwide</areaDesc>", b"worldwide</areaDesc><polygon>1,1 2,2 1,1</polygon>"),
            "four points",
        ),
        (_broken(b"<status>", b'<status lang="en">'), "no attributes"),
        (b"<alert xmlns='urn:oasis:names:tc:emergency:cap:1.1'/>", "the root is"),
        (b"<alert", "not well-formed"),
    ],
)
def test_each_rule_catches_its_violation(document: bytes, complaint: str) -> None:
    errors = cap_errors(document)
    assert any(complaint in error for error in errors), errors


def test_references_must_be_sender_identifier_sent_triples() -> None:
    update = _broken(b"<msgType>Alert</msgType>", b"<msgType>Update</msgType>")
    good = update.replace(
        b"<scope>Public</scope>",
        b"<scope>Public</scope><references>hsas@dhs.gov,43b080713726,"
        b"2003-04-02T14:39:01-05:00</references>",
    )
    assert cap_errors(good) == []
    bad = good.replace(b",2003-04-02T14:39:01-05:00", b"")
    assert any("sender,identifier,sent" in error for error in cap_errors(bad))
