"""The broker never holds an alarm back behind heartbeats waiting for their commit.

alertnet PUBACKs a message only after its commit, so every message on its way to a commit
counts against the broker's window of unacknowledged messages per client. Past the window
Mosquitto queues the rest, first in first out, and an alarm waits there behind every heartbeat
before it. Here an alarm published after more heartbeats than the old window (1,000) is still
delivered while none of them is acknowledged: for a lone process (MQTT 3.1.1, the broker's
``max_inflight_messages``) and for a shared-subscription member (MQTT 5, Receive Maximum).
"""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from alertnet.broker.mosquitto import MAX_INFLIGHT_MESSAGES
from alertnet.ingest import mqtt_client
from alertnet.protocol import UP_SUBSCRIPTION, up_topic
from tests.support.mosquitto import MosquittoServer

pytestmark = pytest.mark.mosquitto

EUI = "70b3d57ed0001234"
HEARTBEATS = 1_500
#: Bounds a hang only.
DELIVERY_TIMEOUT_S = 30.0


def test_the_window_is_the_same_for_both_protocol_versions() -> None:
    assert mqtt_client.RECEIVE_MAXIMUM == MAX_INFLIGHT_MESSAGES == 65_535


@pytest.mark.parametrize(
    ("shared_session_expiry_s", "subscription"),
    [
        pytest.param(None, UP_SUBSCRIPTION, id="alone-mqtt311"),
        pytest.param(0, f"$share/alertnet/{UP_SUBSCRIPTION}", id="shared-mqtt5"),
    ],
)
async def test_an_alarm_behind_unacknowledged_heartbeats_is_delivered(
    mosquitto: MosquittoServer, shared_session_expiry_s: int | None, subscription: str
) -> None:
    login = mosquitto.alertnet_login(mqtt_client.MqttPurpose.INGEST)
    ingest = mqtt_client.manual_ack_client(
        mqtt_client.BrokerAddress.parse(login.url),
        login.client_id,
        shared_session_expiry_s=shared_session_expiry_s,
    )
    async with ingest, mosquitto.harness_client("publisher") as publisher:
        await ingest.subscribe(subscription, qos=1)
        for n in range(HEARTBEATS):
            await publisher.publish(up_topic(EUI), f"heartbeat-{n}".encode(), qos=1)
        await publisher.publish(up_topic(EUI), b"alarm", qos=1)

        async def until_the_alarm() -> int:
            held = 0
            async for message in ingest.messages:  # none is acknowledged
                if message.payload == b"alarm":
                    return held
                held += 1
            raise aiomqtt.MqttError("disconnected")

        held = await asyncio.wait_for(until_the_alarm(), DELIVERY_TIMEOUT_S)
    assert held == HEARTBEATS
