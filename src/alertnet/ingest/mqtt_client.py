"""The one place that reaches into aiomqtt's private paho client, for manual acknowledgements.

aiomqtt 2.5 acknowledges a QoS 1 message as soon as it arrives; alertnet must acknowledge only
after the message is committed (DESIGN §6.1). paho, underneath, supports manual acks: this
module turns them on and exposes ``ack()``. aiomqtt is pinned ``>=2.5,<3`` for that reason and
``tests/ingest/test_mqtt_client.py`` checks the behaviour against a real Mosquitto.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode

from alertnet.errors import InvalidInput

# aiomqtt logs a warning per publish past this many in flight; downlinks go out in bursts.
_PENDING_CALLS_WARNING = 100_000


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://user:pass@host:1883`` (``tcp://`` accepted too)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise InvalidInput(f"not an MQTT URL: {url!r} (expected mqtt://user:pass@host:1883)")
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def manual_ack_client(
    address: BrokerAddress, client_id: str, *, will: aiomqtt.Will | None = None
) -> aiomqtt.Client:
    """A client with a fixed id and a persistent session whose messages are acked by ``ack()``.

    The broker keeps the session (subscriptions and unacknowledged messages) across
    disconnects and redelivers what was never acknowledged. Never pass
    ``max_queued_incoming_messages``: a bounded queue drops messages silently when full.
    """
    client = aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=client_id,
        clean_session=False,
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=30,
        will=will,
    )
    client._client.manual_ack_set(True)
    client.pending_calls_threshold = _PENDING_CALLS_WARNING
    return client


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> bool:
    """Send the PUBACK for ``message``; False when the connection is gone (it will redeliver)."""
    if message.qos == 0:
        return True
    result = client._client.ack(message.mid, message.qos)
    return bool(result == MQTTErrorCode.MQTT_ERR_SUCCESS)
