"""`lanfarm doctor`: one verdict per check with its fix (real node apps on 127.0.0.1, discovery off)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
from aiohttp import web

from farm.cli.doctor import blocked_between_pcs, check_node
from farm.core.address import Address
from node.tls import load_or_create_certificate
from tests.farm.runtime.test_discovery import node
from tests.node.helpers import TOKEN


@contextlib.asynccontextmanager
async def old_node() -> AsyncIterator[Address]:
    """A FAKE of an old LAN Farm node (protocol 1): only its /v1/health, which is all doctor reads."""

    async def health(_request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "protocol": 1, "id": "old-node-1"})

    app = web.Application()
    app.router.add_get("/v1/health", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield Address("127.0.0.1", runner.addresses[0][1], tls=False)
    finally:
        await runner.cleanup()


async def test_each_kind_of_node_problem_gets_its_own_verdict_and_fix() -> None:
    async with node("n1", "attic") as (_, good), old_node() as old, aiohttp.ClientSession() as session:
        ok = await check_node(session, good, TOKEN)
        wrong = await check_node(session, good, "another farm's token")
        closed = await check_node(session, Address("127.0.0.1", 9), TOKEN)
        stale = await check_node(session, old, TOKEN)
    assert ok.ok and "attic" in ok.finding and "takes this farm's token" in ok.finding
    assert not wrong.ok and "refuses this farm's token" in wrong.finding and "lanfarm token" in wrong.fix
    assert not closed.ok and "nothing listens on port 9" in closed.finding and "firewall" in closed.fix
    assert not stale.ok and "protocol 1" in stale.finding and "update LAN Farm" in stale.fix
    assert "TLS, certificate" in ok.finding and "pinned now" in ok.finding


async def test_tls_and_pin_problems_get_their_own_verdicts(tmp_path: Path) -> None:
    async with node("n1", "attic") as (_, good), aiohttp.ClientSession() as session:
        first = await check_node(session, good, TOKEN)
        again = await check_node(session, good, TOKEN)
        plain_as_tls = Address("127.0.0.1", good.port, tls=False)  # typed http:// for an https node
        mistyped = await check_node(session, plain_as_tls, TOKEN)
    other = load_or_create_certificate(tmp_path / "new")
    async with node("n1", "attic", certificate=other) as (_, good), aiohttp.ClientSession() as session:
        changed = await check_node(session, good, TOKEN)
    async with node("n2", "cellar", tls=False) as (_, plain), aiohttp.ClientSession() as session:
        as_tls = await check_node(session, Address(plain.host, plain.port), TOKEN)  # a --no-tls node, typed bare
        as_plain = await check_node(session, plain, TOKEN)
    assert first.ok and "pinned now" in first.finding and again.ok and "pinned earlier" in again.finding
    assert not mistyped.ok and "serves https" in mistyped.finding, mistyped
    assert not changed.ok and "new TLS certificate" in changed.finding and "lanfarm nodes trust attic" in changed.fix
    assert not as_tls.ok and "--no-tls" in as_tls.finding and f"http://127.0.0.1:{plain.port}" in as_tls.fix
    assert as_plain.ok and "plain HTTP" in as_plain.finding


def test_nodes_reachable_by_address_but_not_over_mdns_mean_multicast_is_blocked() -> None:
    verdict = blocked_between_pcs(2)
    assert not verdict.ok and "multicast is blocked between the PCs" in verdict.finding
    assert "lanfarm nodes add" in verdict.fix and "5353" in verdict.fix


def test_doctor_exits_1_and_names_the_fix(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from farm.cli import main

    monkeypatch.setenv("LANFARM_HOME", str(tmp_path))
    monkeypatch.setenv("LANFARM_TOKEN", TOKEN)
    code = main(["doctor", "--no-discovery", "--peer", "127.0.0.1:9"])
    out = capsys.readouterr().out
    assert code == 1 and "FIX  node 127.0.0.1:9: nothing listens on port 9" in out and "->" in out
