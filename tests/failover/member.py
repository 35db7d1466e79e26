"""A shared-subscription member in its own process, for a test to SIGKILL.

``python -m tests.failover.member URL CLIENT_ID GROUP EXPIRY_S`` connects exactly as an
alertnet ingest in a share group does (``mqtt_client.manual_ack_client``), subscribes to the
shared uplink topic, prints ``ready``, then prints each payload it receives and never
acknowledges one, like a process that dies before its commits.
"""

from __future__ import annotations

import asyncio
import sys

from alertnet.ingest import mqtt_client
from alertnet.protocol import UP_SUBSCRIPTION


async def main(url: str, client_id: str, group: str, expiry_s: int) -> None:
    address = mqtt_client.BrokerAddress.parse(url)
    client = mqtt_client.manual_ack_client(address, client_id, shared_session_expiry_s=expiry_s)
    async with client:
        await client.subscribe(f"$share/{group}/{UP_SUBSCRIPTION}", qos=1)
        print("ready", flush=True)
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else b""
            print(payload.decode(), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
