"""A discrete-event model of a farm whose nodes have links: uploads, engines and downloads on a fake
clock, around the real pure scheduler (``bench/farm_at_scale.py`` and the scheduler's transfer tests).

Each node is SIMULATED: one engine slot, an upload channel (uploads one after another, as
:class:`farm.runtime.workers.RemoteWorker` sends them) and a download channel (full duplex: a result
downloads while the next input uploads). Transfers take bytes / the node's link rate; the model reports
each one to the scheduler (``link_measured``) and each engine end (``computed``), exactly as the
dispatcher does. This PC is a worker too (no transfers).
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque
from dataclasses import dataclass, field

from farm.core.scheduler import LOCAL, Cancel, Dispatch, Finished, JobRequest, Policy, Scheduler, WorkerCaps

ENGINE = "lama"


@dataclass
class Node:
    id: str
    seconds_per_job: float
    rate: float  # link bytes per second (0 for this PC)
    up: deque[str] = field(default_factory=deque)
    down: deque[str] = field(default_factory=deque)
    up_busy: bool = False
    down_busy: bool = False
    ready: deque[str] = field(default_factory=deque)
    computing: str | None = None
    cancelled: set[str] = field(default_factory=set)


class FarmModel:
    def __init__(self, nodes: list[Node], moved: dict[str, int], blind: bool) -> None:
        self.s = Scheduler(Policy(shared_uplink=False))  # each node's own link is its bottleneck, not this PC's
        self.nodes = {n.id: n for n in nodes}
        self.moved = moved  # bytes each job moves each way
        self.blind = blind
        self.now = 0.0
        self.events: list[tuple[float, int, str, str, str]] = []
        self.seq = 0
        self.done: set[str] = set()
        self.calls = 0
        self.call_seconds = 0.0
        self.last_done = 0.0  # when the last job finished (a cancelled copy may still run past it)
        for n in nodes:
            caps = WorkerCaps(n.id, slots=1, engines=frozenset({ENGINE}), local=n.rate == 0)
            self.apply(self.call(self.s.worker_up, caps, 0.0))

    def call(self, fn, *args):  # type: ignore[no-untyped-def]
        began = time.perf_counter()
        out = fn(*args)
        self.call_seconds += time.perf_counter() - began
        self.calls += 1
        return out

    def at(self, t: float, kind: str, job: str, node: str) -> None:
        self.seq += 1
        heapq.heappush(self.events, (t, self.seq, kind, job, node))

    def apply(self, decisions: list) -> None:  # type: ignore[type-arg]
        for d in decisions:
            if isinstance(d, Dispatch):
                node = self.nodes[d.worker_id]
                node.cancelled.discard(d.job_id)
                if node.rate == 0:
                    node.ready.append(d.job_id)
                    self.pump(node)
                else:
                    node.up.append(d.job_id)
                    self.pump_up(node)
            elif isinstance(d, Cancel):
                self.nodes[d.worker_id].cancelled.add(d.job_id)
            elif isinstance(d, Finished):
                self.done.add(d.job_id)
                self.last_done = self.now

    def seconds(self, node: Node, job: str) -> float:
        return self.moved[job] / node.rate

    def pump_up(self, node: Node) -> None:
        while node.up and not node.up_busy:
            job = node.up.popleft()
            if job in node.cancelled:
                continue
            node.up_busy = True
            self.at(self.now + self.seconds(node, job), "uploaded", job, node.id)

    def pump_down(self, node: Node) -> None:
        while node.down and not node.down_busy:
            job = node.down.popleft()
            node.down_busy = True
            self.at(self.now + self.seconds(node, job), "downloaded", job, node.id)

    def pump(self, node: Node) -> None:
        while node.computing is None and node.ready:
            job = node.ready.popleft()
            if job in node.cancelled:
                continue
            node.computing = job
            self.apply(self.call(self.s.started, job, node.id, self.now))
            self.at(self.now + node.seconds_per_job, "computed", job, node.id)

    def run(self, requests: list[JobRequest]) -> float:
        """Run the batch to its end; the makespan: when its last job finished."""
        self.apply(self.call(self.s.add_jobs, requests, 0.0))
        next_tick = 0.25
        while self.events:
            if next_tick < self.events[0][0]:  # a tick first (what it dispatches may come before the next event)
                self.now = next_tick
                self.apply(self.call(self.s.tick, self.now))
                next_tick += 0.25
                continue
            t, _, kind, job, nid = heapq.heappop(self.events)
            self.now = t
            node = self.nodes[nid]
            if kind == "uploaded":
                node.up_busy = False
                if not self.blind:
                    self.call(self.s.link_measured, nid, self.moved[job], self.seconds(node, job))
                self.call(self.s.uploaded, job, nid, self.now)
                if job not in node.cancelled:
                    node.ready.append(job)
                self.pump_up(node)
                self.pump(node)
            elif kind == "computed":
                node.computing = None
                if job not in node.cancelled:
                    if node.rate == 0:
                        self.finish(job, nid)
                    else:
                        self.apply(self.call(self.s.computed, job, nid, self.now))
                        node.down.append(job)
                        self.pump_down(node)
                self.pump(node)
            elif kind == "downloaded":
                node.down_busy = False
                if not self.blind:
                    self.call(self.s.link_measured, nid, self.moved[job], self.seconds(node, job))
                if job not in node.cancelled:
                    self.finish(job, nid)
                self.pump_down(node)
        return self.last_done

    def finish(self, job: str, nid: str) -> None:
        won, decisions = self.call(self.s.succeeded, job, nid, self.now)
        self.apply(decisions)
        if won:
            self.apply(self.call(self.s.committed, job, self.now))


def farm(n_nodes: int, rng: random.Random) -> list[Node]:
    nodes = [Node(LOCAL, seconds_per_job=rng.choice([4.0, 6.0]), rate=0.0)]
    for i in range(n_nodes):
        gpu = rng.choice([0.5, 0.8, 1.2, 2.0, 3.0, 6.0])  # seconds a job: an RTX 4090 to an old card
        link = rng.choice([12.5e6, 12.5e6, 60e6, 117e6, 117e6])  # 100 Mbit/s, 500 Mbit/s, 1 Gbit/s
        nodes.append(Node(f"node{i:03d}", seconds_per_job=gpu, rate=link))
    return nodes


def ideal(nodes: list[Node], n_jobs: int, moved: int) -> float:
    rate = 0.0
    for n in nodes:
        per_job = n.seconds_per_job if n.rate == 0 else max(n.seconds_per_job, moved / n.rate)
        rate += 1.0 / per_job
    return max(n_jobs / rate, min(n.seconds_per_job for n in nodes))


def best_possible(nodes: list[Node], n_jobs: int, moved: int) -> float:
    """A lower bound for any schedule of whole jobs, even one that knew every speed in advance: a worker's
    k-th result comes no sooner than its first job's upload, engine and download, plus k - 1 of its
    cycles (the slowest of engine, upload and download), so the batch ends no sooner than the first time
    by which the workers together can have ended ``n_jobs``."""
    ends: list[float] = []
    for n in nodes:
        transfer = 0.0 if n.rate == 0 else moved / n.rate
        first, cycle = n.seconds_per_job + 2 * transfer, max(n.seconds_per_job, transfer)
        ends += [first + k * cycle for k in range(n_jobs)]
    return heapq.nsmallest(n_jobs, ends)[-1]
