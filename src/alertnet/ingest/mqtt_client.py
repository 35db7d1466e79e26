"""How alertnet reaches the broker: broker URLs, the login of each connection, manual acks.

Logins (DESIGN §14): the broker replaces every client id by the username
(``use_username_as_clientid``), so no client can take over another's session, and each MQTT
connection alertnet opens logs in with a username of its own, ``<user>-<purpose>-<n>``,
derived from the user in the URL (same password). ``mqtt_login`` derives it;
``alertnet broker config`` writes the same names into the broker's password file. A URL
without a user (the embedded trial broker) keeps the anonymous login and fixed client id.

Manual acks: aiomqtt 2.5 acknowledges a QoS 1 message as soon as it arrives; alertnet must
acknowledge only after the message is committed (DESIGN §6.1). paho, underneath, supports
manual acks (on MQTT 3.1.1 and 5 alike): this module is the one place that reaches into
aiomqtt's private paho client to turn them on and expose ``ack()``. aiomqtt is pinned
``>=2.5,<3`` for that reason and ``tests/ingest/test_mqtt_client.py`` checks the behaviour
against a real Mosquitto.

Sessions (DESIGN §6.1): a process subscribing alone keeps an MQTT 3.1.1 session that never
expires (``clean_session=False``), so after a restart the broker redelivers what it had not
acknowledged. A member of a shared subscription connects with MQTT 5, ``clean_start=False``
and a short session expiry (``ALERTNET_MQTT_SESSION_EXPIRY_S``, default 0): Mosquitto keeps
routing ``$share`` messages round-robin to a member whose session still exists, connected or
not, and drops them with the session when it expires (it never hands a dead member's messages
to another). Measured on Mosquitto 2.0.11, two members, one SIGKILLed, a message every 20 ms:
with expiry 0 no message published after the kill was lost; with 1 s, messages were lost for
1.3-1.8 s after it; with 2 s, for 2.1-2.5 s. A device's retries (1, 2, 4, 8 s) reach a survivor
at the first retry only with expiry 0. What was in flight to the dead member is lost either
way; the device retries it.

In-flight window: PUBACKs wait for commits, so every message between the broker and its
commit counts against the broker's window of unacknowledged messages per client; past it the
broker holds the rest in its FIFO queue, where an alarm waits behind every heartbeat before
it. The window is therefore the MQTT maximum, 65,535 (``RECEIVE_MAXIMUM``, sent as MQTT 5
Receive Maximum; ``alertnet broker config`` writes the same ``max_inflight_messages`` for
3.1.1 clients): whatever backlog alertnet has sits in its own lanes, where alarms overtake it.
At ~1.1 KB per message held, a full window costs a process about 72 MB.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiomqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alertnet.config import Settings
from alertnet.errors import InvalidInput
from alertnet.protocol import gateway_topic_id

_GATEWAY_PASSWORD_LABEL: Final = b"alertnet gateway mqtt password:"
_GATEWAY_PASSWORD_HEX_CHARS: Final = 32

# aiomqtt logs a warning per publish past this many in flight; downlinks go out in bursts.
_PENDING_CALLS_WARNING = 100_000

#: Unacknowledged messages the broker may have in flight to one ingest connection: the
#: protocol's maximum (packet identifiers are 16 bits). See the module docstring.
RECEIVE_MAXIMUM: Final = 65_535
#: The session expiry of a shared-subscription member (``ALERTNET_MQTT_SESSION_EXPIRY_S``).
SHARED_SESSION_EXPIRY_S: Final = 0


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


class MqttPurpose(StrEnum):
    """Why alertnet opens an MQTT connection: one broker username per purpose and process."""

    INGEST = "ingest"
    DOWNLINKS = "downlinks"
    CHIRPSTACK = "chirpstack"
    FRIGATE = "frigate"


@dataclass(frozen=True, slots=True)
class MqttLogin:
    """How one connection logs in: ``url`` carries ``username`` and ``password``.

    ``client_id`` equals ``username`` when there is one (the broker enforces that anyway).
    """

    url: str
    username: str | None
    password: str | None
    client_id: str


def alertnet_username(user: str, purpose: MqttPurpose, process: int) -> str:
    """``<user>-<purpose>-<n>``: the broker username of one of alertnet's connections."""
    return f"{user}-{purpose.value}-{process}"


def mqtt_login(settings: Settings, purpose: MqttPurpose, url: str) -> MqttLogin:
    """The login of this process's ``purpose`` connection to the broker at ``url``.

    ``url`` is ``settings.mqtt_url`` (or the embedded broker's, or an adapter's own broker).
    With a user in it, the connection logs in as ``<user>-<purpose>-<ALERTNET_MQTT_PROCESS>``
    with the URL's password. Without one, it stays anonymous with a fixed client id, as the
    embedded trial broker and any broker that allows anonymous clients expect.
    """
    address = BrokerAddress.parse(url)
    if address.username is None:
        anonymous_id = settings.mqtt_client_id
        if purpose is not MqttPurpose.INGEST:
            anonymous_id = f"{anonymous_id}-{purpose.value}"
        return MqttLogin(url, None, address.password, anonymous_id)
    username = alertnet_username(address.username, purpose, settings.mqtt_process)
    return MqttLogin(
        _with_login(url, username, address.password), username, address.password, username
    )


