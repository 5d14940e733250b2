"""Discovery against real node apps (node.app, no mDNS advert) on 127.0.0.1, added by address."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from farm import default_registry
from farm.core.address import Address
from farm.runtime.discovery import Discovery, NodeListener, NodeRecord
from node.app import create_app
from node.config import NodeConfig
from node.tls import NodeCertificate, load_or_create_certificate
from tests.node.helpers import TOKEN

FAST = {"heartbeat_interval": 0.1, "misses": 3, "timeout": 1.0}  # fast heartbeats keep tests short


class Events(NodeListener):
    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def on_node_up(self, record: NodeRecord) -> None:
        self._add(("up", record))

    def on_node_changed(self, record: NodeRecord) -> None:
        self._add(("changed", record))

    def on_node_down(self, node_id: str, reason: str) -> None:
        self._add(("down", (node_id, reason)))

    def _add(self, event: tuple[str, Any]) -> None:
        self.log.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[list[tuple[str, Any]]], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self.log):
                self._changed.clear()
                await self._changed.wait()

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.log]


def node_app(node_id: str = "n1", name: str = "pc1", fingerprint: str = "") -> web.Application:
    config = NodeConfig(host="127.0.0.1", port=0, name=name, slots=2, advertise=False, shutdown_grace=0.5)
    return create_app(config, registry=default_registry(), token=TOKEN, node_id=node_id, fingerprint=fingerprint)


@contextlib.asynccontextmanager
async def node(
    node_id: str = "n1", name: str = "pc1", *, tls: bool = True, certificate: NodeCertificate | None = None
) -> AsyncIterator[tuple[web.AppRunner, Address]]:
    """A real node app on 127.0.0.1, serving https as ``lanfarm node`` does (its certificate made in
    this test's LANFARM_HOME, or ``certificate``), or plain HTTP with ``tls=False``."""
    cert = (certificate or load_or_create_certificate()) if tls else None
    runner = web.AppRunner(node_app(node_id, name, cert.fingerprint if cert else ""))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=cert.server_context() if cert else None)
    await site.start()
    try:
        yield runner, Address("127.0.0.1", runner.addresses[0][1], tls)
    finally:
        await runner.cleanup()


async def test_a_peer_comes_up_once_under_two_addresses() -> None:
    events = Events()
    async with node() as (_, addr):
        other = Address("localhost", addr.port)  # the same node by another name
        async with Discovery(TOKEN, mdns=False, peers=[addr, str(other)], listeners=[events], **FAST) as d:
            assert await d.async_wait_probed(5)
            await events.wait_for(lambda log: len(d.nodes()) == 1 and len(d.nodes()[0].addresses) == 2)
            [r] = d.nodes()
            assert (r.id, r.name, r.state, r.source) == ("n1", "pc1", "online", "peer")
            assert "cv2" in r.engines and r.slots == (2, 2) and r.address in (addr, other)
            assert events.kinds().count("up") == 1
            assert d.unreached() == []


async def test_wrong_token_is_unauthorised_not_dropped() -> None:
    events = Events()
    async with node() as (_, addr), Discovery("wrong", mdns=False, peers=[addr], listeners=[events], **FAST) as d:
        await events.wait_for(lambda log: "up" in events.kinds())
        [r] = d.nodes()
        assert r.state == "unauthorised" and r.info is None and r.name == "n1"
        await asyncio.sleep(0.5)  # several heartbeats: still there
        assert [n.state for n in d.nodes()] == ["unauthorised"]
        d.set_token(TOKEN)
        await events.wait_for(lambda log: log[-1][0] == "changed" and log[-1][1].state == "online")


