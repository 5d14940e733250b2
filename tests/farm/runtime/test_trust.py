"""Pinned node identities against real node apps over https on 127.0.0.1: pinned on first contact after a
proof of the token; a new certificate, a man in the middle and a node without the token are refused."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import ssl
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from farm import EditSpec, Farm, FarmSettings, JobState
from farm.core.address import Address
from farm.core.nodetable import NodeState
from farm.core.protocol import PROTOCOL_VERSION
from farm.local.pins import load_pins, pins_path
from farm.runtime.client import NodeClient
from farm.runtime.trust import Trust
from node.tls import load_or_create_certificate
from tests.conftest import REPO
from tests.farm.runtime.test_discovery import node
from tests.node.helpers import TOKEN


def inputs(folder: Path, names: tuple[str, ...] = ("dusk.png",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    samples = REPO / "resources" / "samples"
    for name in names:
        (folder / name).write_bytes((samples / name).read_bytes())
        (folder / name.replace(".png", "_mask.png")).write_bytes((samples / "masks" / name).read_bytes())
    return folder


def settings(*peers: Address) -> FarmSettings:
    return FarmSettings(token=TOKEN, use_local=False, mdns=False, peers=peers, heartbeat_interval=0.1)


async def state_of(farm: Farm, node_id: str, want: NodeState, timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            record = next((r for r in farm.nodes() if r.id == node_id), None)
            if record is not None and record.state is want:
                return record
            await asyncio.sleep(0.05)


async def test_a_tls_node_is_pinned_on_first_contact_and_does_the_work(tmp_path: Path) -> None:
    async with node("n1", "gpu-box") as (_, address), Farm.open(settings(address)) as farm:
        assert address.url.startswith("https://")
        await farm.wait_for_nodes(5.0)
        record = await state_of(farm, "n1", NodeState.ONLINE)
        batch = await farm.submit_paths([inputs(tmp_path / "in")], None, EditSpec(), tmp_path / "out")
        await farm.wait()
    assert [j.state for j in batch.jobs] == [JobState.DONE]
    fingerprint = load_or_create_certificate().fingerprint
    assert record.info.tls and record.info.fingerprint == fingerprint
    pins = load_pins()
    assert pins["n1"].fingerprint == fingerprint and pins["n1"].name == "gpu-box"
    assert stat.S_IMODE(os.stat(pins_path()).st_mode) == 0o600  # private, like the token


async def test_a_new_certificate_is_refused_until_trusted(tmp_path: Path) -> None:
    async with node("n1", "gpu-box") as (_, address), Farm.open(settings(address)) as farm:
        await state_of(farm, "n1", NodeState.ONLINE)
    old = load_pins()["n1"].fingerprint
    other = load_or_create_certificate(tmp_path / "reinstalled")  # the node lost its certificate
    async with node("n1", "gpu-box", certificate=other) as (_, address), Farm.open(settings(address)) as farm:
        record = await state_of(farm, "n1", NodeState.UNTRUSTED)
        assert "lanfarm nodes trust gpu-box" in record.problem and "new TLS certificate" in record.problem
        assert farm.worker_ids == frozenset()  # no work for it
        assert load_pins()["n1"].fingerprint == old  # never replaced behind the user's back
        assert await farm.trust_node("gpu-box") == ["n1"]
        await state_of(farm, "n1", NodeState.ONLINE)
        batch = await farm.submit_paths([inputs(tmp_path / "in")], None, EditSpec(), tmp_path / "out")
        await farm.wait()
    assert [j.state for j in batch.jobs] == [JobState.DONE]
    assert load_pins()["n1"].fingerprint == other.fingerprint


@contextlib.asynccontextmanager
async def man_in_the_middle(target: Address, cert_dir: Path) -> AsyncIterator[Address]:
    """A TLS proxy with a certificate of its own that relays every byte to ``target`` (over TLS)."""
    own = load_or_create_certificate(cert_dir)
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname, client_ctx.verify_mode = False, ssl.CERT_NONE

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def relay(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        node_r, node_w = await asyncio.open_connection(target.host, target.port, ssl=client_ctx)
        await asyncio.gather(pipe(r, node_w), pipe(node_r, w))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=own.server_context())
    try:
        yield Address("127.0.0.1", server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_a_man_in_the_middle_with_another_certificate_is_refused(tmp_path: Path) -> None:
    async with node("n1", "gpu-box") as (_, address):
        async with man_in_the_middle(address, tmp_path / "mitm") as mitm, Farm.open(settings(mitm)) as farm:
            record = await state_of(farm, "n1", NodeState.UNTRUSTED)  # first contact through it: no pin
            assert "not the one" in record.problem and farm.worker_ids == frozenset()
        assert load_pins() == {}
        async with Farm.open(settings(address)) as farm:  # the real node, directly: pinned
            await state_of(farm, "n1", NodeState.ONLINE)
        async with man_in_the_middle(address, tmp_path / "mitm") as mitm, Farm.open(settings(mitm)) as farm:
            record = await state_of(farm, "n1", NodeState.UNTRUSTED)  # later: the pin refuses it
            assert farm.worker_ids == frozenset()


def fake_node_app(jobs: list[Any]) -> web.Application:
    """A node that says all the right things but does not hold the farm token (it checks nothing)."""
    fingerprint = load_or_create_certificate().fingerprint
    info = {"id": "fake", "name": "fake", "protocol": PROTOCOL_VERSION, "tls": True, "fingerprint": fingerprint}
    info |= {"engines": [], "slots": {"total": 4, "free": 4}}

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "protocol": PROTOCOL_VERSION, "id": "fake", "fingerprint": fingerprint})

    async def identity(request: web.Request) -> web.Response:
        return web.json_response({"id": "fake", "fingerprint": fingerprint, "proof": "0" * 64})

    async def anything(request: web.Request) -> web.Response:
        if request.method == "POST":
            jobs.append(json.loads(await request.read()))
        return web.json_response(info)

    app = web.Application()
    app.router.add_get("/v1/health", health)
    app.router.add_get("/v1/identity", identity)
    app.router.add_route("*", "/{tail:.*}", anything)
    return app


async def test_a_fake_node_without_the_token_is_never_pinned_and_gets_no_job(tmp_path: Path) -> None:
    jobs: list[Any] = []
    runner = web.AppRunner(fake_node_app(jobs))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=load_or_create_certificate().server_context()).start()
    fake = Address("127.0.0.1", runner.addresses[0][1])
    try:
        settings_ = FarmSettings(token=TOKEN, use_local=True, mdns=False, peers=(fake,), heartbeat_interval=0.1)
        async with Farm.open(settings_) as farm:
            record = await state_of(farm, "fake", NodeState.UNTRUSTED)
            assert "did not prove it holds the farm token" in record.problem
            batch = await farm.submit_paths([inputs(tmp_path / "in")], None, EditSpec(), tmp_path / "out")
            await farm.wait()
    finally:
        await runner.cleanup()
    assert [j.state for j in batch.jobs] == [JobState.DONE]  # done here, on this PC
    assert jobs == [] and load_pins() == {}


async def test_requests_to_a_pinned_node_reuse_their_connection() -> None:
    """The pin is one ``ssl`` value per fingerprint: aiohttp pools connections by it, so work keeps one
    connection instead of a TLS handshake per request."""
    opened: list[object] = []

    async def on_create(_session: object, _ctx: object, params: object) -> None:
        opened.append(params)

    trace = aiohttp.TraceConfig()
    trace.on_connection_create_end.append(on_create)
    async with node("n1", "gpu-box") as (_, address), aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = NodeClient(session, address.url, TOKEN, trust=Trust())
        for _ in range(20):
            await client.info()
    assert len(opened) <= 2, len(opened)  # /v1/health's unchecked one, and the pinned one
