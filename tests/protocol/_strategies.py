"""Hypothesis strategies shared by the protocol tests."""

from __future__ import annotations

import json

from hypothesis import settings
from hypothesis import strategies as st

from alertnet.protocol import (
    BATTERY_UNKNOWN,
    AckState,
    Downlink,
    EventCode,
    Uplink,
)

#: Property tests stay fast, deterministic in time and leave no example database behind.
PROPERTY = settings(database=None, deadline=None, max_examples=100)

KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
EUI = "70b3d57ed0001234"

keys = st.binary(min_size=16, max_size=16)
euis = st.integers(0, 2**64 - 1).map(lambda n: f"{n:016x}")
counters = st.integers(0, 2**32 - 1)
batteries = st.integers(0, 100) | st.just(BATTERY_UNKNOWN)


@st.composite
def signed_uplinks(draw: st.DrawFn) -> tuple[bytes, Uplink]:
    key = draw(keys)
    uplink = Uplink.build(
        key,
        draw(euis),
        draw(counters),
        draw(st.sampled_from(EventCode)),
        flags=draw(st.integers(0, 3)),
        battery=draw(batteries),
        age_s=draw(st.integers(0, 0xFFFF)),
    )
    return key, uplink


@st.composite
def signed_downlinks(draw: st.DrawFn) -> tuple[bytes, Downlink]:
    key = draw(keys)
    downlink = Downlink.build(key, draw(euis), draw(counters), draw(st.sampled_from(AckState)))
    return key, downlink


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def to_json_bytes(value: object) -> bytes:
    """Any JSON-ish value as bytes; NaN/Infinity come out as the non-standard tokens."""
    return json.dumps(value).encode()