async def test_stopped_node_goes_offline_after_misses_and_comes_back() -> None:
    events = Events()
    session = aiohttp.ClientSession()  # borrowed: Discovery must not close it
    async with node() as (runner, addr):
        port = addr.port
        d = Discovery(TOKEN, session=session, mdns=False, peers=[addr], listeners=[events], **FAST)
        await d.async_start()
        try:
            await events.wait_for(lambda log: "up" in events.kinds())
            await runner.cleanup()
            await events.wait_for(lambda log: "down" in events.kinds(), timeout=5)
            assert events.log[-1][1] == ("n1", "timeout")
            assert d.nodes() == [] and [u.address for u in d.unreached()] == [addr]
            cert = load_or_create_certificate()  # the same node: its certificate is kept in its home
            runner2 = web.AppRunner(node_app("n1", "pc1", cert.fingerprint))
            await runner2.setup()
            await web.TCPSite(runner2, "127.0.0.1", port, ssl_context=cert.server_context()).start()
            try:
                await events.wait_for(lambda log: events.kinds()[-1] == "up")
            finally:
                await runner2.cleanup()
        finally:
            await d.async_stop()
    assert not session.closed
    await session.close()


async def test_peers_added_and_removed_while_running_and_a_dead_address_is_reported() -> None:
    events = Events()
    async with node() as (_, addr), Discovery(TOKEN, mdns=False, listeners=[events], **FAST) as d:
        dead = Address("127.0.0.1", 9)  # discard port: nothing listens
        d.add_peer(dead)
        d.add_peer(addr)
        await events.wait_for(lambda log: "up" in events.kinds())
        assert await d.async_wait_probed(5)
        [u] = d.unreached()
        assert u.address == dead and u.source == "peer" and u.error == "connection refused"
        d.remove_peer(addr)
        assert events.log[-1][1] == ("n1", "removed") and d.nodes() == []


async def test_stop_leaves_no_tasks_behind() -> None:
    async with node() as (_, addr):
        d = Discovery(TOKEN, mdns=False, peers=[addr], **FAST)
        await d.async_start()
        await d.async_wait_probed(5)
        await d.async_stop()
        await d.async_stop()
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not any(t.get_name().startswith(("probe", "resolve", "discovery")) for t in others)


@pytest.mark.parametrize("bad", ["", "host:x", "host:0", "[::1"])
def test_bad_peer_addresses_are_refused(bad: str) -> None:
    from farm.errors import FarmError

    with pytest.raises(FarmError):
        Address.parse(bad)


@pytest.mark.parametrize(
    ("text", "host", "port", "shown"),
    [
        ("pc1", "pc1", 7788, "pc1:7788"),
        ("10.0.0.2:9000", "10.0.0.2", 9000, "10.0.0.2:9000"),
        ("http://10.0.0.2:9000/", "10.0.0.2", 9000, "10.0.0.2:9000"),
        ("[fe80::1]:81", "fe80::1", 81, "[fe80::1]:81"),
        ("fe80::1", "fe80::1", 7788, "[fe80::1]:7788"),
    ],
)
def test_peer_addresses(text: str, host: str, port: int, shown: str) -> None:
    address = Address.parse(text)
    assert (address.host, address.port, str(address)) == (host, port, shown)


@pytest.mark.parametrize(
    ("text", "tls", "url", "saved"),
    [
        ("10.0.0.2:9000", True, "https://10.0.0.2:9000", "10.0.0.2:9000"),  # nodes serve https by default
        ("https://10.0.0.2:9000", True, "https://10.0.0.2:9000", "10.0.0.2:9000"),  # once misparsed as a host
        ("HTTPS://pc1", True, "https://pc1:7788", "pc1:7788"),
        ("http://10.0.0.2:9000/", False, "http://10.0.0.2:9000", "http://10.0.0.2:9000"),  # a --no-tls node
        ("http://[fe80::1]:81", False, "http://[fe80::1]:81", "http://[fe80::1]:81"),
    ],
)
def test_peer_addresses_say_whether_the_node_speaks_tls(text: str, tls: bool, url: str, saved: str) -> None:
    address = Address.parse(text)
    assert (address.tls, address.url, address.text) == (tls, url, saved)
    assert Address.parse(address.text) == address == Address.parse(address.url)


def test_a_peer_address_with_another_scheme_is_refused() -> None:
    from farm.errors import FarmError

    with pytest.raises(FarmError, match="https:// or http://"):
        Address.parse("ftp://10.0.0.2:9000")
