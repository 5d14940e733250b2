"""Signed requests against a node: replays and tampering refused; a sniffer on the wire learns no token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import Any

from farm import EditSpec, Farm, FarmSettings, JobState
from farm.core import signing
from farm.core.address import Address
from tests.conftest import REPO
from tests.farm.runtime.test_discovery import node
from tests.node.helpers import TOKEN, auth_header, job_body, mask_png, png


async def test_a_replayed_request_is_refused(node_client: Any) -> None:
    client = await node_client()
    header = {"Authorization": auth_header("GET", "/v1/info")}
    assert (await client.get("/v1/info", headers=header)).status == 200
    again = await client.get("/v1/info", headers=header)  # a sniffer sends the same request again
    assert again.status == 401 and "already used" in (await again.json())["error"]["message"]


async def test_a_tampered_body_or_an_old_signature_is_refused(node_client: Any) -> None:
    client = await node_client()
    body = job_body("tamper-job-1", png(), mask_png())
    data = json.dumps(body).encode()
    header = {"Authorization": auth_header("POST", "/v1/jobs", data), "Content-Type": "application/json"}
    changed = data.replace(b'"c1"', b'"evil"')
    resp = await client.post("/v1/jobs", data=changed, headers=header)
    assert resp.status == 401
    old = signing.authorization(TOKEN, "GET", "/v1/info", signing.EMPTY_DIGEST, now=time.time() - 600, nonce="a" * 32)
    resp = await client.get("/v1/info", headers={"Authorization": old})
    assert resp.status == 401 and "clocks" in (await resp.json())["error"]["message"]


async def test_a_batch_over_the_wire_never_carries_the_token(tmp_path: Any) -> None:
    """A recording proxy between the farm and a real node app sees every byte; the token is not there."""
    seen = bytearray()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                seen.extend(data)
                writer.write(data)
                await writer.drain()
        writer.close()

    async with node("n1", "sniffed", tls=False) as (_, target):  # plain: the proxy reads the requests

        async def relay(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            node_r, node_w = await asyncio.open_connection(target.host, target.port)
            await asyncio.gather(pipe(client_r, node_w), pipe(node_r, client_w))

        proxy = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = proxy.sockets[0].getsockname()[1]
        folder = tmp_path / "in"
        folder.mkdir()
        samples = REPO / "resources" / "samples"
        for name in ("dusk.png", "harbour.png"):
            (folder / name).write_bytes((samples / name).read_bytes())
            (folder / name.replace(".png", "_mask.png")).write_bytes((samples / "masks" / name).read_bytes())
        settings = FarmSettings(
            token=TOKEN, use_local=False, mdns=False, peers=(Address("127.0.0.1", port, tls=False),)
        )
        try:
            async with Farm.open(settings) as farm:
                await farm.wait_for_nodes(5.0)
                batch = await farm.submit_paths([folder], None, EditSpec(), tmp_path / "out")
                await farm.wait()
        finally:
            proxy.close()
            await proxy.wait_closed()
    assert all(j.state is JobState.DONE for j in batch.jobs)
    assert b"/v1/jobs" in seen and b"LANFarm-HMAC" in seen  # the proxy did see the requests
    assert TOKEN.encode() not in seen


async def test_an_old_farm_that_sends_its_token_is_told_to_upgrade(node_client: Any) -> None:
    client = await node_client()
    resp = await client.get("/v1/info", headers={"Authorization": f"Bearer {TOKEN}"})
    message = (await resp.json())["error"]["message"]
    assert resp.status == 401 and "protocol 2" in message and "update LAN Farm" in message
