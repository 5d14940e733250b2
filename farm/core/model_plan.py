"""Which models to send to which nodes, just in time: a pure decision, from what is queued and who can take it.

A model is sent to a node when queued jobs need it and the node has the engine, the memory and the
room for it, is not receiving another model (one transfer per node at a time), and has not refused
it (a :class:`Refusal` stands until that can have changed: the node has more room, engines or memory,
it restarted, or a backoff passed). When no worker holds the model, every such node gets it (nothing
else can run the jobs).
When some do, a node gets it only if the transfer (size / the link rate measured to that node)
ends before the holders would have finished the queued jobs without it: otherwise running them
elsewhere is sooner. No clocks, no I/O: the caller passes what it measured.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: Link rate assumed before one was measured: 100 Mbit/s, the slow end of a home LAN.
DEFAULT_RATE = 100e6 / 8
#: Seconds per job assumed on the holders before one has finished (an AI edit on a GPU, roughly).
DEFAULT_JOB_SECONDS = 1.0
#: A node that refused a model is asked again after this long at the latest, twice as long after each
#: further refusal, at most RETRY_MAX (a refusal for a reason nobody fixed costs one request now and then).
RETRY_FIRST = 120.0
RETRY_MAX = 1800.0
#: A node's start (the caller's clock minus its uptime) later than this by more: it restarted.
RESTART_SLACK = 5.0


@dataclass(frozen=True, slots=True)
class NodeState:
    """What of a node can change its answer to a model: its room, engines, memory and when it started."""

    space: int | None
    engines: frozenset[str]
    memory_mb: int
    started: float  # on the caller's clock: when it read the node's info, less the node's uptime


@dataclass(frozen=True, slots=True)
class Refusal:
    """A node did not take a model (it refused or went away); asked again once that can have changed."""

    model_id: str
    size: int
    at: float
    node: NodeState  # the node when it refused
    times: int = 1

    @property
    def retry_at(self) -> float:
        return self.at + min(RETRY_MAX, RETRY_FIRST * 2 ** (self.times - 1))

    def stands(self, node: NodeState, now: float) -> bool:
        """Whether it still holds: not once the backoff passed, the node has room it lacked (or room for
        one more such model), an engine or memory it lacked, or it restarted (a new process may answer
        otherwise: the ai extra installed, a disk cleaned)."""
        before = self.node
        space, was = node.space or 0, before.space or 0
        return not (
            now >= self.retry_at
            or (space >= self.size > was)
            or space - was >= self.size
            or bool(node.engines - before.engines)
            or node.memory_mb > before.memory_mb
            or node.started > before.started + RESTART_SLACK
        )

    def again(self, at: float, node: NodeState) -> Refusal:
        """The same node refused the same model once more: the next try waits twice as long."""
        return Refusal(self.model_id, self.size, at, node, self.times + 1)


@dataclass(frozen=True, slots=True)
class ModelNeed:
    """Queued jobs that need one model (by content id), and how many workers hold it now."""

    model_id: str
    engine: str
    size: int
    memory_mb: int
    jobs: int
    holders: int = 0
    seconds_per_job: float | None = None  # on the holders, as measured; None: DEFAULT_JOB_SECONDS


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node as a receiver of models."""

    node_id: str
    engines: frozenset[str]  # engines registered there (available or still waiting for a model)
    memory_mb: int
    space: int | None  # bytes it can take for models now; None: it cannot take pushes (older node)
    holds: frozenset[str] = frozenset()  # model ids it has
    busy: bool = False  # a transfer to it is under way
    refused: frozenset[str] = field(default_factory=frozenset)  # model ids whose refusal stands (not sent now)
    rate: float | None = None  # bytes/s measured to it; None: not measured


@dataclass(frozen=True, slots=True)
class Transfer:
    node_id: str
    model_id: str
    seconds: float  # the transfer's expected length


def transfer_seconds(size: int, rate: float | None) -> float:
    return size / (rate if rate and rate > 0 else DEFAULT_RATE)


def fits(need: ModelNeed, node: Candidate) -> bool:
    """Whether ``node`` can take and run ``need``'s model at all."""
    return (
        need.engine in node.engines
        and need.memory_mb <= node.memory_mb
        and node.space is not None
        and need.size <= node.space
        and need.model_id not in node.holds
        and need.model_id not in node.refused
    )


def plan_transfers(needs: Sequence[ModelNeed], nodes: Sequence[Candidate]) -> list[Transfer]:
    """The transfers to start now: at most one per node, the models most jobs wait for first."""
    free = {n.node_id: n for n in nodes if not n.busy}
    out: list[Transfer] = []
    for need in sorted(needs, key=lambda n: (-n.jobs, n.model_id)):
        if need.jobs <= 0:
            continue
        for node in sorted(free.values(), key=lambda n: transfer_seconds(need.size, n.rate)):
            if not fits(need, node):
                continue
            seconds = transfer_seconds(need.size, node.rate)
            if need.holders > 0:
                per_job = DEFAULT_JOB_SECONDS if need.seconds_per_job is None else need.seconds_per_job
                if seconds >= need.jobs * per_job / need.holders:
                    continue  # the holders are done sooner than the transfer would end
            out.append(Transfer(node.node_id, need.model_id, seconds))
            del free[node.node_id]
    return out


def rates(measured: Mapping[str, tuple[int, float]]) -> dict[str, float]:
    """Bytes per second per node from (bytes, seconds) measured while sending to it."""
    return {node: b / s for node, (b, s) in measured.items() if s > 0 and b > 0}


__all__ = [
    "DEFAULT_JOB_SECONDS",
    "DEFAULT_RATE",
    "RETRY_FIRST",
    "RETRY_MAX",
    "Candidate",
    "ModelNeed",
    "NodeState",
    "Refusal",
    "Transfer",
    "fits",
    "plan_transfers",
    "transfer_seconds",
]
