"""Liveness of nodes added by address: probe each one, add it to the farm when it answers, take it out
when it stops. A stand-in for ``farm.discovery`` (mDNS + probes) until that lands; it feeds the
dashboard through the same calls discovery will: node up / down / unauthorised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from farm.client import NodeError, NodeUnauthorised
from farm.runtime import Farm

log = logging.getLogger(__name__)
PROBE_TIMEOUT = 2.0
INFO_EVERY = 5  # probes between /v1/info refreshes of a known node (VRAM, models)


class NodeFeed(Protocol):
    def node_up(self, node_id: str, name: str, address: str, info: dict[str, Any]) -> None: ...
    def node_down(self, node_id: str, reason: str) -> None: ...
    def node_unauthorised(self, node_id: str, address: str, error: str) -> None: ...


@dataclass(slots=True)
class _Peer:
    address: str
    node_id: str | None = None
    misses: int = 0
    probes: int = 0
    ignored: bool = False
    state: str = "unknown"  # online | unauthorised | offline | unreachable


class PeerMonitor:
    """Probes each peer every ``interval`` seconds; ``misses`` failed probes in a row mark it offline."""

    def __init__(self, farm: Farm, feed: NodeFeed, *, interval: float = 2.0, misses: int = 2) -> None:
        self.farm = farm
        self.feed = feed
        self.interval = interval
        self.misses = misses
        self._peers: dict[str, _Peer] = {}
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def add(self, address: str) -> None:
        self._peers.setdefault(address, _Peer(address))

    def remove(self, address: str) -> None:
        self._peers.pop(address, None)

    def set_ignored(self, address: str, ignored: bool) -> None:
        peer = self._peers.get(address)
        if peer is not None:
            peer.ignored = ignored
            if not ignored:
                peer.state = "unknown"
                self._wake.set()

    def recheck(self) -> None:
        """Probe everything now (the token changed: unauthorised nodes may accept us)."""
        for peer in self._peers.values():
            if peer.state == "unauthorised":
                peer.state = "unknown"
        self._wake.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="peer monitor")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def probe_now(self, address: str) -> str:
        self.add(address)
        await self._probe(self._peers[address])
        return self._peers[address].state

    async def _run(self) -> None:
        while True:
            peers = [p for p in self._peers.values() if not p.ignored]
            await asyncio.gather(*(self._probe(p) for p in peers))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)

    async def _probe(self, peer: _Peer) -> None:
        client = self.farm.node_client(peer.address)
        try:
            health = await asyncio.wait_for(client.health(), PROBE_TIMEOUT)
            node_id = str(health["id"])
        except (NodeError, TimeoutError, KeyError, TypeError) as exc:
            peer.misses += 1
            if peer.node_id is None:
                peer.state = "unreachable"
            elif peer.misses >= self.misses and peer.state != "offline":
                peer.state = "offline"
                log.info("node %s stopped answering: %s", peer.address, exc)
                self.farm.remove_node(peer.node_id, "stopped answering")
                self.feed.node_down(peer.node_id, "stopped answering")
            return
        peer.misses = 0
        peer.probes += 1
        if peer.node_id is not None and peer.node_id != node_id and peer.node_id in self.farm.workers:
            self.farm.remove_node(peer.node_id, "replaced by another node at its address")
        peer.node_id = node_id
        known = node_id in self.farm.workers and peer.state == "online"
        if peer.ignored or (known and peer.probes % INFO_EVERY):
            return
        try:
            info = await asyncio.wait_for(client.info(), PROBE_TIMEOUT)
        except NodeUnauthorised as exc:
            peer.state = "unauthorised"
            self.feed.node_unauthorised(node_id, peer.address, str(exc))
            return
        except (NodeError, TimeoutError) as exc:
            peer.state = "unreachable"
            log.debug("node %s: info failed: %s", peer.address, exc)
            return
        peer.state = "online"
        name = str(info.get("name") or peer.address)
        self.feed.node_up(node_id, name, peer.address, info)
        self.farm.add_node(node_id, name, peer.address, info)
