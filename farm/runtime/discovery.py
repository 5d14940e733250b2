"""Finding the farm's nodes: mDNS browsing plus peers added by address, kept alive by health checks.

``Discovery`` does the I/O; ``farm.core.nodetable.NodeTable`` decides. mDNS (python-zeroconf) only says
where to look: a node is up once ``/v1/health`` and ``/v1/info`` (with the farm token) answered, and it
stays up while ``/v1/health`` keeps answering, because zeroconf keeps a killed node's records for many
minutes. An mDNS goodbye takes a node down at once. Methods named ``async_*`` and the listener
callbacks run on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from farm.core.address import Address
from farm.core.advert import NodeAdvert
from farm.core.nodetable import (
    Change,
    DownReason,
    Failed,
    Healthy,
    NodeChanged,
    NodeDown,
    NodeRecord,
    NodeTable,
    NodeUp,
    Probe,
    ProbeOutcome,
    Unauthorised,
    Unreached,
    Untrusted,
)
from farm.core.protocol import SERVICE_TYPE
from farm.runtime.client import (
    NodeClient,
    NodeRejected,
    NodeUnauthorised,
    NodeUnavailable,
    NodeUntrusted,
    connector,
)
from farm.runtime.trust import Trust

if TYPE_CHECKING:
    from zeroconf import ServiceStateChange, Zeroconf
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

__all__ = ["Address", "Discovery", "DownReason", "NodeListener", "NodeRecord", "Unreached"]

log = logging.getLogger(__name__)
RESOLVE_TIMEOUT_MS = 3000


class NodeListener:
    """Receives node events on the loop; override what you need (the defaults do nothing)."""

    def on_node_up(self, record: NodeRecord) -> None:
        """A node answered ``/v1/health`` and ``/v1/info`` (state ``online`` or ``unauthorised``)."""

    def on_node_changed(self, record: NodeRecord) -> None:
        """Its state, address, info or advert changed (not on every heartbeat)."""

    def on_node_down(self, node_id: str, reason: DownReason) -> None:
        """Gone: ``timeout`` (missed heartbeats), ``goodbye`` (mDNS), ``removed``, ``replaced``."""


class Discovery:
    """Keeps the live set of nodes. ``async_start`` then ``async_stop`` (or ``async with``).

    ``mdns=False`` never constructs zeroconf: only ``peers`` and ``add_peer`` addresses are probed.
    ``interfaces`` (IPv4 addresses) limits mDNS to those interfaces; default all. ``session`` is
    borrowed if given (never closed here), else one is owned.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        trust: Trust | None = None,
        mdns: bool = True,
        interfaces: Sequence[str] | None = None,
        peers: Iterable[Address | str] = (),
        listeners: Iterable[NodeListener] = (),
        heartbeat_interval: float = 2.0,
        misses: int = 3,
        timeout: float = 2.0,
        info_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token = token
        self.trust = trust or Trust()
        self._session = session
        self._owns_session = session is None
        self._mdns = mdns
        self._interfaces = list(interfaces or ())
        self._listeners = list(listeners)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._clock = clock
        self.table = NodeTable(heartbeat_interval=heartbeat_interval, misses=misses, info_interval=info_interval)
        for peer in peers:
            self.table.add_peer(_address(peer), clock())
        self._tasks: set[asyncio.Task[Any]] = set()
        self._resolving: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._azc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None

    # --- reading ---------------------------------------------------------------------------------

    def nodes(self) -> list[NodeRecord]:
        """Online and unauthorised nodes, by name."""
        return self.table.nodes()

    def get(self, node_id: str) -> NodeRecord | None:
        return self.table.get(node_id)

    def unreached(self) -> list[Unreached]:
        """Addresses probed without finding a node there (a saved peer that is off, say)."""
        return self.table.unreached()

    @property
    def running(self) -> bool:
        return self._runner is not None

    # --- changing --------------------------------------------------------------------------------

    def add_peer(self, address: Address | str) -> None:
        """Probe ``address`` (``host:port``) from now on; its node counts once even if mDNS finds it too."""
        self.table.add_peer(_address(address), self._clock())
        self._wake.set()

    def remove_peer(self, address: Address | str) -> None:
        self._apply(self.table.remove_peer(_address(address), self._clock()))

    def set_token(self, token: str | None) -> None:
        """Use another farm token; every node's ``/v1/info`` is fetched again."""
        self._token = token
        self.table.invalidate_info()
        self._wake.set()

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> Discovery:
        await self.async_start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.async_stop()

    async def async_start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("discovery is already running")
        self._loop = asyncio.get_running_loop()
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=connector())
        try:
            if self._mdns:
                await self._async_start_mdns()
        except BaseException:
            await self.async_stop()
            raise
        self._runner = asyncio.create_task(self._run(), name="discovery")

    async def async_stop(self) -> None:
        """Stop browsing and probing; cancels and awaits every task it started. Safe to call twice."""
        if self._browser is not None:
            browser, self._browser = self._browser, None
            await browser.async_cancel()
        if self._azc is not None:
            azc, self._azc = self._azc, None
            await azc.async_close()
        tasks = [t for t in (self._runner, *self._tasks) if t is not None]
        self._runner = None
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._resolving.clear()
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def async_wait_probed(self, timeout: float) -> bool:
        """Wait until every known address has answered or failed once; False if ``timeout`` ran out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.table.all_probed():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await self._progress.wait()
        return True

    # --- probing ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            for probe in self.table.due(self._clock()):
                self._spawn(self._probe(probe), f"probe {probe.address}")
            next_due = self.table.next_due()
            delay = None if next_due is None else max(0.0, next_due - self._clock())
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel that races a wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def _probe(self, probe: Probe) -> None:
        outcome = await self._fetch(probe)
        if isinstance(outcome, Failed):
            log.debug("probe of %s failed: %s", probe.address, outcome.error)
        self._apply(self.table.result(probe.address, outcome, self._clock()))
        self._progress.set()
        self._wake.set()

    async def _fetch(self, probe: Probe) -> ProbeOutcome:
        assert self._session is not None
        client = NodeClient(
            self._session, probe.address.url, self._token or "", timeout=self._timeout, trust=self.trust
        )
        try:
            node_id = await client.health()
        except NodeUntrusted as exc:
            return Untrusted(exc.node_id, exc.reason) if exc.node_id else Failed(exc.reason)
        except (NodeUnavailable, NodeRejected) as exc:
            return Failed(exc.reason)
        except NodeUnauthorised:
            return Failed("/v1/health answered HTTP 401")
        if not probe.full:
            return Healthy(node_id)
        try:
            return Healthy(node_id, await client.info())
        except NodeUnauthorised:
            return Unauthorised(node_id)
        except NodeUntrusted as exc:
            return Untrusted(node_id, exc.reason)
        except (NodeUnavailable, NodeRejected) as exc:
            return Failed(exc.reason)

    def _apply(self, changes: list[Change]) -> None:
        for change in changes:
            for listener in list(self._listeners):
                try:
                    if isinstance(change, NodeUp):
                        listener.on_node_up(change.record)
                    elif isinstance(change, NodeChanged):
                        listener.on_node_changed(change.record)
                    else:
                        listener.on_node_down(change.record.id, change.reason)
                except Exception:
                    log.exception("node listener %r failed", listener)
            if isinstance(change, NodeDown):
                log.warning("node %s (%s) is down: %s", change.record.name, change.record.address, change.reason)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- mDNS ------------------------------------------------------------------------------------

    async def _async_start_mdns(self) -> None:
        from zeroconf import InterfaceChoice, IPVersion
        from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

        interfaces: Any = self._interfaces or InterfaceChoice.All
        try:
            self._azc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        except (OSError, ValueError) as exc:  # no usable interface: peers still work
            log.warning("no mDNS discovery (add nodes by address): %s", exc)
            return
        self._browser = AsyncServiceBrowser(self._azc.zeroconf, SERVICE_TYPE, handlers=[self._on_service_state_change])

    def _on_service_state_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        # zeroconf may call this from its own thread; everything else happens on our loop.
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._mdns_event, name, state_change.name)

    def _mdns_event(self, name: str, change: str) -> None:
        if self._azc is None:
            return  # stopping
        pending = self._resolving.pop(name, None)
        if pending is not None:
            pending.cancel()
        if change == "Removed":
            log.debug("mDNS goodbye from %s", name)
            self._apply(self.table.mdns_goodbye(name, self._clock()))
            return
        task = self._spawn(self._resolve(name), f"resolve {name}")
        self._resolving[name] = task
        task.add_done_callback(lambda done: self._resolved(name, done))

    def _resolved(self, name: str, task: asyncio.Task[None]) -> None:
        if self._resolving.get(name) is task:
            del self._resolving[name]

    async def _resolve(self, name: str) -> None:
        from zeroconf import IPVersion
        from zeroconf.asyncio import AsyncServiceInfo

        assert self._azc is not None
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        if not await info.async_request(self._azc.zeroconf, RESOLVE_TIMEOUT_MS) or not info.port:
            log.debug("mDNS service %s did not resolve", name)
            return
        txt: dict[bytes | str, bytes | str | None] = {k: v for k, v in info.properties.items()}
        try:
            advert: NodeAdvert | None = NodeAdvert.from_txt(txt)
        except ValueError as exc:
            log.debug("mDNS service %s: %s; probing it anyway", name, exc)
            advert = None
        tls = advert.tls if advert is not None else True
        addresses = [Address(a, info.port, tls) for a in info.parsed_addresses(IPVersion.V4Only)]
        self._apply(self.table.mdns_service(name, addresses, advert, self._clock()))
        self._wake.set()


def _address(value: Address | str) -> Address:
    return value if isinstance(value, Address) else Address.parse(value)
