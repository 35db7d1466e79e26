"""The latency baseline of DESIGN §8: a bare echo responder in place of alertnet.

The budget says press → "received" ack p99 ≤ echo p99 + 20 ms, so the bench needs the echo's
p99 measured through the same broker, at the same background load, in the same run. This
module is that echo: a process that subscribes to ``alertnet/v1/up/+`` and, for every frame
that is not a heartbeat, publishes the device's "received" ack at once — nothing stored,
nothing checked but the frame's layout. The ack carries the real MIC (the bench hands over the
fleet's keys in a file, ``eui key-hex`` per line), so the unchanged simulator accepts it as it
would alertnet's, binary for binary senders and JSON for JSON ones.

``python -m bench.echo --mqtt URL --keys FILE`` prints ``ready`` once subscribed and, when
stopped (SIGTERM or SIGINT), one JSON line of counts. ``EchoResponder`` runs it for the bench.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt

from alertnet.protocol import (
    UP_SUBSCRIPTION,
    AckState,
    DecodeError,
    Downlink,
    EventCode,
    decode_uplink_any,
    down_topic,
)
from bench.harness import process_memory

_ROOT = Path(__file__).resolve().parent.parent
READY = "ready"


def write_keys(path: Path, keys: dict[str, bytes]) -> None:
    """The file ``--keys`` reads: one ``eui key-hex`` line per device."""
    path.write_text("".join(f"{eui} {key.hex()}\n" for eui, key in keys.items()))


def read_keys(path: Path) -> dict[str, bytes]:
    keys: dict[str, bytes] = {}
    for line in path.read_text().splitlines():
        eui, _, key = line.partition(" ")
        if eui:
            keys[eui] = bytes.fromhex(key)
    return keys


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


async def respond(mqtt_url: str, keys: dict[str, bytes]) -> dict[str, int]:
    """Answer every alarm frame with its "received" ack until cancelled; returns the counts."""
    counts = {"received": 0, "replied": 0, "heartbeats": 0, "undecodable": 0, "unknown": 0}
    host, port = _address(mqtt_url)
    client = aiomqtt.Client(host, port, identifier=f"bench-echo-{os.getpid()}", clean_session=True)
    client.pending_calls_threshold = 1_000_000  # replies in flight under load: by design
    replies: set[asyncio.Task[None]] = set()
    try:
        async with client:
            await client.subscribe(UP_SUBSCRIPTION, qos=1)
            print(READY, flush=True)
            async for message in client.messages:
                counts["received"] += 1
                payload = message.payload if isinstance(message.payload, bytes) else b""
                try:
                    uplink, wire_format = decode_uplink_any(payload)
                except DecodeError:
                    counts["undecodable"] += 1
                    continue
                if uplink.event is EventCode.HEARTBEAT:
                    counts["heartbeats"] += 1
                    continue
                key = keys.get(uplink.eui)
                if key is None:
                    counts["unknown"] += 1
                    continue
                ack = Downlink.build(key, uplink.eui, uplink.counter, AckState.RECEIVED)
                # Not awaited here: the next uplink is read while this PUBACK is on its way.
                reply = asyncio.create_task(
                    client.publish(down_topic(uplink.eui), ack.encode(wire_format), qos=1)
                )
                replies.add(reply)
                reply.add_done_callback(replies.discard)
                counts["replied"] += 1
    except asyncio.CancelledError:
        pass
    return counts


async def _main(args: argparse.Namespace) -> None:
    task = asyncio.create_task(respond(args.mqtt, read_keys(args.keys)))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    counts = await task
    print(json.dumps(counts), flush=True)


class EchoResponder:
    """``bench/echo.py`` as a subprocess: ``start()`` returns once it is subscribed,
    ``stop()`` returns its counts."""

    def __init__(self, mqtt_url: str, keys_path: Path) -> None:
        self.mqtt_url = mqtt_url
        self.keys_path = keys_path
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def memory(self) -> list[dict[str, Any]]:
        """The echo's own VmRSS and VmHWM, for comparison with alertnet's processes."""
        if self.process is None:
            return []
        return [{"process": "echo", "pid": self.process.pid, **process_memory(self.process.pid)}]

    async def start(self, timeout_s: float = 30.0) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.echo",
            "--mqtt",
            self.mqtt_url,
            "--keys",
            str(self.keys_path),
            stdout=asyncio.subprocess.PIPE,
            cwd=_ROOT,
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if line.decode().strip() != READY:
            raise RuntimeError(f"the echo responder did not start (it said {line!r})")

    async def stop(self) -> dict[str, Any]:
        if self.process is None or self.process.returncode is not None:
            return {}
        self.process.send_signal(signal.SIGTERM)
        assert self.process.stdout is not None
        output, _ = await asyncio.wait_for(self.process.communicate(), 30)
        self.process = None
        with contextlib.suppress(ValueError, IndexError):
            counts: dict[str, Any] = json.loads(output.decode().strip().splitlines()[-1])
            return counts
        return {}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--mqtt", required=True, help="the broker, mqtt://host:port")
    parser.add_argument("--keys", type=Path, required=True, help="eui key-hex per line")
    asyncio.run(_main(parser.parse_args()))
