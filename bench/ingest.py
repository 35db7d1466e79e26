"""Quick ingest benchmark: how fast one alertnet process turns MQTT uplinks into commits.

Starts the project's Mosquitto on a free loopback port and an in-process alertnet runtime on a
fresh PostgreSQL database (or the SQLite file given), registers devices, then a separate
publisher process sends heartbeats from every device with presses interleaved. Reported:

- uplinks/s committed (dedup and persistence included), measured from the first to the last
  commit as seen by the runtime's metrics;
- the same publisher's rate into a bare aiomqtt subscriber that does nothing (the baseline);
- press → "received" downlink at the publisher, p50/p95/p99: a press is committed before its
  downlink is sent, so this bounds press → alert committed from above.

Usage: ``.venv/bin/python bench/ingest.py [--messages 40000] [--devices 2000] [--presses 200]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiomqtt
import asyncpg

from alertnet.app import Runtime
from alertnet.broker.mosquitto import Listener, write_config
from alertnet.config import Settings
from alertnet.db import create_engine, create_session_factory, migrate, unit_of_work
from alertnet.models import Device
from alertnet.protocol import EventCode, Uplink, decode_downlink, parse_topic, up_topic

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def device_key(index: int) -> bytes:
    return index.to_bytes(16, "big")


def device_eui(index: int) -> str:
    return f"70b3d57e{index:08x}"


# -- publisher (runs as its own process, like a real fleet would be elsewhere) --------------


async def publish(
    port: int, devices: int, messages: int, presses: int, out: Path, rate: float = 0.0
) -> None:
    """Publish ``messages`` uplinks as fast as QoS 1 allows; time each press's downlink."""
    press_every = max(1, messages // max(1, presses))
    frames: list[tuple[str, bytes, str | None]] = []
    counters = [0] * devices
    for n in range(messages):
        index = n % devices
        counters[index] += 1
        is_press = n % press_every == press_every // 2
        event = EventCode.PANIC if is_press else EventCode.HEARTBEAT
        eui = device_eui(index)
        frame = Uplink.build(device_key(index), eui, counters[index], event, battery=80)
        frames.append(
            (up_topic(eui), frame.to_bytes(), f"{eui}:{counters[index]}" if is_press else None)
        )
    sent_at: dict[str, float] = {}
    acked_at: dict[str, float] = {}
    client = aiomqtt.Client("127.0.0.1", port, identifier="bench-publisher")
    client.pending_calls_threshold = 100_000
    async with client:
        await client.subscribe("alertnet/v1/down/+", qos=1)

        async def listen() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                ack = decode_downlink(message.payload)
                acked_at.setdefault(
                    f"{parse_topic(str(message.topic)).ident}:{ack.counter}", time.monotonic()
                )

        listener = asyncio.create_task(listen())
        started = time.monotonic()
        window: list[asyncio.Task[None]] = []
        for n, (topic, payload, press_key) in enumerate(frames):
            if rate > 0:  # paced: message n leaves at started + n / rate
                delay_s = started + n / rate - time.monotonic()
                if delay_s > 0:
                    await asyncio.sleep(delay_s)
            if press_key:
                sent_at[press_key] = time.monotonic()
            window.append(asyncio.create_task(client.publish(topic, payload, qos=1)))
            if len(window) >= 500:
                await asyncio.gather(*window)
                window.clear()
        await asyncio.gather(*window)
        published_s = time.monotonic() - started
        deadline = time.monotonic() + 60
        while len(acked_at) < len(sent_at) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        listener.cancel()
    latencies_ms = sorted((acked_at[k] - sent_at[k]) * 1000 for k in sent_at if k in acked_at)
    out.write_text(
        json.dumps(
            {"published_s": published_s, "latencies_ms": latencies_ms, "presses": len(sent_at)}
        )
    )


async def bare_subscriber_rate(port: int, devices: int, messages: int) -> float:
    """Messages/s a do-nothing aiomqtt subscriber receives from the same publisher."""
    received = 0
    done = asyncio.Event()
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-bare") as client:
        await client.subscribe("alertnet/v1/up/+", qos=1)
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "publish",
            str(port),
            str(devices),
            str(messages),
            "0",
            os.devnull,
            "0",
        )
        first = last = 0.0

        async def count() -> None:
            nonlocal received, first, last
            async for _message in client.messages:
                received += 1
                now = time.monotonic()
                first = first or now
                last = now
                if received == messages:
                    done.set()
                    return

        counter = asyncio.create_task(count())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 120)
        counter.cancel()
        await publisher.wait()
    return received / (last - first) if last > first else 0.0


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(fraction * len(values)))]


