"""A node no stranger can knock over: stalled connections, connection caps, malformed requests.

The stranger's connections come from 127.0.0.2 (all of 127/8 is this host's loopback on Linux), the
farm's from 127.0.0.1, so the per-source cap can be seen working.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp import web

from farm.engines.installed import default_registry
from node.app import create_app
from node.config import NodeConfig
from node.guard import UPLOADS, ConnectionBook, GuardedSite, Limits, OncePerMinute, UploadPace
from tests.node.helpers import SIGNED, TOKEN, auth_header, png, sha, start_node, stop_node, unverified

STRANGER = "127.0.0.2"
PARTIAL_HEAD = b"GET /v1/health HTTP/1.1\r\nHost: node\r\nX-Slow: "  # never finished


def stalled(url: str, count: int) -> list[socket.socket]:
    """``count`` connections from the stranger that send half a request head (or of a TLS handshake
    record, to an https node) and then nothing."""
    parts = urlsplit(url)
    host, port = parts.hostname, parts.port
    partial = b"\x16\x03\x01" if parts.scheme == "https" else PARTIAL_HEAD
    socks = []
    for _ in range(count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((STRANGER, 0))
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect((host, port))
        socks.append(s)
    for s in socks:
        with contextlib.suppress(OSError):
            s.setblocking(True)
            s.settimeout(2)
            s.sendall(partial)
    return socks


def closed_by_peer(s: socket.socket, timeout: float) -> bool:
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


@contextlib.asynccontextmanager
async def guarded_node(limits: Limits, pace: UploadPace | None = None) -> AsyncIterator[tuple[str, GuardedSite]]:
    config = NodeConfig(host="127.0.0.1", port=0, name="n", slots=1, advertise=False, shutdown_grace=0.5)
    app = create_app(config, registry=default_registry(simulate=True), token=TOKEN, node_id="guarded")
    if pace is not None:
        app[UPLOADS] = pace
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = GuardedSite(runner, sock, limits=limits)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", site
    finally:
        await runner.cleanup()
        sock.close()


async def test_a_stranger_gets_only_its_share_of_connections_and_idle_ones_are_closed() -> None:
    async with guarded_node(Limits(max_connections=40, max_per_source=10, idle_timeout=0.5)) as (url, site):
        socks = await asyncio.to_thread(stalled, url, 30)
        try:
            async with asyncio.timeout(5):
                while site.book.refused < 20:
                    await asyncio.sleep(0.02)
            assert site.book.by_source[STRANGER] == 10 and site.book.refused == 20
            async with aiohttp.ClientSession(connector=unverified()) as http, http.get(f"{url}/v1/health") as resp:
                assert resp.status == 200  # the farm's own address still gets in
            closed = await asyncio.to_thread(lambda: [closed_by_peer(s, 5.0) for s in socks])
            assert all(closed), f"{closed.count(False)} stalled connections were left open"
            async with asyncio.timeout(5):
                while site.book.by_source.get(STRANGER):
                    await asyncio.sleep(0.02)
        finally:
            for s in socks:
                s.close()


async def test_a_malformed_request_never_echoes_its_headers(caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cret-" + "x" * 9000  # longer than a header line may be: the parser refuses it
    async with guarded_node(Limits()) as (url, _site):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with caplog.at_level(logging.DEBUG):
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(f"GET /v1/info HTTP/1.1\r\nHost: n\r\nAuthorization: Bearer {secret}\r\n\r\n".encode())
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400" and b"malformed HTTP request" in body
    assert b"s3cret" not in answer
    assert not any("s3cret" in r.getMessage() or r.exc_info for r in caplog.records)


def test_repeated_errors_are_logged_once_a_minute() -> None:
    records = [
        logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource", None, None)
        for _ in range(1000)
    ]
    once = OncePerMinute()
    kept = [r for r in records if once.filter(r)]
    assert len(kept) == 1
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "another message", None, None)
    assert once.filter(other)


def test_the_book_counts_each_source_apart() -> None:
    book = ConnectionBook(Limits(max_connections=3, max_per_source=2))
    assert book.admit("a") and book.admit("a") and not book.admit("a")  # a's share
    assert book.admit("b") and not book.admit("c")  # the total
    book.release("a")
    assert book.admit("c") and book.refused == 2


@pytest.fixture
def many_files() -> Iterator[None]:
    """Room for this test's own 2,000 sockets (root, as in CI, may raise the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 6000
    if hard != resource.RLIM_INFINITY and hard < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def start_node_with_a_small_file_limit(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real node started the way many PCs start it: a soft open-file limit of 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # the child inherits it
    try:
        return start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def test_two_thousand_stalled_connections_do_not_stop_a_real_node(tmp_path: Path, many_files: None) -> None:
    proc, url = start_node_with_a_small_file_limit(tmp_path / "home")
    socks: list[socket.socket] = []
    try:
        socks = await asyncio.to_thread(stalled, url, 2000)
        timeout = aiohttp.ClientTimeout(total=10)  # a bound, not a measurement: a stalled node never answers
        async with aiohttp.ClientSession(url, connector=unverified(), middlewares=SIGNED, timeout=timeout) as http:
            async with http.get("/v1/health") as resp:
                assert resp.status == 200
            image = png(seed=7)
            async with http.put(f"/v1/blobs/{sha(image)}", data=image) as resp:
                assert resp.status in (200, 201)
            async with http.head(f"/v1/blobs/{sha(image)}") as resp:
                assert resp.status == 200
    finally:
        for s in socks:
            s.close()
        code, err = stop_node(proc)
    assert code == 0, err[-2000:]
    assert len(err) < 20_000, f"the node logged {len(err)} bytes while stalled:\n{err[-2000:]}"
    assert TOKEN not in err


async def test_an_upload_the_client_aborts_is_a_client_event_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    body = png(512, 512, seed=11)
    async with guarded_node(Limits()) as (url, site):
        host, port = url.removeprefix("http://").rsplit(":", 1)
        with caplog.at_level(logging.DEBUG):
            _reader, writer = await asyncio.open_connection(host, int(port))
            head = (
                f"PUT /v1/blobs/{sha(body)} HTTP/1.1\r\nHost: n\r\n"
                f"Authorization: {auth_header('PUT', f'/v1/blobs/{sha(body)}', sha(body))}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode() + body[: len(body) // 3])
            await writer.drain()
            await asyncio.sleep(0.2)
            writer.transport.abort()  # the client goes away mid-body
            async with asyncio.timeout(5):
                while site.book.total:
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors, [r.getMessage() for r in errors]
    assert any("aborted" in r.getMessage() for r in caplog.records)


async def test_a_trickling_upload_is_cut_off_and_a_stalled_one_too() -> None:
    """A stranger with the token cannot hold an upload open for hours: below the pace it is refused
    (408) and nothing is stored. The pace is shortened here so the test takes seconds."""
    body = png(256, 256, seed=12)
    for pace, trickle in (
        (UploadPace(min_rate=64 * 1024, grace=0.5, stall=5.0), 0.05),
        (UploadPace(min_rate=1.0, grace=60.0, stall=0.5), 2.0),
    ):
        async with guarded_node(Limits(), pace) as (url, _site):
            host, port = url.removeprefix("http://").rsplit(":", 1)
            reader, writer = await asyncio.open_connection(host, int(port))
            head = (
                f"PUT /v1/blobs/{sha(body)} HTTP/1.1\r\nHost: n\r\n"
                f"Authorization: {auth_header('PUT', f'/v1/blobs/{sha(body)}', sha(body))}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            writer.write(head.encode())
            answer = b""
            async with asyncio.timeout(20):
                for start in range(0, len(body), 64):
                    writer.write(body[start : start + 64])
                    with contextlib.suppress(ConnectionError):
                        await writer.drain()
                    try:
                        answer = await asyncio.wait_for(reader.read(4096), trickle)
                    except TimeoutError:
                        continue
                    break
            writer.close()
            assert answer.split(b" ")[1] == b"408", answer[:200]
            assert b"too slow" in answer or b"stalled" in answer
            async with (
                aiohttp.ClientSession(url, connector=unverified(), middlewares=SIGNED) as http,
                http.head(f"/v1/blobs/{sha(body)}") as resp,
            ):
                assert resp.status == 404, "a cut-off upload was stored"
