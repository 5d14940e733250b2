"""The pure scheduler: events and ``now`` in, decisions out. No sockets, no clock, no threads.

Placement rules, in order:
- a job only goes to a worker that is online, not paused, can run its engine/model/memory, has not
  blocklisted that engine, and has room (slots, plus one queued ahead on peers so a GPU never idles
  during an upload; on a node not timed yet, only once its engine runs a job, and on this PC's shared
  link only if the next upload would end before a job timed elsewhere); a job whose engine has ended
  there (:meth:`Scheduler.computed`) no longer takes room while its result is downloaded, so the next
  upload overlaps that download;
- a worker's expected time for a job is its engine time plus, on a node, the job's transfer at the
  link rate measured for that node (this PC moves no bytes);
- among the jobs a worker can take, the highest priority first, FIFO within one;
- a retried job (its worker failed or vanished) goes to another peer, the local worker last;
- at the tail of the queue, a job waits for faster workers when they would end the whole queue before it
  would end here; a busy worker queues a job ahead only while it would end within the farm's drain time
  (counted over the workers that take part: all early in a batch, the fast ones at its tail), and at
  the tail only where it would end about as soon as on any other worker;
- when the queue is empty, an idle worker re-runs a straggler's job if it would finish it much sooner:
  the first result wins, the other copy is cancelled, the output is written once.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
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
from farm.core.scheduler.speed import LinkEstimate, SpeedEstimate
from farm.core.scheduler.uplink import SharedUplink

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
    computed: set[str] = field(default_factory=set)  # workers whose engine ended (result not yet fetched)

    @property
    def retried(self) -> bool:
        return self.failures > 0 or self.lost > 0


@dataclass(slots=True)
class _Worker:
    caps: WorkerCaps
    online: bool = True
    paused: bool = False
    inflight: dict[str, float] = field(default_factory=dict)  # job -> start time (dispatch or started)
    fetching: dict[str, float] = field(default_factory=dict)  # jobs computed here, result being fetched -> since
    started: set[str] = field(default_factory=set)  # in-flight jobs whose engine has begun (the rest wait)
    speed: dict[str, SpeedEstimate] = field(default_factory=dict)
    link: LinkEstimate = field(default_factory=LinkEstimate)
    consecutive_failures: dict[str, int] = field(default_factory=dict)
    blocked_until: dict[str, float] = field(default_factory=dict)
    compat: dict[Kind, bool] = field(default_factory=dict)
    done: int = 0
    failed: int = 0
    order: int = 0  # registration order: ties between equally loaded workers break the same way every run
    cache: dict[tuple[object, ...], float | None] = field(default_factory=dict)  # expected(), per signature

    @property
    def id(self) -> str:
        return self.caps.id

    @property
    def held(self) -> bool:
        """No new job goes here: paused by the farm, or not available by its owner."""
        return self.paused or not self.caps.available

    def has_room(self) -> bool:
        return self.online and not self.held and len(self.inflight) < self.caps.capacity

    def blocked(self, engine: str, now: float) -> bool:
        return self.blocked_until.get(engine, 0.0) > now

    def predict(self, engine: str, megapixels: float) -> float | None:
        est = self.speed.get(engine)
        return est.predict(megapixels) if est else None

    def expected(self, req: JobRequest, ship_ratio: float) -> float | None:
        """Seconds from dispatch to result here: the engine time, plus the transfer on a node's link
        (cached per job signature until this worker's estimates or the ship ratio change)."""
        key = (req.engine, req.megapixels, req.transfer_bytes, req.shippable, ship_ratio)
        try:
            return self.cache[key]
        except KeyError:
            pass
        compute = self.predict(req.engine, req.megapixels)
        if compute is not None and not self.caps.local:
            compute += self.link.seconds_for(req.transfer_bytes * (ship_ratio if req.shippable else 1.0))
        if len(self.cache) > 64:
            self.cache.clear()
        self.cache[key] = compute
        return compute

    def cycle(self, req: JobRequest, expected: float) -> float:
        """Seconds per job here in a steady stream: a node that queues a job ahead uploads the next input
        and downloads the last result while its engine runs, so the slowest of the three sets its pace
        (``expected``, their sum, is the pace of a worker that does one thing at a time)."""
        if self.caps.capacity <= self.caps.slots:
            return expected
        compute = self.predict(req.engine, req.megapixels) or 0.0
        return max(compute, (expected - compute) / 2)


class _Board:
    """The expected times of one job signature on the online, unheld workers, kept sorted and summed
    across fills: only the workers changed since (``Scheduler._stale``) are looked at again."""

    __slots__ = ("cut", "prefix", "ranked", "rate", "req", "shares", "times", "updates", "version")

    def __init__(self, req: JobRequest) -> None:
        self.req = req  # any job of the signature
        self.times: dict[str, tuple[float, int, float]] = {}  # worker -> (expected, order, slots / cycle)
        self.ranked: list[tuple[float, int, str]] = []  # fastest first
        self.shares: list[float] = []  # each ranked worker's jobs per second, in the same order
        self.rate = 0.0  # jobs per second of the whole farm
        self.updates = 0
        self.version = 0  # bumped by every change: the key of the caches below
        self.prefix: tuple[int, list[float]] = (-1, [])  # version -> running sums of shares
        self.cut: tuple[int, int, float] = (-1, -1, 0.0)  # (version, queued) -> drain_end

    def put(self, worker: _Worker, t: float | None) -> None:
        old = self.times.pop(worker.id, None)
        if old is not None:
            i = bisect.bisect_left(self.ranked, (old[0], old[1], worker.id))
            del self.ranked[i], self.shares[i]
            self.rate -= old[2]
        if t is not None:
            cycle = worker.cycle(self.req, t)
            share = worker.caps.slots / cycle if cycle > 0 else 0.0
            self.times[worker.id] = (t, worker.order, share)
            i = bisect.bisect_left(self.ranked, (t, worker.order, worker.id))
            self.ranked.insert(i, (t, worker.order, worker.id))
            self.shares.insert(i, share)
            self.rate += share
        self.version += 1
        self.updates += 1
        if self.updates > 512:  # the running sum never drifts far from the true one
            self.updates = 0
            self.rate = sum(v[2] for v in self.times.values())

    def drain_end(self, queued: int, margin: float) -> float:
        """How long from now the farm may take over ``queued`` jobs like this one before the last ends:
        the drain time of the workers that take part, plus the fastest one's time for a job, with the margin.

        A worker takes part when its own time for a job ends within that bound; as each slower worker
        joins, the farm's rate grows and the bound shrinks, so the ones taking part are the fastest few
        (all of them early in a batch, only the fast ones at its tail, where counting a slow node's rate
        would promise a drain sooner than the fast ones can deliver): a binary search over the running
        sums of the ranked workers' rates. Cached until the board or the queue changes."""
        if self.cut[0] == self.version and self.cut[1] == queued:
            return self.cut[2]
        ranked = self.ranked
        fastest = ranked[0][0] if ranked else 0.0
        rate = self.rate
        if ranked and rate > 1e-12 and ranked[-1][0] > (queued / rate + fastest) * margin:
            if self.prefix[0] != self.version:
                self.prefix = (self.version, list(itertools.accumulate(self.shares)))
            sums = self.prefix[1]
            lo, hi = 0, len(ranked) - 1  # the first k taking part: ranked[lo] passes, ranked[hi] does not
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if sums[mid] > 1e-12 and ranked[mid][0] <= (queued / sums[mid] + fastest) * margin:
                    lo = mid
                else:
                    hi = mid
            rate = sums[lo]
        end = (queued / rate + fastest) * margin if rate > 1e-12 else float("inf")
        self.cut = (self.version, queued, end)
        return end


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
    fetching: tuple[str, ...] = ()  # jobs whose engine ended here and whose result is being fetched
    samples: dict[str, int] = field(default_factory=dict)  # engine timings measured per engine


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
        self.ship_ratio = 1.0  # bytes a shipped cut moves per byte of the whole files (measured: shipped())
        self._ratio = 1.0  # the ship ratio estimates use: follows ship_ratio in steps of a few per cent
        self._boards: dict[tuple[object, ...], _Board] = {}  # per job signature, across fills
        self._stale: set[str] = set()  # workers whose estimates or state changed since the boards saw them
        self._slots: int | None = None  # slots of the online, unheld workers (None: count again)
        self._fill_queued = 0
        self._parked: dict[str, float] = {}  # workers a fill refused -> when their job would have ended
        self._park_heap: list[tuple[float, str]] = []
        self._park_reqs: dict[tuple[object, ...], JobRequest] = {}
        self._online_n: int | None = None
        self._untimed_refused: set[str] = set()  # nodes not timed yet refused a job ahead (asked again once one is)
        self._uplink = SharedUplink()  # the uploads in line on this PC's link, to the nodes that share it
        self._fastest_link: tuple[float, str] | None = None  # the fastest measured link rate, and whose

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

    def started(self, job_id: str, worker_id: str, now: float) -> list[Decision]:
        """The worker began computing (after any upload or wait in its queue): timing starts here. A node
        not timed yet may now take a job ahead (:meth:`_strands`): the fill runs for it."""
        job = self._jobs.get(job_id)
        worker = self._workers.get(worker_id)
        if not (job and worker and worker_id in job.assigned and job_id in worker.inflight):
            return []
        job.assigned[worker_id] = now
        worker.inflight[job_id] = now
        worker.started.add(job_id)
        self.uploaded(job_id, worker_id, now)
        if worker.has_room() and worker.predict(job.req.engine, job.req.megapixels) is None:
            self._touch(worker)  # a node not timed yet: whether its next job goes ahead is _ahead_untimed's call
            return self._fill(now)
        return []

    def uploaded(self, job_id: str, worker_id: str, now: float) -> None:
        """A job's input has reached its node (its engine may still wait there for a slot)."""
        if self._uplink.arrived((job_id, worker_id), now, self._uplink_rate()) and self._parked:
            self._unpark_all()  # this PC's link frees sooner than the refusals counted on

    def computed(self, job_id: str, worker_id: str, now: float) -> list[Decision]:
        """The worker's engine has ended the job; its result is being fetched. The job stops taking room
        there (the next job's upload overlaps this download) and the engine time is measured now. When
        another copy's result is being fetched too, only the one expected to arrive first goes on."""
        job = self._jobs.get(job_id)
        worker = self._workers.get(worker_id)
        if job is None or worker is None or worker_id not in job.assigned or job_id not in worker.inflight:
            return []
        start = worker.inflight.pop(job_id)
        worker.started.discard(job_id)
        worker.fetching[job_id] = now
        self.uploaded(job_id, worker_id, now)
        job.computed.add(worker_id)
        self._measure(worker, job, now - start)
        self._touch(worker)
        out: list[Decision] = []
        rival = next((w for w in job.computed if w != worker_id and job_id in self._workers[w].fetching), None)
        if rival is not None:  # a job has one copy at most besides: its result is downloading too
            # two downloads of one result only share the links (the lab's two 44 MB copies over one 100 Mbit/s
            # link took 6.3 s where one took 3.7 s): the one that would arrive later is dropped
            legs = self._legs(worker, job.req)
            mine = now + legs[1] if legs is not None else float("inf")
            theirs = self._fetched_by(self._workers[rival], job)
            loser = worker_id if theirs is None or theirs <= mine else rival
            out = self._drop_copy(job, loser, "another copy's result arrives sooner")
        return out + self._fill(now)

    def _drop_copy(self, job: _Job, worker_id: str, reason: str) -> list[Decision]:
        """Stop one copy of ``job``: the worker is freed of it and told to cancel it."""
        self._forget_copy(job.req.id, job, worker_id)
        return [Cancel(job.req.id, worker_id, reason)]

    def _forget_copy(self, job_id: str, job: _Job | None, worker_id: str) -> bool:
        """``worker_id``'s copy of the job is gone (dropped, or failed there): the worker is freed of it, and
        the job no longer counts it. Whether the job had that copy (a late report of one dropped has none)."""
        worker = self._workers.get(worker_id)
        if worker is not None:  # its room, its place in the upload line and its fetch
            worker.inflight.pop(job_id, None)
            worker.started.discard(job_id)
            worker.fetching.pop(job_id, None)
            self._uplink.dropped((job_id, worker_id))
            self._touch(worker)
        if job is None:
            return False
        job.computed.discard(worker_id)
        return job.assigned.pop(worker_id, None) is not None

    def link_measured(self, worker_id: str, nbytes: int, seconds: float) -> None:
        """A transfer to or from a worker took ``seconds`` for ``nbytes``."""
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.link.add(nbytes, seconds)
            self._link_changed(worker)

    def recall(self, worker_id: str, engine: str, seconds_per_mp: float) -> bool:
        """A worker's speed for ``engine`` as an earlier batch measured it (the farm remembers them): it
        stands until a job is timed there, which replaces it. A node known from before is then placed by
        its time, and takes a job ahead, from the first job of a batch. True if it was taken."""
        worker = self._workers.get(worker_id)
        if worker is None:
            return False
        est = worker.speed.setdefault(engine, SpeedEstimate(alpha=self.policy.speed_alpha))
        if not est.recall(seconds_per_mp):
            return False
        self._changed(worker)
        return True

    def recall_link(self, worker_id: str, rate: float) -> bool:
        """A node's link rate as an earlier batch measured it: it stands until transfers there are timed.
        True if it was taken."""
        worker = self._workers.get(worker_id)
        if worker is None or not worker.link.recall(rate):
            return False
        self._link_changed(worker)
        return True

    def measured(self, worker_id: str) -> tuple[dict[str, float], float | None]:
        """What this run timed on a worker, to remember for the next: its seconds per megapixel per engine,
        and its link rate (None: no transfer timed). Recalled figures not confirmed here are left out."""
        worker = self._workers.get(worker_id)
        if worker is None:
            return {}, None
        speeds = {e: s.seconds_per_mp for e, s in worker.speed.items() if s.samples and s.seconds_per_mp}
        return speeds, worker.link.rate if worker.link.measured else None

    def _link_changed(self, worker: _Worker) -> None:
        self._changed(worker)
        rate, fastest = worker.link.rate, self._fastest_link
        if rate is not None and (fastest is None or rate >= fastest[0]):
            self._fastest_link = (rate, worker.id)
        elif fastest is not None and fastest[1] == worker.id:  # the fastest slowed down: look again
            rates = ((w.link.rate, w.id) for w in self._workers.values() if w.link.rate is not None)
            self._fastest_link = max(rates, default=None)

    def shares_uplink(self, worker_id: str) -> bool:
        """Whether uploads to this node wait for the others on this PC's link (the dispatcher sends them one
        at a time): yes, unless its own measured link is under half the fastest one measured (then its link,
        not this PC's, bounds its uploads), or the policy says this PC's link is no bottleneck."""
        worker = self._workers.get(worker_id)
        if worker is None or worker.caps.local or not self.policy.shared_uplink:
            return False
        mine, fastest = worker.link.rate, self._fastest_link
        return mine is None or fastest is None or 2 * mine >= fastest[0]

    def link_rate(self, worker_id: str) -> float | None:
        """The measured link rate to a worker in bytes per second (None before any transfer)."""
        worker = self._workers.get(worker_id)
        return worker.link.rate if worker is not None else None

    def shipped(self, ratio: float) -> None:
        """A job travelled as a cut of ``ratio`` times its whole files (moving average over the farm)."""
        if ratio > 0:
            self.ship_ratio += 0.3 * (min(ratio, 1.0) - self._ratio)
            if abs(self.ship_ratio - self._ratio) > 0.03 * self._ratio:
                self._ratio = self.ship_ratio
                self._boards.clear()
                self._unpark_all()

    def succeeded(self, job_id: str, worker_id: str, now: float) -> tuple[bool, list[Decision]]:
        """A worker has the result. True if it is the first: the caller then writes the output and
        calls :meth:`committed`; other copies are cancelled. False: drop the result (a late copy)."""
        job = self._jobs.get(job_id)
        worker = self._workers.get(worker_id)
        start = job.assigned.pop(worker_id, None) if job else None
        if worker is not None:
            started = worker.inflight.pop(job_id, None)
            worker.started.discard(job_id)
            worker.fetching.pop(job_id, None)
            self._uplink.dropped((job_id, worker_id))
            self._touch(worker)
        if job is None or start is None or job.state != ACTIVE:
            return False, self._fill(now)
        if worker is not None:
            worker.done += 1
            worker.consecutive_failures.pop(job.req.engine, None)
            if worker_id not in job.computed:  # else measured when its engine ended
                self._measure(worker, job, now - (started if started is not None else start))
        for loser_id, since in job.assigned.items():  # a copy still running elsewhere lost the race
            loser = self._workers.get(loser_id)
            if loser is not None and loser.predict(job.req.engine, job.req.megapixels) is None:
                # it has no estimate yet: it needed at least this long (provisional, replaced by a real one)
                est = loser.speed.setdefault(job.req.engine, SpeedEstimate(alpha=self.policy.speed_alpha))
                est.at_least(now - since, job.req.megapixels)
                self._changed(loser)
        self._set(job, COMMITTING)
        job.winner = worker_id
        out: list[Decision] = self._release_all(job, "another worker finished it first")
        return True, out + self._fill(now)

    def _measure(self, worker: _Worker, job: _Job, seconds: float) -> None:
        est = worker.speed.setdefault(job.req.engine, SpeedEstimate(alpha=self.policy.speed_alpha))
        first = est.samples == 0
        est.add(seconds, job.req.megapixels)
        self._changed(worker)
        if first and self._untimed_refused:  # a first timing: the nodes not timed yet weigh their uploads by it
            # (only those whose link is measured: without a rate, _ahead_untimed says no whatever the timings)
            ready = [w for w in self._untimed_refused if self._workers[w].link.rate is not None]
            for worker_id in ready:
                self._unpark(worker_id)
                self._untimed_refused.discard(worker_id)

    def _changed(self, worker: _Worker) -> None:
        """A worker's estimates changed: its cached expected times and its place on the boards go."""
        worker.cache.clear()
        self._stale.add(worker.id)
        self._unpark(worker.id)

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
        if not self._forget_copy(job_id, job, worker_id) or job is None or job.state != ACTIVE:
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
            worker.cache.clear()
        self._slots = None
        self._online_n = None
        self._unpark_all()
        self._touch(worker)
        return self._fill(now)

    def worker_down(self, worker_id: str, now: float, reason: str = "worker went offline") -> list[Decision]:
        """A worker vanished: each of its jobs is requeued (or left to its other running copy)."""
        worker = self._workers.get(worker_id)
        if worker is None:
            return []
        worker.online = False
        self._slots = self._online_n = None
        self._unpark_all()
        self._touch(worker)
        out: list[Decision] = []
        for job_id in [*worker.inflight, *worker.fetching]:
            out += self.failed(job_id, worker_id, FailureKind.LOST, reason, now)
        return out + self._fill(now)

    def set_worker_paused(self, worker_id: str, paused: bool, now: float) -> list[Decision]:
        worker = self._workers.get(worker_id)
        if worker is not None:
            worker.paused = paused
            self._slots = self._online_n = None
            self._unpark_all()
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

    def request(self, job_id: str) -> JobRequest | None:
        """The request a job was added with (None: no such job)."""
        job = self._jobs.get(job_id)
        return job.req if job is not None else None

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
                tuple(w.fetching),
                {e: s.samples for e, s in w.speed.items()},
            )
            for w in self._workers.values()
        ]

    def expected(self, worker_id: str, req: JobRequest) -> float | None:
        """Seconds from dispatch to result for ``req`` on that worker: its engine time, plus a node's
        transfer at its measured link rate (None: not measured there, or no such worker)."""
        worker = self._workers.get(worker_id)
        return worker.expected(req, self._ratio) if worker is not None else None

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
        self._stale.add(worker.id)
        if self._parked:
            self._parked.pop(worker.id, None)
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
        self._unpark_all()  # the queue grew: every refusal is weighed again
        job.version += 1
        heap = self._queues.setdefault(job.req.kind, [])
        heapq.heappush(heap, (-job.req.priority, job.seq, job.version, job.req.id))

    def _valid(self, entry: tuple[int, int, int, str]) -> bool:
        job = self._jobs[entry[3]]
        return job.state == QUEUED and job.version == entry[2]

    def _release_all(self, job: _Job, reason: str) -> list[Decision]:
        out: list[Decision] = []
        for wid in list(job.assigned):
            out += self._drop_copy(job, wid, reason)
        job.computed.clear()
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
        if job.retried and worker.caps.local:  # retries go to another peer (one not parked), the local worker last
            return not any(
                w is not worker and not w.caps.local and w.id not in self._parked and self._could_run(job, w, now)
                for w in self._workers.values()
            )
        return True

    def _could_run(self, job: _Job, worker: _Worker, now: float, *, later: bool = False) -> bool:
        """``later``: a node its owner holds now (paused, schedule, nimby) counts: it comes back."""
        return (
            worker.online
            and not (worker.paused if later else worker.held)
            and worker.id not in job.excluded
            and not worker.blocked(job.req.engine, now)
            and worker.caps.can_run(job.req)
        )

    def _anyone_could_run(self, job: _Job, now: float, *, ignore_busy: bool) -> bool:
        return any(
            self._could_run(job, w, now, later=ignore_busy) and (ignore_busy or w.has_room())
            for w in self._workers.values()
        )

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
        self._fill_queued = self._work_left()  # the drain estimates of this fill count the work at its start
        tail = self._queued <= self._online_slots()
        self._unpark_due(now)
        room = self._room.difference(self._parked) if self._parked else self._room
        while self._queued:
            candidates = [self._workers[w] for w in room if w not in waiting]
            if not candidates:
                break
            # idle workers first; peers before the local worker at equal load
            candidates.sort(key=lambda w: (len(w.inflight) / max(1, w.caps.slots), w.caps.local, w.order))
            progressed = False
            refused: dict[str, float] = {}  # job -> the fastest idle worker that left it for others
            for worker in candidates:
                if not worker.has_room():
                    continue
                job = self._best_job_for(worker, now)
                idle = not worker.inflight
                t = worker.expected(job.req, self._ratio) if job is not None and idle else None
                if job is not None and t is not None and t >= refused.get(job.req.id, float("inf")):
                    waiting.add(worker.id)  # a faster idle worker left it for others: so does this one
                    continue
                if job is None:
                    waiting.add(worker.id)
                    continue
                stranded = self._strands(job, worker, now, tail)
                if stranded is not None or self._should_wait(job, worker, now):
                    if t is not None:
                        refused[job.req.id] = min(t, refused.get(job.req.id, t))
                    waiting.add(worker.id)
                    if stranded is not None:
                        self._park(worker, stranded, job.req)
                    continue
                self._assign(job, worker, now)
                out.append(Dispatch(job.req.id, worker.id))
                progressed = True
            if not progressed:
                break
        return out

    def _strands(self, job: _Job, worker: _Worker, now: float, tail: bool) -> float | None:
        """Whether ``job``, queued ahead on busy ``worker``, would wait there longer than it should: None
        if not, else when it would end there (infinite: refused whatever the time), for :meth:`_park`.

        Near the end (no more queued jobs than slots) a job is queued ahead only where it would end about as
        soon as on any other worker once a slot frees there (:meth:`_ends_soonest_here`). At any time, a
        job is left for the rest of the farm when waiting for a slot here and running here would end
        later than the farm drains its queue and runs it on its fastest worker (a job queued behind a slow
        node's 6 s job, or started there, while fast nodes are about to idle). Early in a batch the queue
        takes long to drain, so every worker takes work.
        """
        busy = len(worker.inflight) >= worker.caps.slots
        legs = self._legs(worker, job.req)
        if busy and tail and legs is None:
            return float("inf")
        if legs is None:
            # not timed yet: no job queued ahead there (a small batch is not handed to a node that may
            # turn out slow before anything has been timed), unless its upload hides behind a running job
            others = self._online_count() > (1 if worker.online and not worker.paused else 0)
            if not busy or not others or self._ahead_untimed(worker, job, now):
                return None
            if worker.started:  # asked again once another worker is first timed (_measure)
                self._untimed_refused.add(worker.id)
            return float("inf")
        compute, one_way = legs  # the upload overlaps the wait for a slot
        wait = max(0.0, self._slot_free_at(worker, job, now) - now) if busy else 0.0
        ready = self._upload_free_at(worker, now)
        finish = max(wait, ready - now + one_way) + compute + one_way
        if busy and tail and not self._ends_soonest_here(worker, job, finish, now):
            return float("inf")
        if finish > self._threshold(job.req):
            return now + finish
        return None

    def _ends_soonest_here(self, worker: _Worker, job: _Job, finish: float, now: float) -> bool:
        """At the tail: whether ``job``, queued ahead on ``worker``, would end there (``finish`` from now)
        about as soon as on any other worker, each starting it once a slot frees there. A node whose next
        upload overlaps its running job ends a job sooner this way than its one-at-a-time time says (the
        lab's 100 Mbit/s nodes: 1 s a job queued ahead, 1.9 s alone with the transfers, against 1.2 s on
        this PC busy for another second), where a slow node's queue would hold the job past the rest."""
        bar = now + finish / self.policy.tail_margin  # another worker ending it before this, ends it sooner
        for t, _, wid in self._board(job.req).ranked:  # fastest first: none later can start before now
            if now + t >= bar:
                break
            other = self._workers[wid]
            if other is worker or not self._could_run(job, other, now) or not self._eligible(job, other, now):
                continue
            if self._slot_free_at(other, job, now) + t < bar:
                return False
        return True

    def _ahead_untimed(self, worker: _Worker, job: _Job, now: float) -> bool:
        """Whether a node not timed yet takes ``job`` ahead: once its engine runs a first job, while the
        queue holds another round for every slot. On a link of its own, at once (its upload takes no
        other node's turn); on this PC's shared link, when the input would be there (at its measured link
        rate, behind the uploads in line) before the fastest worker ends a job like it. Its upload and
        decoding then overlap the job running there; without it, that node would idle for both once its
        first job ends (0.4-0.9 s of each 1 s job on the lab's nodes, 0.64 s on a 100 Mbit/s node of the
        simulated farm at scale)."""
        if not worker.started or worker.link.rate is None or self._queued <= 2 * self._online_slots():
            return False
        if not self.shares_uplink(worker.id):
            return True
        req = job.req
        one_way = worker.link.seconds_for(req.transfer_bytes * (self._ratio if req.shippable else 1.0)) / 2
        return self._upload_free_at(worker, now) - now + one_way < self._fastest(job, 0.0)

    def _upload_free_at(self, worker: _Worker, now: float) -> float:
        """When a next upload to ``worker`` could begin: after its own uploads still going, and on a shared
        link after all the uploads in line."""
        ready = self._uploads_end(worker, None, now)
        if self.shares_uplink(worker.id):
            ready = max(ready, self._uplink.end(now, self._uplink_rate()))
        return ready

    def _work_left(self) -> int:
        """The jobs the farm has yet to drain, for the drain estimates: the queued ones, and half of those in
        flight (on average half done; counting only the queue promised a drain a round of jobs too soon,
        and slow nodes were left idle while the fast ones were still busy)."""
        return self._queued + len(self._active) // 2

    def _threshold(self, req: JobRequest) -> float:
        """How long from now a job like ``req`` may take on a worker before it is left for the rest of
        the farm: the farm's drain time of the queue plus its fastest worker's time, with the margin."""
        return self._board(req).drain_end(self._fill_queued, self.policy.tail_margin)

    # A worker refused a job in a fill is parked: later fills skip it until the time its job would have
    # ended there falls within the threshold (that end only grows with time while nothing happens on
    # that worker), or until something happens on it, or the queue grows.
    def _park(self, worker: _Worker, end: float, req: JobRequest) -> None:
        self._parked[worker.id] = end
        self._park_reqs[self._signature(req)] = req
        if end != float("inf"):
            heapq.heappush(self._park_heap, (end, worker.id))
            if len(self._park_heap) > 4 * len(self._parked) + 64:  # drop the entries of unparked workers
                self._park_heap = [e for e in self._park_heap if self._parked.get(e[1]) == e[0]]
                heapq.heapify(self._park_heap)

    def _unpark(self, worker_id: str) -> None:
        self._parked.pop(worker_id, None)

    def _unpark_all(self) -> None:
        self._parked.clear()
        self._park_heap.clear()
        self._park_reqs.clear()

    def _unpark_due(self, now: float) -> None:
        if not self._parked:
            if self._park_heap or self._park_reqs:
                self._unpark_all()
            return
        heap = self._park_heap
        if not heap:
            return
        due = now + max(self._threshold(req) for req in self._park_reqs.values())
        while heap and heap[0][0] <= due:
            end, wid = heapq.heappop(heap)
            if self._parked.get(wid) == end:
                del self._parked[wid]

    def _online_count(self) -> int:
        if self._online_n is None:
            self._online_n = sum(1 for w in self._workers.values() if w.online and not w.paused)
        return self._online_n

    @staticmethod
    def _signature(req: JobRequest) -> tuple[object, ...]:
        """What a worker's expected time for a job depends on."""
        return (req.engine, req.megapixels, req.transfer_bytes, req.shippable)

    def _board(self, req: JobRequest) -> _Board:
        """The up-to-date board of jobs like ``req`` (built once, then only changed workers move)."""
        if self._stale:
            for wid in self._stale:
                worker = self._workers.get(wid)
                if worker is None:
                    continue
                for kept in self._boards.values():
                    kept.put(worker, self._board_time(worker, kept.req))
            self._stale.clear()
        key = self._signature(req)
        board = self._boards.get(key)
        if board is None:
            if len(self._boards) >= 32:  # many sizes of jobs: keep the boards of the latest
                self._boards.clear()
            board = self._boards[key] = _Board(req)
            for worker in self._workers.values():
                board.put(worker, self._board_time(worker, req))
        return board

    def _board_time(self, worker: _Worker, req: JobRequest) -> float | None:
        return worker.expected(req, self._ratio) if worker.online and not worker.held else None

    def _fastest(self, job: _Job, default: float = 0.0) -> float:
        """The shortest expected time for ``job`` on any online worker (``default`` if none is measured)."""
        ranked = self._board(job.req).ranked
        return ranked[0][0] if ranked else default

    def _online_slots(self) -> int:
        if self._slots is None:
            self._slots = sum(w.caps.slots for w in self._workers.values() if w.online and not w.held)
        return self._slots

    def _assign(self, job: _Job, worker: _Worker, now: float) -> None:
        self._queued -= 1
        self._set(job, ACTIVE)
        job.assigned[worker.id] = now
        worker.inflight[job.req.id] = now
        self._sent(job, worker, now)
        self._touch(worker)

    def _sent(self, job: _Job, worker: _Worker, now: float) -> None:
        """A job goes to ``worker``: on a node that shares this PC's link, its upload joins the line."""
        if self.shares_uplink(worker.id):
            req = job.req
            up = req.transfer_bytes * (self._ratio if req.shippable else 1.0) / 2  # half up, half down
            self._uplink.sent((req.id, worker.id), up, now)

    def _uplink_rate(self) -> float | None:
        """This PC's link rate to the nodes that share it: the fastest measured to any node."""
        return self._fastest_link[0] if self._fastest_link else None

    def _slot_free_at(self, worker: _Worker, job: _Job, now: float) -> float:
        """When ``worker`` could start another job like ``job``, from its running jobs' estimates."""
        if len(worker.inflight) < worker.caps.slots:
            return now
        if worker.caps.slots == 1 and len(worker.inflight) == 1:  # the common node: one job, one slot
            ((jid, start),) = worker.inflight.items()
            running = self._jobs[jid].req
            t = worker.expected(running, self._ratio)
            if t is None:
                return float("inf")
            if jid in worker.started:
                return max(now, start + t)
            return now + (worker.predict(running.engine, running.megapixels) or t)
        slots: list[float] = []  # when each slot frees: the running jobs' expected ends
        queued: list[float] = []  # the jobs waiting there for a slot, each its engine time
        for jid, start in worker.inflight.items():
            other = self._jobs[jid]
            t = worker.expected(other.req, self._ratio)
            if t is None:
                return float("inf")
            if jid in worker.started:
                slots.append(max(now, start + t))
            else:
                queued.append(worker.predict(other.req.engine, other.req.megapixels) or t)
        slots += [now] * max(0, worker.caps.slots - len(slots))
        heapq.heapify(slots)
        for t in queued:  # each waiting job takes the slot that frees first
            heapq.heappush(slots, heapq.heappop(slots) + t)
        return slots[0]

    def _end_there(self, worker: _Worker, job: _Job, start: float, now: float) -> float | None:
        """When ``job``, in flight on ``worker`` since ``start``, is expected to end there (None: not timed).

        Started (its upload done): its start, its engine, its download. Still waiting there (queued ahead):
        its upload, then a slot behind the jobs sent there before it, then its engine and its download.
        Counted from its dispatch alone, a job queued behind another would look due a whole job too soon,
        and an idle worker would not back it up."""
        legs = self._legs(worker, job.req)
        if legs is None:
            return None
        compute, download = legs
        if job.req.id in worker.started:
            return start + compute + download
        slots: list[float] = []  # when each slot frees: the started jobs' engines end
        ahead: list[float] = []  # the jobs sent there before it that wait too, each its engine time
        for jid, since in worker.inflight.items():
            if jid == job.req.id:
                break
            other = self._jobs[jid].req
            t_other = worker.predict(other.engine, other.megapixels)
            if t_other is None:
                return None
            if jid in worker.started:
                slots.append(max(now, since + t_other))
            else:
                ahead.append(t_other)
        slots = sorted(slots)[: worker.caps.slots]
        slots += [now] * max(0, worker.caps.slots - len(slots))
        heapq.heapify(slots)
        for t_other in ahead:  # each waiting job takes the slot that frees first
            heapq.heappush(slots, heapq.heappop(slots) + t_other)
        uploaded = max(self._uploads_end(worker, job.req.id, now), start) + download
        return max(slots[0], uploaded, now) + compute + download

    def _fetched_by(self, worker: _Worker, job: _Job) -> float | None:
        """When the result of ``job``, computed on ``worker``, is expected to have downloaded (None: not timed).
        A whole 40 MB result takes seconds on a slow link: an idle worker may run the job again sooner."""
        legs = self._legs(worker, job.req)
        return worker.fetching[job.req.id] + legs[1] if legs is not None else None

    def _legs(self, worker: _Worker, req: JobRequest) -> tuple[float, float] | None:
        """A job's engine seconds on ``worker`` and its transfer each way (half of it up, half down; 0 on
        this PC), or None while the worker is not timed."""
        t = worker.expected(req, self._ratio)
        if t is None:
            return None
        compute = worker.predict(req.engine, req.megapixels) or 0.0
        return compute, (t - compute) / 2

    def _uploads_end(self, worker: _Worker, before: str | None, now: float) -> float:
        """When the uploads to ``worker`` of its jobs not started yet (those sent before job ``before``, or all)
        end: they go one after another, each from its dispatch at the earliest, each half its transfer."""
        if worker.caps.local:
            return now
        end = float("-inf")
        for jid, since in worker.inflight.items():
            if jid == before:
                break
            if jid in worker.started:
                continue
            legs = self._legs(worker, self._jobs[jid].req)
            if legs is not None:
                end = max(end, since) + legs[1]
        return max(end, now)

    def _should_wait(self, job: _Job, worker: _Worker, now: float) -> bool:
        """Tail rule: leave ``job`` for faster workers when they would end every queued job before it
        ended here.

        Only near the end of the queue (no more queued jobs than the farm has slots), and only with
        speed estimates. Each clearly faster worker could end a first job by its free slot plus its time,
        then one more per cycle (a node uploads the next input while its engine runs); when together they
        end all of the queue (this job and the rest, not only the ones ahead) before ``now`` plus this
        worker's time, this worker waits; else it takes the job, as one of the workers the tail needs.
        """
        t_here = worker.expected(job.req, self._ratio)
        if t_here is None or self._queued > self._online_slots():
            return False
        margin = self.policy.tail_margin
        finish_here = now + t_here
        need = self._queued
        board = self._board(job.req)
        for t, _, wid in board.ranked:  # fastest first: stop at the first not clearly faster
            if t * margin >= t_here:
                break
            w = self._workers[wid]
            if w is worker or not self._could_run(job, w, now) or not self._eligible(job, w, now):
                continue
            first_end = self._slot_free_at(w, job, now) + t * margin
            if first_end >= finish_here:
                continue
            share = board.times[wid][2]
            cycle = (w.caps.slots / share if share > 0 else t) * margin
            need -= (1 + int((finish_here - first_end) / cycle)) * max(1, w.caps.slots)
            if need <= 0:
                return True
        return False

    def _backups(self, now: float) -> list[Decision]:
        """With nothing queued, give an idle faster worker a copy of a straggler's job: one it would end
        ``backup_ratio`` times sooner, or only ``waiting_backup_ratio`` times sooner where the job still
        waits on its timed holder (queued ahead there, its engine not begun: nothing of it is done there, and
        the estimate of a job behind another errs late; the lab's last job waited 1.3 s behind one on a node
        while this PC and the other node idled, and would have ended 0.4 s sooner on either)."""
        if self.paused or self._queued:
            return []
        idle = sorted((self._workers[w] for w in self._room if not self._workers[w].inflight), key=lambda w: w.order)
        if not idle:
            return []
        stragglers: list[tuple[float, int, _Job, float]] = []  # (expected end on its holder, seq, job, ratio)
        for job in (self._jobs[j] for j in self._active):
            if job.backed_up or len(job.assigned) != 1:
                continue
            ((holder_id, start),) = job.assigned.items()
            holder = self._workers[holder_id]
            if job.req.id in holder.fetching:  # its engine is done: its result ends downloading
                end = self._fetched_by(holder, job)
                if end is None or end <= now:
                    continue  # not timed, or due any moment: no copy could come sooner
            else:
                end = self._end_there(holder, job, start, now)
            expected_end = end if end is not None else now
            if expected_end <= now:  # overdue, or no estimate yet: assume it needs as long again
                expected_end = now + (now - start)
            waiting = end is not None and job.req.id not in holder.started and job.req.id not in holder.fetching
            ratio = self.policy.waiting_backup_ratio if waiting else self.policy.backup_ratio
            stragglers.append((expected_end, job.seq, job, ratio))
        stragglers.sort(key=lambda e: (-e[0], e[1]))  # latest first
        out: list[Decision] = []
        for worker in idle:
            best: tuple[float, _Job] | None = None
            for expected_end, _, job, ratio in stragglers:
                if expected_end - now <= (best[0] if best else 0.0):
                    break  # no later job can gain more: a gain is at most its holder's time left
                if job.backed_up or worker.id in job.assigned or not self._could_run(job, worker, now):
                    continue
                t_here = worker.expected(job.req, self._ratio)
                if t_here is not None and now + t_here * ratio < expected_end:
                    gain = expected_end - (now + t_here)
                    if best is None or gain > best[0]:
                        best = (gain, job)
            if best is not None:
                job = best[1]
                job.backed_up = True
                job.assigned[worker.id] = now
                worker.inflight[job.req.id] = now
                self._sent(job, worker, now)
                self._touch(worker)
                out.append(Dispatch(job.req.id, worker.id, backup=True))
        return out


__all__ = ["LOCAL", "Scheduler", "WorkerStatus"]