async def main(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="alertnet-bench-"))
    port = free_port()
    conf = write_config(
        workdir / "mosquitto", listeners=[Listener("127.0.0.1", port)], accounts=None
    )
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
    db_name = f"alertnet_bench_{os.getpid()}"
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{db_name}"')
    db_url = args.db_url or f"postgresql+asyncpg://postgres@127.0.0.1:5432/{db_name}"
    try:
        time.sleep(0.5)
        baseline = await bare_subscriber_rate(port, args.devices, args.messages)
        await asyncio.to_thread(migrate, db_url)
        engine = create_engine(db_url)
        async with unit_of_work(create_session_factory(engine)) as session:
            session.add_all(
                Device(
                    eui=device_eui(i),
                    kind="panic_button",
                    lat=41.3,
                    lon=69.28,
                    key=device_key(i),
                    supervision_interval_s=900,
                )
                for i in range(args.devices)
            )
        await engine.dispose()
        runtime = Runtime(
            Settings(
                database_url=db_url,
                mqtt_url=f"mqtt://127.0.0.1:{port}",
                mqtt_client_id="alertnet-bench",
                log_level="WARNING",
            )
        )
        await runtime.start()
        await asyncio.wait_for(runtime.mqtt.connected.wait(), 10)
        result_path = workdir / "publisher.json"
        publisher = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "publish",
            str(port),
            str(args.devices),
            str(args.messages),
            str(args.presses),
            str(result_path),
            str(args.rate),
        )
        uplinks = runtime.metrics.uplinks
        first_commit = last_commit = 0.0
        deadline = time.monotonic() + 300
        total = 0.0
        while time.monotonic() < deadline:
            total = sum(
                sample.value
                for metric in uplinks.collect()
                for sample in metric.samples
                if sample.name.endswith("_total")
            )
            now = time.monotonic()
            if total and not first_commit:
                first_commit = now
            if total >= args.messages:
                last_commit = now
                break
            await asyncio.sleep(0.01)
        await publisher.wait()
        buckets = [
            (sample.labels["le"], sample.value)
            for metric in runtime.metrics.ingest_latency.collect()
            for sample in metric.samples
            if sample.name.endswith("_bucket")
        ]
        await runtime.stop()
        published = json.loads(result_path.read_text())
        latencies = published["latencies_ms"]
        rate = total / (last_commit - first_commit) if last_commit > first_commit else 0.0
        print(f"uplinks committed          {int(total)} / {args.messages}")
        print(f"ingest rate                {rate:,.0f} uplinks/s (PostgreSQL, dedup, persistence)")
        print(f"bare subscriber baseline   {baseline:,.0f} msgs/s  → ratio {rate / baseline:.0%}")
        print(
            "receipt → commit (cumulative count per bucket, s): "
            + ", ".join(f"≤{le}: {int(count)}" for le, count in buckets)
        )
        print(f"publisher send time        {published['published_s']:.2f} s")
        print(
            f"press → received downlink  n={len(latencies)}/{published['presses']}  "
            f"p50 {percentile(latencies, 0.5):.1f} ms  p95 {percentile(latencies, 0.95):.1f} ms  "
            f"p99 {percentile(latencies, 0.99):.1f} ms"
        )
    finally:
        broker.terminate()
        broker.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "publish":
        _cmd, port_arg, devices_arg, messages_arg, presses_arg, out_arg, rate_arg = sys.argv[1:8]
        asyncio.run(
            publish(
                int(port_arg),
                int(devices_arg),
                int(messages_arg),
                int(presses_arg),
                Path(out_arg),
                float(rate_arg),
            )
        )
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--messages", type=int, default=40_000)
        parser.add_argument("--devices", type=int, default=2_000)
        parser.add_argument("--presses", type=int, default=200)
        parser.add_argument("--rate", type=float, default=0.0, help="uplinks/s; 0 = flat out")
        parser.add_argument("--db-url", default="")
        asyncio.run(main(parser.parse_args()))
