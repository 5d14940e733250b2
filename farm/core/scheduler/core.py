"""The pure scheduler: events and ``now`` in, decisions out. No sockets, no clock, no threads.

Placement rules, in order:
- a job only goes to a worker that is online, not paused, can run its engine/model/memory, has not
  blocklisted that engine, and has room (slots, plus one queued ahead on peers so a GPU never idles
  during an upload);
- among the jobs a worker can take, the highest priority first, FIFO within one;
- a retried job (its worker failed or vanished) goes to another peer, the local worker last;
- at the tail of the queue, a job waits for a faster worker when that one would finish it sooner;
- when the queue is empty, an idle worker re-runs a straggler's job if it would finish it much sooner:
  the first result wins, the other copy is cancelled, the output is written once.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from farm.core.scheduler.model import (
    LOCAL,
    Cancel,
    Decision,
    Dispatch,
    FailureKind,
    Finished,
    JobRequest,
    Phase,
    Policy,
    WorkerCaps,
)
from farm.core.scheduler.speed import SpeedEstimate

QUEUED, ACTIVE, COMMITTING = Phase.QUEUED, Phase.ACTIVE, Phase.COMMITTING
DONE, FAILED, CANCELLED = Phase.DONE, Phase.FAILED, Phase.CANCELLED
Kind = tuple[str, str | None, int, str | None]  # engine, model name, memory, model id


@dataclass(slots=True)
class _Job:
    req: JobRequest
    seq: int
    state: Phase = QUEUED
    version: int = 0
    assigned: dict[str, float] = field(default_factory=dict)  # worker -> start time
    failures: int = 0
    lost: int = 0
    errors: dict[str, str] = field(default_factory=dict)
    excluded: set[str] = field(default_factory=set)
    not_before: float = 0.0
    backed_up: bool = False
    winner: str | None = None

    @property
    def retried(self) -> bool:
        return self.failures > 0 or self.lost > 0


@dataclass(slots=True)
class _Worker:
    caps: WorkerCaps
    online: bool = True
    paused: bool = False
    inflight: dict[str, float] = field(default_factory=dict)  # job -> start time (dispatch or started)
    speed: dict[str, SpeedEstimate] = field(default_factory=dict)
    consecutive_failures: dict[str, int] = field(default_factory=dict)
    blocked_until: dict[str, float] = field(default_factory=dict)
    compat: dict[Kind, bool] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    order: int = 0  # registration order: ties between equally loaded workers break the same way every run

    @property
    def id(self) -> str:
        return self.caps.id

    def has_room(self) -> bool:
        return self.online and not self.paused and len(self.inflight) < self.caps.capacity

    def blocked(self, engine: str, now: float) -> bool:
        return self.blocked_until.get(engine, 0.0) > now

    def predict(self, engine: str, megapixels: float) -> float | None:
        est = self.speed.get(engine)
        return est.predict(megapixels) if est else None


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """A read-only view of one worker for dashboards and summaries."""

    id: str
    online: bool
    paused: bool
    running: tuple[str, ...]
    done: int
    failed: int
    blocked: tuple[str, ...]
    seconds_per_mp: dict[str, float]


class Scheduler:
    """Decides which worker runs which job. Every method takes ``now`` and returns decisions."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self._jobs: dict[str, _Job] = {}
        self._workers: dict[str, _Worker] = {}
        self._queues: dict[Kind, list[tuple[int, int, int, str]]] = {}
        self._delayed: list[tuple[float, int, str]] = []
        self._queued = 0
        self._seq = 0
        self._open = 0  # jobs queued, active or committing
        self._active: set[str] = set()  # jobs some worker runs now
        self._room: set[str] = set()  # workers that could take a job now
        self.paused = False

    # ----------------------------------------------------------------- jobs
    def add_jobs(self, requests: Iterable[JobRequest], now: float) -> list[Decision]:
        for req in requests:
            if req.id in self._jobs:
                raise ValueError(f"job {req.id} added twice")
            self._seq += 1
            job = _Job(req, self._seq, state=Phase.NEW)
            self._jobs[req.id] = job
            self._enqueue(job, now)
        return self._fill(now)

    def cancel(self, job_id: str, now: float) -> list[Decision]:
        job = self._jobs.get(job_id)
        if job is None or job.state in (DONE, FAILED, CANCELLED, COMMITTING):
            return []
        if job.state == QUEUED:
            self._queued -= 1
        out: list[Decision] = self._release_all(job, "cancelled by the user")
        self._set(job, CANCELLED)
        out.append(Finished(job_id, CANCELLED))
        return out + self._fill(now)

    def retry(self, job_id: str, now: float) -> list[Decision]:
        """Queue a failed or cancelled job again with a clean slate (a person asked for it)."""
        job = self._jobs[job_id]
        if job.state not in (FAILED, CANCELLED):
            return []
        job.failures = job.lost = 0
        job.errors.clear()
        job.excluded.clear()
        job.backed_up = False
        self._enqueue(job, now)
        return self._fill(now)

    def started(self, job_id: str, worker_id: str, now: float) -> None:
        """The worker began computing (after any upload or wait in its queue): timing starts here."""
        job = self._jobs.get(job_id)
        worker = self._workers.get(worker_id)
        if job and worker and worker_id in job.assigned and job_id in worker.inflight:
            job.assigned[worker_id] = now
            worker.inflight[job_id] = now

    def succeeded(self, job_id: str, worker_id: str, now: float) -> tuple[bool, list[Decision]]:
        """A worker has the result. True if it is the first: the caller then writes the output and
        calls :meth:`committed`; other copies are cancelled. False: drop the result (a late copy)."""
        job = self._jobs.get(job_id)
        worker = self._workers.get(worker_id)
        start = job.assigned.pop(worker_id, None) if job else None
        if worker is not None:
            worker.inflight.pop(job_id, None)
            self._touch(worker)
        if job is None or start is None or job.state != ACTIVE:
            return False, self._fill(now)
        if worker is not None:
            worker.done += 1
            worker.consecutive_failures.pop(job.req.engine, None)
            est = worker.speed.setdefault(job.req.engine, SpeedEstimate(alpha=self.policy.speed_alpha))
            est.add(now - start, job.req.megapixels)
        for loser_id, since in job.assigned.items():  # a copy still running elsewhere lost the race
            loser = self._workers.get(loser_id)
            if loser is not None and loser.predict(job.req.engine, job.req.megapixels) is None:
                # it has no estimate yet: it needed at least this long (provisional, replaced by a real one)
                est = loser.speed.setdefault(job.req.engine, SpeedEstimate(alpha=self.policy.speed_alpha))
                est.at_least(now - since, job.req.megapixels)
        self._set(job, COMMITTING)
        job.winner = worker_id
        out: list[Decision] = self._release_all(job, "another worker finished it first")
        return True, out + self._fill(now)

    def committed(self, job_id: str, now: float, error: str | None = None) -> list[Decision]:
        """The output was written (or could not be: ``error``); the job ends."""
        job = self._jobs[job_id]
        if job.state != COMMITTING:
            return []
        if error is None:
            self._set(job, DONE)
            return [Finished(job_id, DONE, job.winner)]
        self._set(job, FAILED)
        job.errors["output"] = error
        return [Finished(job_id, FAILED, job.winner, errors=dict(job.errors))]

    def failed(self, job_id: str, worker_id: str, kind: FailureKind, error: str, now: float) -> list[Decision]:
        """An attempt failed. INPUT ends the job; ENGINE retries elsewhere (and may blocklist the
        worker for that engine); LOST requeues it without blame."""
        job = self._jobs.get(job_id)
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.inflight.pop(job_id, None)
            self._touch(worker)
        if job is None or job.assigned.pop(worker_id, None) is None or job.state != ACTIVE:
            return self._fill(now)
        p = self.policy
        engine = job.req.engine
        job.errors[worker_id] = error
        out: list[Decision] = []
        if kind is FailureKind.INPUT:
            out += self._release_all(job, "the job cannot succeed anywhere")
            self._set(job, FAILED)
            return [*out, Finished(job_id, FAILED, worker_id, {worker_id: error})] + self._fill(now)
        if kind is FailureKind.ENGINE:
            job.failures += 1
            job.excluded.add(worker_id)
            if worker is not None:
                worker.failed += 1
                n = worker.consecutive_failures.get(engine, 0) + 1
                worker.consecutive_failures[engine] = n
                if n >= p.blocklist_after:
                    worker.blocked_until[engine] = now + p.blocklist_seconds
        else:
            job.lost += 1
            if job.lost >= 2 and worker_id in job.errors:
                job.excluded.add(worker_id)
        if job.assigned:  # a backup copy is still running: let it finish
            return out + self._fill(now)
        gave_up = job.failures >= p.max_attempts or job.lost > p.max_lost
        if gave_up or not self._anyone_could_run(job, now, ignore_busy=True):
            self._set(job, FAILED)
            return [*out, Finished(job_id, FAILED, worker_id, dict(job.errors))] + self._fill(now)
        if kind is FailureKind.ENGINE:
            job.not_before = now + p.retry_backoff * 2 ** (job.failures - 1)
        self._enqueue(job, now)
        return out + self._fill(now)

    # -------------------------------------------------------------- workers
    def worker_up(self, caps: WorkerCaps, now: float) -> list[Decision]:
        """A worker appeared or changed (slots, engines, models); its running jobs are kept."""
        worker = self._workers.get(caps.id)
        if worker is None:
            worker = self._workers[caps.id] = _Worker(caps, order=len(self._workers))
        else:
            worker.caps = caps
            worker.online = True
            worker.compat.clear()
        self._touch(worker)
        return self._fill(now)

    def worker_down(self, worker_id: str, now: float, reason: str = "worker went offline") -> list[Decision]:
        """A worker vanished: each of its jobs is requeued (or left to its other running copy)."""
        worker = self._workers.get(worker_id)
        if worker is None:
            return []
        worker.online = False
        self._touch(worker)
        out: list[Decision] = []
        for job_id in list(worker.inflight):
            out += self.failed(job_id, worker_id, FailureKind.LOST, reason, now)
        return out + self._fill(now)

    def set_worker_paused(self, worker_id: str, paused: bool, now: float) -> list[Decision]:
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.paused = paused
            self._touch(worker)
        return self._fill(now)

    def pause(self) -> None:
        self.paused = True

    def resume(self, now: float) -> list[Decision]:
        self.paused = False
        return self._fill(now)

    def tick(self, now: float) -> list[Decision]:
        """Time passed: backoffs expire, blocklists are forgiven, stragglers may get a backup."""
        while self._delayed and self._delayed[0][0] <= now:
            _, _, job_id = heapq.heappop(self._delayed)
            job = self._jobs[job_id]
            if job.state == QUEUED and job.not_before <= now:
                self._push(job)
        for worker in self._workers.values():
            for engine, until in list(worker.blocked_until.items()):
                if until <= now:
                    del worker.blocked_until[engine]
                    worker.consecutive_failures.pop(engine, None)
        return self._fill(now) + self._backups(now)

    def fail_unrunnable(self, now: float, why: Callable[[JobRequest], str]) -> list[Decision]:
        """End the queued jobs that no online worker could ever run (engine, model or memory)."""
        out: list[Decision] = []
        for job in self._jobs.values():
            if job.state == QUEUED and not self._anyone_could_run(job, now, ignore_busy=True):
                self._set(job, FAILED)
                self._queued -= 1
                job.errors["farm"] = why(job.req)
                out.append(Finished(job.req.id, FAILED, errors=dict(job.errors)))
        return out

    def all_queued_runnable(self, now: float) -> bool:
        """True when every queued job has some online worker that could run it (busy or not)."""
        return all(self._anyone_could_run(j, now, ignore_busy=True) for j in self._jobs.values() if j.state == QUEUED)

    # -------------------------------------------------------------- queries
    def state(self, job_id: str) -> Phase:
        return self._jobs[job_id].state

    def unfinished(self) -> int:
        return self._open

    def queued(self) -> int:
        return self._queued

    def workers(self) -> list[WorkerStatus]:
        return [
            WorkerStatus(
                w.id,
                w.online,
                w.paused,
                tuple(w.inflight),
                w.done,
                w.failed,
                tuple(sorted(w.blocked_until)),
                {e: s.seconds_per_mp for e, s in w.speed.items() if s.seconds_per_mp},
            )
            for w in self._workers.values()
        ]

    # ------------------------------------------------------------ internals
    def _set(self, job: _Job, state: Phase) -> None:
        """Every job state change goes through here, so the open count and active index stay true."""
        was_open = job.state in (QUEUED, ACTIVE, COMMITTING)
        is_open = state in (QUEUED, ACTIVE, COMMITTING)
        self._open += int(is_open) - int(was_open)
        if state == ACTIVE:
            self._active.add(job.req.id)
        else:
            self._active.discard(job.req.id)
        job.state = state

    def _touch(self, worker: _Worker) -> None:
        """Keep the set of workers with room in step after their in-flight jobs or state changed."""
        if worker.has_room():
            self._room.add(worker.id)
        else:
            self._room.discard(worker.id)

    def _enqueue(self, job: _Job, now: float) -> None:
        self._set(job, QUEUED)
        self._queued += 1
        if job.not_before > now:
            heapq.heappush(self._delayed, (job.not_before, job.seq, job.req.id))
            job.version += 1  # any older queue entry is stale
            return
        self._push(job)

    def _push(self, job: _Job) -> None:
        job.version += 1
        heap = self._queues.setdefault(job.req.kind, [])
        heapq.heappush(heap, (-job.req.priority, job.seq, job.version, job.req.id))

    def _valid(self, entry: tuple[int, int, int, str]) -> bool:
        job = self._jobs[entry[3]]
        return job.state == QUEUED and job.version == entry[2]

    def _release_all(self, job: _Job, reason: str) -> list[Decision]:
        out: list[Decision] = []
        for wid in list(job.assigned):
            worker = self._workers.get(wid)
            if worker is not None:
                worker.inflight.pop(job.req.id, None)
                self._touch(worker)
            out.append(Cancel(job.req.id, wid, reason))
        job.assigned.clear()
        return out

    def _compatible(self, worker: _Worker, kind: Kind, req: JobRequest) -> bool:
        ok = worker.compat.get(kind)
        if ok is None:
            ok = worker.caps.can_run(req)
            worker.compat[kind] = ok
        return ok

    def _eligible(self, job: _Job, worker: _Worker, now: float) -> bool:
        if worker.id in job.excluded or worker.id in job.assigned or job.not_before > now:
            return False
        if job.retried and worker.caps.local:  # retries go to another peer, the local worker last
            return not any(
                w is not worker and not w.caps.local and self._could_run(job, w, now) for w in self._workers.values()
            )
        return True

    def _could_run(self, job: _Job, worker: _Worker, now: float) -> bool:
        return (
            worker.online
            and not worker.paused
            and worker.id not in job.excluded
            and not worker.blocked(job.req.engine, now)
            and worker.caps.can_run(job.req)
        )

    def _anyone_could_run(self, job: _Job, now: float, *, ignore_busy: bool) -> bool:
        return any(self._could_run(job, w, now) and (ignore_busy or w.has_room()) for w in self._workers.values())

    def _best_job_for(self, worker: _Worker, now: float) -> _Job | None:
        best: tuple[int, int] | None = None
        best_job: _Job | None = None
        for kind, heap in self._queues.items():
            while heap and not self._valid(heap[0]):
                heapq.heappop(heap)
            if not heap or worker.blocked(kind[0], now):
                continue
            head = self._jobs[heap[0][3]]
            if not self._compatible(worker, kind, head.req):
                continue
            job = head if self._eligible(head, worker, now) else self._scan(heap, worker, now)
            if job is not None and (best is None or (-job.req.priority, job.seq) < best):
                best, best_job = (-job.req.priority, job.seq), job
        return best_job

    def _scan(self, heap: list[tuple[int, int, int, str]], worker: _Worker, now: float) -> _Job | None:
        """The best eligible job of one queue when its head is not (rare: exclusions after failures)."""
        found = None
        for entry in heap:
            if (
                self._valid(entry)
                and self._eligible(self._jobs[entry[3]], worker, now)
                and (found is None or entry < found)
            ):
                found = entry
        return self._jobs[found[3]] if found else None

    def _fill(self, now: float) -> list[Decision]:
        if self.paused or self._queued == 0 or not self._room:
            return []
        out: list[Decision] = []
        waiting: set[str] = set()
        tail = self._queued <= self._online_slots()
        while self._queued:
            candidates = [self._workers[w] for w in self._room if w not in waiting]
            if not candidates:
                break
            # idle workers first; peers before the local worker at equal load
            candidates.sort(key=lambda w: (len(w.inflight) / max(1, w.caps.slots), w.caps.local, w.order))
            progressed = False
            for worker in candidates:
                if not worker.has_room():
                    continue
                job = self._best_job_for(worker, now)
                if (
                    job is not None
                    and tail
                    and len(worker.inflight) >= worker.caps.slots
                    and not self._among_fastest(worker, job)
                ):
                    # near the end, a job queued ahead on a busy, slower node could be stranded there
                    job = None
                if job is None or self._should_wait(job, worker, now):
                    waiting.add(worker.id)
                    continue
                self._assign(job, worker, now)
                out.append(Dispatch(job.req.id, worker.id))
                progressed = True
            if not progressed:
                break
        return out

    def _among_fastest(self, worker: _Worker, job: _Job) -> bool:
        """Whether ``worker`` is known to be about as fast as the fastest worker for ``job``'s engine."""
        mine = worker.predict(job.req.engine, job.req.megapixels)
        if mine is None:
            return False
        best = min(
            (
                t
                for w in self._workers.values()
                if w.online and not w.paused and (t := w.predict(job.req.engine, job.req.megapixels)) is not None
            ),
            default=mine,
        )
        return mine <= best * self.policy.tail_margin

    def _online_slots(self) -> int:
        return sum(w.caps.slots for w in self._workers.values() if w.online and not w.paused)

    def _assign(self, job: _Job, worker: _Worker, now: float) -> None:
        self._queued -= 1
        self._set(job, ACTIVE)
        job.assigned[worker.id] = now
        worker.inflight[job.req.id] = now
        self._touch(worker)

    def _slot_free_at(self, worker: _Worker, job: _Job, now: float) -> float:
        """When ``worker`` could start another job like ``job``, from its running jobs' estimates."""
        if len(worker.inflight) < worker.caps.slots:
            return now
        ends = []
        for jid, start in worker.inflight.items():
            other = self._jobs[jid]
            t = worker.predict(other.req.engine, other.req.megapixels)
            if t is None:
                return float("inf")
            ends.append(max(now, start + t))
        ends.sort()
        # the slot that frees first; jobs queued ahead on the worker push it back
        ahead = len(worker.inflight) - worker.caps.slots
        t_job = worker.predict(job.req.engine, job.req.megapixels) or 0.0
        return ends[0] + ahead * t_job / max(1, worker.caps.slots)

    def _should_wait(self, job: _Job, worker: _Worker, now: float) -> bool:
        """Tail rule: leave ``job`` for a faster worker that would still finish it clearly sooner.

        Only near the end of the queue (no more queued jobs than the farm has slots), and only with
        speed estimates; the queued jobs ahead of this one claim the faster workers' slots first (a
        small earliest-finish simulation), so a fast worker is not counted on for more than it can take.
        """
        t_here = worker.predict(job.req.engine, job.req.megapixels)
        if t_here is None or self._queued > self._online_slots():
            return False
        margin = self.policy.tail_margin
        faster: list[tuple[_Worker, float]] = []
        for w in self._workers.values():
            if w is worker or not w.online or w.paused:
                continue
            t = w.predict(job.req.engine, job.req.megapixels)
            if t is not None and t * margin < t_here and self._could_run(job, w, now) and self._eligible(job, w, now):
                faster.append((w, t))
        if not faster:
            return False
        free = {w.id: self._slot_free_at(w, job, now) for w, _ in faster}
        key = (-job.req.priority, job.seq)
        ahead = sorted(
            (
                self._jobs[e[3]]
                for h in self._queues.values()
                for e in h
                if self._valid(e) and (-self._jobs[e[3]].req.priority, self._jobs[e[3]].seq) < key
            ),
            key=lambda j: (-j.req.priority, j.seq),
        )
        for other in ahead:
            best_w, best_end = None, float("inf")
            for w, _ in faster:
                t = w.predict(other.req.engine, other.req.megapixels)
                if t is not None and free[w.id] + t < best_end:
                    best_w, best_end = w, free[w.id] + t
            t_other_here = worker.predict(other.req.engine, other.req.megapixels) or 0.0
            if best_w is not None and best_end < now + t_other_here:
                free[best_w.id] = best_end
        finish_here = now + t_here
        return any(free[w.id] + t * margin < finish_here for w, t in faster)

    def _backups(self, now: float) -> list[Decision]:
        """With nothing queued, give an idle faster worker a copy of a straggler's job."""
        if self.paused or self._queued:
            return []
        out: list[Decision] = []
        idle = sorted((self._workers[w] for w in self._room if not self._workers[w].inflight), key=lambda w: w.order)
        for worker in idle:
            best: tuple[float, _Job, str] | None = None
            for job in (self._jobs[j] for j in self._active):
                if job.backed_up or len(job.assigned) != 1:
                    continue
                if not self._could_run(job, worker, now):
                    continue
                ((holder_id, start),) = job.assigned.items()
                holder = self._workers[holder_id]
                t_holder = holder.predict(job.req.engine, job.req.megapixels)
                t_here = worker.predict(job.req.engine, job.req.megapixels)
                if t_here is None:
                    continue
                expected_end = start + t_holder if t_holder is not None else now
                if expected_end <= now:  # overdue, or no estimate yet: assume it needs as long again
                    expected_end = now + (now - start)
                if now + t_here * self.policy.backup_ratio < expected_end:
                    gain = expected_end - (now + t_here)
                    if best is None or gain > best[0]:
                        best = (gain, job, holder_id)
            if best is not None:
                _, job, _ = best
                job.backed_up = True
                job.assigned[worker.id] = now
                worker.inflight[job.req.id] = now
                self._touch(worker)
                out.append(Dispatch(job.req.id, worker.id, backup=True))
        return out


__all__ = ["LOCAL", "Scheduler", "WorkerStatus"]
