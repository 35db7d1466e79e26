"""Request bodies over their limit are refused with 413 before they are read (DESIGN §14).

In process: each path's limit, declared (``Content-Length``) and streamed (chunked). Against a
real ``alertnet serve`` process: 100 MB bodies, declared and chunked, to the uplink and the JSON
API, are answered 413 while the server's peak memory (``VmHWM``) stays within a few MB.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func
from sqlalchemy import select as sql_select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alertnet.models import Quarantine
from tests.edge.conftest import EdgeClient
from tests.edge.test_error_shape import assert_error_shape
from tests.support.asgi import NO_BROKER
from tests.support.mosquitto import free_port
from tests.support.polling import eventually

KiB = 1024
MiB = 1024 * KiB
CHUNK_BYTES = 64 * KiB
HUGE_BODY_BYTES = 100 * MiB
# What the server may grow by while refusing four 100 MB bodies: buffers, not bodies.
MAX_PEAK_GROWTH_BYTES = 8 * MiB


async def chunks(total_bytes: int, chunk_bytes: int = 1000) -> AsyncIterator[bytes]:
    """A body with no declared length: httpx sends it chunked."""
    sent = 0
    while sent < total_bytes:
        size = min(chunk_bytes, total_bytes - sent)
        sent += size
        yield b"x" * size


async def test_each_path_has_its_limit_declared_or_streamed(
    edge_client: EdgeClient, session_factory: async_sessionmaker[AsyncSession]
) -> None:
    async with edge_client() as client:
        at_limit = await client.post("/api/v1/uplinks", content=b"\x01" * 4096)
        assert_error_shape(at_limit, 422, "bad_length")  # read, judged and quarantined
        over = await client.post("/api/v1/uplinks", content=b"\x01" * 4097)
        body = assert_error_shape(over, 413, "payload_too_large")
        assert "4096 bytes" in body["detail"]
        streamed = await client.post("/api/v1/uplinks", content=chunks(5000))
        assert_error_shape(streamed, 413, "payload_too_large")
        # A trailing slash names the same endpoint and gets the same limit, not the API's.
        slashed = await client.post("/api/v1/uplinks/", content=b"\x01" * 4097)
        assert_error_shape(slashed, 413, "payload_too_large")
        api_at_limit = await client.post(
            "/api/v1/auth/login",
            content=b" " * (64 * KiB),
            headers={"content-type": "application/json"},
        )
        assert api_at_limit.status_code == 422  # read and found not to be a login
        api_over = await client.post("/api/v1/auth/login", content=chunks(64 * KiB + 1))
        assert_error_shape(api_over, 413, "payload_too_large")
        admin_over = await client.post("/api/v1/devices", content=b"{" * (64 * KiB + 1))
        assert_error_shape(admin_over, 413, "payload_too_large")
    async with session_factory() as session:
        quarantined = await session.scalar(sql_select(func.count()).select_from(Quarantine))
    assert quarantined == 1  # a refused body is never read, so there is nothing to keep


# --- against a real server process ---------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    sent_bytes: int


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set so far (Linux ``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * KiB
    raise RuntimeError("no VmHWM in /proc/<pid>/status")


def post_huge_body(port: int, path: str, total_bytes: int, *, chunked: bool) -> Answer:
    """POST ``total_bytes`` over a raw socket, stopping as soon as the server answers."""
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total_bytes}"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"{framing}\r\n\r\n"
    ).encode()
    payload = b"x" * CHUNK_BYTES
    chunk = f"{CHUNK_BYTES:x}\r\n".encode() + payload + b"\r\n" if chunked else payload
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head)
        try:
            while sent < total_bytes:
                readable, _, _ = select.select([sock], [], [], 0)
                if readable:
                    break  # the server answered before the body was done
                sock.sendall(chunk)
                sent += CHUNK_BYTES
            else:
                if chunked:
                    sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection after answering
        received = b""
        try:
            while data := sock.recv(65536):
                received += data
                if b"\r\n\r\n" in received and _complete(received):
                    break
        except ConnectionResetError:
            pass
    status_line, _, rest = received.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 "), received[:200]
    return Answer(int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2], sent)


def _complete(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@pytest_asyncio.fixture
async def server_process(sqlite_url: str, tmp_path: Path) -> AsyncIterator[tuple[int, int]]:
    """``alertnet serve`` on a free port: (pid, port)."""
    port = free_port()
    env = {
        **os.environ,
        "ALERTNET_DATABASE_URL": sqlite_url,
        "ALERTNET_MQTT_URL": NO_BROKER,
        "ALERTNET_LOG_LEVEL": "WARNING",
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "alertnet", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await _wait_until_serving(process, port, log_path)
        yield process.pid, port
    finally:
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 15)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


async def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    async with httpx.AsyncClient() as client:

        async def healthy() -> bool:
            if process.poll() is not None:
                raise RuntimeError("alertnet serve exited:\n" + log.read_text(errors="replace"))
            try:
                return (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(
            healthy,
            awaiting="alertnet serve to answer /healthz",
            timeout_s=60,
            interval_s=0.1,
            details=lambda: log.read_text(errors="replace"),
        )


def _huge_posts() -> Iterator[tuple[str, bool]]:
    for path in ("/api/v1/uplinks", "/api/v1/auth/login"):
        for chunked in (False, True):
            yield path, chunked


@pytest.mark.slow
async def test_huge_bodies_are_refused_without_the_server_growing(
    server_process: tuple[int, int],
) -> None:
    pid, port = server_process
    # Warm up both paths, so that the code they run is loaded before the baseline.
    for path, _ in _huge_posts():
        await asyncio.to_thread(post_huge_body, port, path, 1000, chunked=False)
    baseline = peak_rss_bytes(pid)
    answers = {
        (path, chunked): await asyncio.to_thread(
            post_huge_body, port, path, HUGE_BODY_BYTES, chunked=chunked
        )
        for path, chunked in _huge_posts()
    }
    growth = peak_rss_bytes(pid) - baseline
    print(f"\nserver peak RSS {baseline / MiB:.1f} MiB, +{growth / MiB:.1f} MiB after 4 x 100 MB")
    for (path, chunked), answer in answers.items():
        assert answer.status == 413, (path, chunked, answer)
        assert answer.sent_bytes < 16 * MiB, (path, chunked, answer.sent_bytes)
        assert json.loads(answer.body)["code"] == "payload_too_large", answer.body
    assert growth < MAX_PEAK_GROWTH_BYTES, f"peak RSS grew by {growth / MiB:.1f} MiB"
