"""A discrete-event simulation of workers driving the pure scheduler with a fake clock.

Workers here are SIMULATED (a service time per megapixel times a slowdown); the scheduler is the real
one. Used by the policy tests (makespan with mixed speeds, failures) without sockets or sleeps.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from farm.core.scheduler import Cancel, Dispatch, FailureKind, Finished, JobRequest, Scheduler, WorkerCaps


@dataclass
class SimWorker:
    caps: WorkerCaps
    seconds_per_mp: float
    fail: bool = False
    running: list[str] = field(default_factory=list)  # computing now (<= slots)
    waiting: list[str] = field(default_factory=list)  # queued on the worker (prefetched)


class Simulation:
    def __init__(self, scheduler: Scheduler, workers: list[SimWorker], tick: float = 0.25) -> None:
        self.s = scheduler
        self.workers = {w.caps.id: w for w in workers}
        self.now = 0.0
        self.events: list[tuple[float, int, str, str, str]] = []  # (time, n, kind, job, worker)
        self.n = 0
        self.finished: dict[str, Finished] = {}
        self.ran: dict[str, list[str]] = {}
        self.commits: dict[str, int] = {}
        self.tick = tick
        self.megapixels: dict[str, float] = {}
        self.makespan = 0.0
        for w in workers:
            self.apply(scheduler.worker_up(w.caps, self.now))

    def _at(self, t: float, kind: str, job: str, worker: str) -> None:
        self.n += 1
        heapq.heappush(self.events, (t, self.n, kind, job, worker))

    def apply(self, decisions: list) -> None:  # type: ignore[type-arg]
        for d in decisions:
            if isinstance(d, Dispatch):
                w = self.workers[d.worker_id]
                w.waiting.append(d.job_id)
                self._start_next(w)
            elif isinstance(d, Cancel):
                w = self.workers[d.worker_id]
                if d.job_id in w.waiting:
                    w.waiting.remove(d.job_id)
                if d.job_id in w.running:
                    w.running.remove(d.job_id)
                    self._start_next(w)
            elif isinstance(d, Finished):
                self.finished[d.job_id] = d

    def _start_next(self, w: SimWorker) -> None:
        while w.waiting and len(w.running) < w.caps.slots:
            job = w.waiting.pop(0)
            w.running.append(job)
            self.ran.setdefault(job, []).append(w.caps.id)
            self._at(self.now + w.seconds_per_mp * self.megapixels[job], "end", job, w.caps.id)
            self.apply(self.s.started(job, w.caps.id, self.now))  # may queue the next job ahead

    def add(self, jobs: list[JobRequest]) -> None:
        for j in jobs:
            self.megapixels[j.id] = j.megapixels
        self.apply(self.s.add_jobs(jobs, self.now))

    def run(self, until: float = 10_000.0) -> float:
        next_tick = self.now + self.tick
        while (self.events or self.s.unfinished()) and self.now < until:
            t_event = self.events[0][0] if self.events else float("inf")
            if next_tick <= t_event:
                self.now = next_tick
                next_tick += self.tick
                self.apply(self.s.tick(self.now))
                continue
            self.now, _, _kind, job, wid = heapq.heappop(self.events)
            w = self.workers[wid]
            if job not in w.running:
                continue  # cancelled meanwhile
            w.running.remove(job)
            if w.fail:
                self.apply(self.s.failed(job, wid, FailureKind.ENGINE, f"{wid} broke", self.now))
            else:
                won, decisions = self.s.succeeded(job, wid, self.now)
                self.apply(decisions)
                if won:
                    self.makespan = self.now
                    self.commits[job] = self.commits.get(job, 0) + 1
                    self.apply(self.s.committed(job, self.now))
            self._start_next(w)
        return self.makespan


def warm(s: Scheduler, worker: str, seconds: float, now: float, n: int = 3) -> float:
    """Measure ``worker`` at ``seconds`` a job (two samples replace the warm-up one); the others pause."""
    others = [w.id for w in s.workers() if w.id != worker]
    for w in others:
        s.set_worker_paused(w, True, now)
    for i in range(n):
        job = f"warm-{worker}-{i}"
        out = s.add_jobs([JobRequest(job, "cv2")], now)
        assert [(d.job_id, d.worker_id) for d in out if isinstance(d, Dispatch)] == [(job, worker)]
        s.started(job, worker, now)
        now += seconds
        s.succeeded(job, worker, now)
        s.committed(job, now)
    for w in others:
        s.set_worker_paused(w, False, now)
    return now
