"""The farm's view of its nodes, as a pure state machine: no sockets, no clock (``now`` is passed in).

Endpoints (``host:port``, from mDNS or added by address) are probed; a probe's outcome says which node
answered there. A node is one id, however many endpoints lead to it. ``due(now)`` says which endpoints
to probe; ``result(...)`` and the mDNS/peer methods return the ``NodeUp``/``NodeChanged``/``NodeDown``
changes they caused. ``farm.runtime.discovery`` does the I/O around it.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from farm.core.address import Address
from farm.core.advert import NodeAdvert
from farm.core.availability import Availability
from farm.core.nodeinfo import NodeInfo

Source = Literal["mdns", "peer"]


class NodeState(enum.StrEnum):
    """What a node is to the farm: usable, refusing our token, or gone."""

    ONLINE = "online"
    UNAUTHORISED = "unauthorised"
    UNTRUSTED = "untrusted"  # another TLS certificate than the one pinned, or no proof of the farm token
    OFFLINE = "offline"


DownReason = Literal["timeout", "goodbye", "removed", "replaced"]


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node as the farm sees it. ``info`` is its ``/v1/info`` answer (empty while unauthorised)."""

    id: str
    name: str
    address: Address
    source: Source
    state: NodeState
    info: NodeInfo | None = field(default=None, hash=False)
    advert: NodeAdvert | None = None
    last_seen: float = 0.0
    misses: int = 0
    addresses: tuple[Address, ...] = ()
    problem: str = ""  # why an untrusted node is refused

    @property
    def gpu(self) -> str:
        if self.info is not None:
            return self.info.gpus[0].name or "?" if self.info.gpus else "cpu"
        return self.advert.gpu if self.advert else "?"

    @property
    def vram_mb(self) -> int:
        if self.info is not None and self.info.gpus:
            return self.info.vram_total_mb
        return self.advert.vram_mb if self.advert else 0

    @property
    def engines(self) -> tuple[str, ...]:
        if self.info is not None:
            return self.info.engine_ids
        return self.advert.engines if self.advert else ()

    @property
    def slots(self) -> tuple[int, int] | None:
        """(free, total) from the latest info, else from the advert; None when unknown."""
        if self.info is not None:
            return self.info.slots_free, self.info.slots_total
        return (self.advert.free, self.advert.slots) if self.advert else None

    @property
    def availability(self) -> Availability:
        """Whether its owner lends it now (from the latest info, else the advert's ``state``)."""
        if self.info is not None:
            return self.info.availability
        return Availability.from_dict({"state": self.advert.state}) if self.advert else Availability()

    @property
    def state_label(self) -> str:
        """``online``, or why an online node takes no jobs (``paused: gaming``), or its state."""
        if self.state is NodeState.ONLINE and not self.availability.available:
            return self.availability.label()
        return str(self.state)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``lanfarm nodes --json``)."""
        slots = self.slots
        return {
            "id": self.id,
            "name": self.name,
            "address": str(self.address),
            "source": self.source,
            "state": self.state,
            "gpu": self.gpu,
            "vram_mb": self.vram_mb,
            "engines": list(self.engines),
            "slots": {"free": slots[0], "total": slots[1]} if slots else None,
            "addresses": [str(a) for a in self.addresses],
            "misses": self.misses,
            "availability": self.availability.to_dict(),
            "info": self.info.to_dict() if self.info else {},
        }


@dataclass(frozen=True, slots=True)
class NodeUp:
    record: NodeRecord


@dataclass(frozen=True, slots=True)
class NodeChanged:
    record: NodeRecord


@dataclass(frozen=True, slots=True)
class NodeDown:
    record: NodeRecord  # its last state, with state "offline"
    reason: DownReason


Change = NodeUp | NodeChanged | NodeDown


@dataclass(frozen=True, slots=True)
class Healthy:
    """``/v1/health`` answered with ``id``; ``info`` is the ``/v1/info`` answer when a full probe ran."""

    id: str
    info: NodeInfo | None = None


@dataclass(frozen=True, slots=True)
class Unauthorised:
    """``/v1/health`` answered with ``id`` but ``/v1/info`` said 401: another farm's token."""

    id: str


@dataclass(frozen=True, slots=True)
class Failed:
    error: str


@dataclass(frozen=True, slots=True)
class Untrusted:
    """``/v1/health`` answered with ``id`` but the node is not the one pinned (or did not prove the token)."""

    id: str
    reason: str


ProbeOutcome = Healthy | Unauthorised | Untrusted | Failed


@dataclass(frozen=True, slots=True)
class Probe:
    """Probe ``address``: ``/v1/health``, and ``/v1/info`` too when ``full``."""

    address: Address
    full: bool


@dataclass(frozen=True, slots=True)
class Unreached:
    """An endpoint that has been probed but has not led to a node."""

    address: Address
    source: Source
    error: str