def gateway_mqtt_password(alertnet_password: str, gateway_id: str) -> str:
    """The broker password of an MQTT LoRa gateway, derived from alertnet's own password.

    Derived rather than stored: ``alertnet broker config`` writes the same one on every run,
    and a relay started with alertnet's URL can compute it.
    """
    message = _GATEWAY_PASSWORD_LABEL + gateway_topic_id(gateway_id).encode("utf-8")
    digest = hmac.new(alertnet_password.encode("utf-8"), message, hashlib.sha256).hexdigest()
    return digest[:_GATEWAY_PASSWORD_HEX_CHARS]


def gateway_login(url: str, gateway_id: str) -> MqttLogin:
    """How ``alertnet gateway --id gateway_id`` logs in: as the gateway itself (DESIGN §14).

    The gateway's username is its topic id. A URL naming that user carries the gateway's own
    password (a relay on a remote box, given only its own credentials); a URL naming another
    user is alertnet's, and the gateway's password is derived from it. Without a user the
    relay stays anonymous, client id ``alertnet-gw-<id>``.
    """
    address = BrokerAddress.parse(url)
    topic_id = gateway_topic_id(gateway_id)
    if address.username is None:
        return MqttLogin(url, None, address.password, f"alertnet-gw-{topic_id}")
    if address.username == topic_id or address.password is None:
        return MqttLogin(url, address.username, address.password, address.username)
    password = gateway_mqtt_password(address.password, topic_id)
    return MqttLogin(_with_login(url, topic_id, password), topic_id, password, topic_id)


def _with_login(url: str, username: str, password: str | None) -> str:
    parts = urlsplit(url)
    host_port = parts.netloc.rpartition("@")[2]
    login = quote(username, safe="")
    if password is not None:
        login += ":" + quote(password, safe="")
    return urlunsplit(parts._replace(netloc=f"{login}@{host_port}"))


#: Seconds between keepalive pings (a silent connection is dropped after half as long again).
KEEPALIVE_S: Final = 30


def broker_client(
    address: BrokerAddress, client_id: str, *, clean_session: bool, will: aiomqtt.Will | None = None
) -> aiomqtt.Client:
    """An MQTT 3.1.1 client of one of alertnet's connections, logged in as ``address`` says.

    ``clean_session=False`` keeps the session (subscriptions, unacknowledged messages) across
    disconnects; True starts afresh each time (a connection that only publishes).
    """
    return aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=client_id,
        clean_session=clean_session,
        protocol=aiomqtt.ProtocolVersion.V311,
        keepalive=KEEPALIVE_S,
        will=will,
    )


def manual_ack_client(
    address: BrokerAddress,
    client_id: str,
    *,
    shared_session_expiry_s: int | None = None,
    will: aiomqtt.Will | None = None,
) -> aiomqtt.Client:
    """A client with a fixed id and a kept session whose messages are acked by ``ack()``.

    ``shared_session_expiry_s`` None: MQTT 3.1.1, a session that never expires (a process
    subscribing alone). A number: MQTT 5, ``clean_start=False``, a session that ends that many
    seconds after the connection does (a member of a shared subscription). Never pass
    ``max_queued_incoming_messages``: a bounded queue drops messages silently when full.
    """
    if shared_session_expiry_s is None:
        client = broker_client(address, client_id, clean_session=False, will=will)
    else:
        connect = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho
        connect.SessionExpiryInterval = shared_session_expiry_s
        connect.ReceiveMaximum = RECEIVE_MAXIMUM
        client = aiomqtt.Client(
            address.host,
            address.port,
            username=address.username,
            password=address.password,
            identifier=client_id,
            clean_start=False,
            properties=connect,
            protocol=aiomqtt.ProtocolVersion.V5,
            keepalive=KEEPALIVE_S,
            will=will,
        )
    client._client.manual_ack_set(True)
    client.pending_calls_threshold = _PENDING_CALLS_WARNING
    return client


@dataclass(frozen=True, slots=True)
class Received:
    """A message waiting for its commit (``done``) before its PUBACK."""

    message: aiomqtt.Message
    done: asyncio.Future[Any]


#: Downlinks published together: one burst waits for its PUBACKs before the next.
DOWNLINK_BURST: Final = 200


async def serve_session(
    client: aiomqtt.Client,
    submit: Callable[[aiomqtt.Message], Received],
    outbox: asyncio.Queue[tuple[str, bytes]],
) -> None:
    """Until the connection fails: each message goes to ``submit`` at once and is PUBACKed
    after its ``done`` resolves, in the order the broker sent them (DESIGN §6.1); downlinks
    queued on ``outbox`` are published in bursts. Never returns normally."""
    in_order: asyncio.Queue[Received] = asyncio.Queue()
    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(_ack_in_order(client, in_order))
        tasks.create_task(_publish(client, outbox))
        async for message in client.messages:
            in_order.put_nowait(submit(message))
        raise aiomqtt.MqttError("message stream ended")


async def _ack_in_order(client: aiomqtt.Client, in_order: asyncio.Queue[Received]) -> None:
    while True:
        received = await in_order.get()
        await asyncio.shield(received.done)
        if not ack(client, received.message):
            raise aiomqtt.MqttError("PUBACK could not be sent")


async def _publish(client: aiomqtt.Client, outbox: asyncio.Queue[tuple[str, bytes]]) -> None:
    while True:
        burst = [await outbox.get()]
        while len(burst) < DOWNLINK_BURST and not outbox.empty():
            burst.append(outbox.get_nowait())
        await asyncio.gather(*(client.publish(topic, payload, qos=1) for topic, payload in burst))


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> bool:
    """Send the PUBACK for ``message``; False when the connection is gone (it will redeliver)."""
    if message.qos == 0:
        return True
    result = client._client.ack(message.mid, message.qos)
    return bool(result == MQTTErrorCode.MQTT_ERR_SUCCESS)