@dataclass(slots=True)
class _Endpoint:
    address: Address
    peer: bool = False
    adverts: dict[str, NodeAdvert | None] = field(default_factory=dict)  # mDNS service name -> advert
    node_id: str | None = None
    misses: int = 0
    error: str = ""
    next_probe: float = -math.inf
    in_flight: bool = False
    probed: bool = False

    @property
    def advert(self) -> NodeAdvert | None:
        return next((a for a in reversed(self.adverts.values()) if a), None)


@dataclass(slots=True)
class _Node:
    id: str
    address: Address
    state: NodeState
    info: NodeInfo | None
    info_at: float
    last_seen: float
    problem: str = ""


class NodeTable:
    """Endpoints and the nodes behind them; every method takes ``now`` (seconds, any monotonic clock)."""

    def __init__(self, *, heartbeat_interval: float = 2.0, misses: int = 3, info_interval: float = 10.0) -> None:
        if misses < 1 or heartbeat_interval <= 0:
            raise ValueError("misses must be >= 1 and heartbeat_interval > 0")
        self.heartbeat_interval = heartbeat_interval
        self.max_misses = misses
        self.info_interval = info_interval
        self._endpoints: dict[Address, _Endpoint] = {}
        self._nodes: dict[str, _Node] = {}
        self._down: dict[str, DownReason] = {}

    # --- what callers read ---------------------------------------------------------------------

    def nodes(self) -> list[NodeRecord]:
        """Online and unauthorised nodes, by name."""
        return sorted((self._record(n) for n in self._nodes.values()), key=lambda r: (r.name, r.id))

    def get(self, node_id: str) -> NodeRecord | None:
        node = self._nodes.get(node_id)
        return self._record(node) if node else None

    def unreached(self) -> list[Unreached]:
        return [
            Unreached(ep.address, "mdns" if ep.adverts else "peer", ep.error or "no answer yet")
            for ep in sorted(self._endpoints.values(), key=lambda e: e.address)
            if ep.probed and ep.node_id is None
        ]

    def all_probed(self) -> bool:
        """Every known endpoint has answered or failed at least once."""
        return all(ep.probed for ep in self._endpoints.values())

    def peers(self) -> list[Address]:
        return sorted(a for a, ep in self._endpoints.items() if ep.peer)

    # --- probing ---------------------------------------------------------------------------------

    def due(self, now: float) -> list[Probe]:
        """Endpoints to probe now; they count as in flight until their ``result``."""
        probes = []
        for ep in self._endpoints.values():
            if ep.in_flight or ep.next_probe > now:
                continue
            node = self._nodes.get(ep.node_id) if ep.node_id else None
            full = node is None or now - node.info_at >= self.info_interval
            ep.in_flight = True
            probes.append(Probe(ep.address, full))
        return probes

    def next_due(self) -> float | None:
        """When the next probe falls due; None when nothing is left to probe."""
        times = [ep.next_probe for ep in self._endpoints.values() if not ep.in_flight]
        return min(times) if times else None

    def result(self, address: Address, outcome: ProbeOutcome, now: float) -> list[Change]:
        """Take the outcome of a probe of ``address``; ignored if the endpoint went away meanwhile."""
        ep = self._endpoints.get(address)
        if ep is None:
            return []
        return self._diff(lambda: self._result(ep, outcome, now))

    def _result(self, ep: _Endpoint, outcome: ProbeOutcome, now: float) -> None:
        ep.in_flight, ep.probed, ep.next_probe = False, True, now + self.heartbeat_interval
        if isinstance(outcome, Failed):
            ep.misses += 1
            ep.error = outcome.error
            if ep.node_id and ep.misses >= self.max_misses:
                node_id, ep.node_id = ep.node_id, None
                self._reassign(node_id, "timeout")
            return
        ep.misses, ep.error = 0, ""
        if ep.node_id and ep.node_id != outcome.id:  # another node now listens here
            old, ep.node_id = ep.node_id, None
            self._reassign(old, "replaced")
        node = self._nodes.get(outcome.id)
        if node is None:
            if isinstance(outcome, Healthy) and outcome.info is None:
                return  # the node went away while this health-only probe ran; the next one is full
            state = (
                NodeState.ONLINE
                if isinstance(outcome, Healthy)
                else NodeState.UNTRUSTED
                if isinstance(outcome, Untrusted)
                else NodeState.UNAUTHORISED
            )
            info = outcome.info if isinstance(outcome, Healthy) else None
            self._nodes[outcome.id] = _Node(outcome.id, ep.address, state, info, now, now)
            self._nodes[outcome.id].problem = outcome.reason if isinstance(outcome, Untrusted) else ""
            ep.node_id = outcome.id
            return
        ep.node_id = node.id
        node.last_seen = now
        if isinstance(outcome, Unauthorised):
            node.state, node.info, node.info_at, node.problem = NodeState.UNAUTHORISED, None, now, ""
        elif isinstance(outcome, Untrusted):
            node.state, node.info, node.info_at, node.problem = NodeState.UNTRUSTED, None, now, outcome.reason
        elif outcome.info is not None:
            node.state, node.info, node.info_at, node.problem = NodeState.ONLINE, outcome.info, now, ""
        primary = self._endpoints.get(node.address)
        if primary is None or primary.node_id != node.id:
            node.address = ep.address

    def _reassign(self, node_id: str, reason: DownReason) -> None:
        """The node lost an endpoint: move it to another live one, or take it down."""
        node = self._nodes.get(node_id)
        if node is None:
            return
        live = [ep for ep in self._endpoints.values() if ep.node_id == node_id]
        if not live:
            del self._nodes[node_id]
            self._down[node_id] = reason
        elif node.address not in {ep.address for ep in live}:
            node.address = min(live, key=lambda ep: (ep.misses, ep.address)).address

    # --- sources -------------------------------------------------------------------------------

    def add_peer(self, address: Address, now: float) -> None:
        """Probe ``address`` from now on (a saved peer or ``--peer``)."""
        ep = self._endpoint(address, now)
        ep.peer = True

    def remove_peer(self, address: Address, now: float) -> list[Change]:
        ep = self._endpoints.get(address)
        if ep is None or not ep.peer:
            return []

        def mutate() -> None:
            ep.peer = False
            if not ep.adverts:
                self._drop_endpoint(ep, "removed")

        return self._diff(mutate)

    def mdns_service(
        self, service: str, addresses: Sequence[Address], advert: NodeAdvert | None, now: float
    ) -> list[Change]:
        """mDNS resolved ``service`` to ``addresses`` (an add or an update of its records)."""

        def mutate() -> None:
            wanted = set(addresses)
            for ep in list(self._endpoints.values()):
                if service in ep.adverts and ep.address not in wanted:
                    del ep.adverts[service]
                    if not ep.adverts and not ep.peer:
                        self._drop_endpoint(ep, "removed")
            for address in addresses:
                self._endpoint(address, now).adverts[service] = advert

        return self._diff(mutate)

    def mdns_goodbye(self, service: str, now: float) -> list[Change]:
        """mDNS said ``service`` is gone: its node is down at once, whatever other addresses it has."""

        def mutate() -> None:
            eps = [ep for ep in self._endpoints.values() if service in ep.adverts]
            gone = {ep.node_id for ep in eps if ep.node_id}
            for ep in eps:
                del ep.adverts[service]
                if not ep.adverts and not ep.peer:
                    del self._endpoints[ep.address]
            for ep in self._endpoints.values():
                if ep.node_id in gone:  # a peer address of the same node: it must answer afresh
                    ep.node_id = None
                    ep.next_probe = max(ep.next_probe, now + self.heartbeat_interval)
            for node_id in gone:
                self._nodes.pop(node_id, None)
                self._down[node_id] = "goodbye"

        return self._diff(mutate)

    def invalidate_info(self) -> None:
        """Fetch ``/v1/info`` again at the next probe of every node (the token changed, say)."""
        for node in self._nodes.values():
            node.info_at = -math.inf
        for ep in self._endpoints.values():
            if not ep.in_flight:
                ep.next_probe = -math.inf

    # --- internals -------------------------------------------------------------------------------

    def _endpoint(self, address: Address, now: float) -> _Endpoint:
        ep = self._endpoints.get(address)
        if ep is None:
            ep = self._endpoints[address] = _Endpoint(address, next_probe=now)
        return ep

    def _drop_endpoint(self, ep: _Endpoint, reason: DownReason) -> None:
        del self._endpoints[ep.address]
        if ep.node_id:
            self._reassign(ep.node_id, reason)

    def _record(self, node: _Node, state: NodeState | None = None) -> NodeRecord:
        eps = [ep for ep in self._endpoints.values() if ep.node_id == node.id]
        primary = self._endpoints.get(node.address)
        advert = next((ep.advert for ep in eps if ep.advert), None)
        name = (node.info.name if node.info else "") or (advert.name if advert else "") or node.id
        return NodeRecord(
            id=node.id,
            name=name,
            address=node.address,
            source="mdns" if any(ep.adverts for ep in eps) else "peer",
            state=state or node.state,
            info=node.info,
            advert=advert,
            last_seen=node.last_seen,
            misses=primary.misses if primary else 0,
            addresses=tuple(sorted(ep.address for ep in eps)),
            problem=node.problem,
        )

    def _diff(self, mutate: Callable[[], None]) -> list[Change]:
        """Run ``mutate`` and say which nodes came up, changed (beyond heartbeat counters) or went down."""
        before = {nid: self._record(node) for nid, node in self._nodes.items()}
        self._down.clear()
        mutate()
        changes: list[Change] = []
        for nid, old in before.items():
            if nid not in self._nodes:
                changes.append(
                    NodeDown(dataclasses.replace(old, state=NodeState.OFFLINE), self._down.get(nid, "removed"))
                )
        for nid, node in self._nodes.items():
            new = self._record(node)
            if nid not in before:
                changes.append(NodeUp(new))
            elif _visible(new) != _visible(before[nid]):
                changes.append(NodeChanged(new))
        self._down.clear()
        return changes


def _visible(record: NodeRecord) -> NodeRecord:
    return dataclasses.replace(record, last_seen=0.0, misses=0)
