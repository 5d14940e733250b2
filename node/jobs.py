"""The node's jobs, pure: states, a round-robin-by-client queue, retention. No sockets, no clocks inside.

Every method that depends on time takes ``now``; the executor feeds it one clock.
"""

from __future__ import annotations

import bisect
import enum
import itertools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from farm.core.job import JobState
from farm.core.spec import EditSpec
from farm.engines import CancelToken

CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


class Phase(enum.StrEnum):
    """Where a job is inside the node (``NodeJob.phase``, not on the wire; the wire has ``JobState``)."""

    QUEUED = "queued"  # in the fair queue
    PREPARING = "preparing"  # taken from the queue, its inputs being decoded
    READY = "ready"  # decoded, waiting for a slot
    ENGINE = "engine"  # holding a slot: its engine runs
    ENCODING = "encoding"  # slot released, its result being encoded and stored
    ENDED = "ended"  # finished (done, failed or cancelled)


_S = JobState
#: Node-side moves; a node never dispatches, and finished jobs stay finished.
NODE_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _S.QUEUED: frozenset({_S.RUNNING, _S.CANCELLED, _S.FAILED}),
    _S.RUNNING: frozenset({_S.DONE, _S.FAILED, _S.CANCELLED}),
    _S.DONE: frozenset(),
    _S.FAILED: frozenset(),
    _S.CANCELLED: frozenset(),
}


@dataclass(frozen=True, slots=True)
class ResultInfo:
    """Where a finished job's output lives (a blob) and what it is."""

    sha256: str
    size: int
    content_type: str

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "size": self.size, "content_type": self.content_type}


_seq = itertools.count()


@dataclass(slots=True, eq=False)
class NodeJob:
    """One job on this node. ``state`` changes only through :class:`JobBook`.

    ``state`` is the wire state: ``queued`` until its engine starts (``started``), ``running`` from
    then until its result is encoded and stored. ``phase`` (:class:`Phase`, not on the wire) says where
    a job is inside the node: queued, preparing, ready, engine, encoding; ended once finished.
    """

    id: str
    spec: EditSpec
    image: str
    mask: str | None
    client: str
    priority: int
    created: float
    state: JobState = JobState.QUEUED
    progress: float = 0.0
    error: str | None = None
    error_kind: str | None = None  # "input": the job's own fault (bad image/mask/spec); "engine": this node's
    result: ResultInfo | None = None
    started: float | None = None
    finished: float | None = None
    phase: Phase = Phase.QUEUED
    cancel: CancelToken = field(default_factory=CancelToken)
    seq: int = field(default_factory=lambda: next(_seq))
    encoded_as: str = ""  # the result's format once encoded (``keep`` becomes the input's own)

    @property
    def blobs(self) -> tuple[str, ...]:
        """The input blobs this job needs while queued or running."""
        return (self.image,) if self.mask is None else (self.image, self.mask)

    @property
    def content_type(self) -> str:
        """The result's media type (``keep`` is resolved when the result is encoded: ``encoded_as``)."""
        return CONTENT_TYPES[self.encoded_as or self.spec.output.format]

    def to_dict(self) -> dict[str, Any]:
        """The wire form (docs/protocol.md, "A job")."""
        return {
            "id": self.id,
            "state": str(self.state),
            "progress": self.progress,
            "error": self.error,
            "error_kind": self.error_kind,
            "engine": self.spec.engine,
            "client": self.client,
            "result": self.result.to_dict() if self.result else None,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }


class FairQueue:
    """Queued jobs, one lane per client, served round-robin; inside a lane, higher priority first."""

    def __init__(self) -> None:
        self._lanes: dict[str, list[tuple[int, int, NodeJob]]] = {}
        self._turn: deque[str] = deque()

    def __len__(self) -> int:
        return sum(len(lane) for lane in self._lanes.values())

    def __iter__(self) -> Iterator[NodeJob]:
        for lane in self._lanes.values():
            for _p, _s, job in lane:
                yield job

    def push(self, job: NodeJob) -> None:
        lane = self._lanes.get(job.client)
        if lane is None:
            lane = self._lanes[job.client] = []
            self._turn.append(job.client)
        bisect.insort(lane, (-job.priority, job.seq, job), key=lambda t: (t[0], t[1]))

    def pop(self) -> NodeJob | None:
        """The next job: the head of the lane whose turn it is; that lane then goes to the back."""
        if not self._turn:
            return None
        client = self._turn.popleft()
        lane = self._lanes[client]
        job = lane.pop(0)[2]
        if lane:
            self._turn.append(client)
        else:
            del self._lanes[client]
        return job

    def remove(self, job: NodeJob) -> bool:
        lane = self._lanes.get(job.client)
        if not lane:
            return False
        for i, (_p, _s, queued) in enumerate(lane):
            if queued is job:
                del lane[i]
                if not lane:
                    del self._lanes[job.client]
                    self._turn.remove(job.client)
                return True
        return False


class JobBook:
    """All jobs this node knows: the queue, the running set, finished ones until retention ends."""

    def __init__(self, *, retention: float) -> None:
        self.retention = retention
        self.jobs: dict[str, NodeJob] = {}
        self.queue = FairQueue()
        self.done = 0
        self.failed = 0

    def get(self, job_id: str) -> NodeJob | None:
        return self.jobs.get(job_id)

    @property
    def running(self) -> list[NodeJob]:
        """Jobs on an engine now (at most the node's slots); not those encoding their result."""
        return [j for j in self.jobs.values() if j.state is JobState.RUNNING and j.phase is Phase.ENGINE]

    @property
    def active(self) -> Iterator[NodeJob]:
        """Queued and running jobs (their input blobs must stay)."""
        return (j for j in self.jobs.values() if not j.state.finished)

    def submit(self, job: NodeJob) -> tuple[NodeJob, bool]:
        """Queue ``job`` unless its id is known; return the job kept and whether it is new."""
        known = self.jobs.get(job.id)
        if known is not None:
            return known, False
        self.jobs[job.id] = job
        self.queue.push(job)
        return job, True

    def take_next(self) -> NodeJob | None:
        """The next job in fair order, out of the queue; it stays queued until :meth:`start`."""
        return self.queue.pop()

    def start(self, job: NodeJob, now: float) -> bool:
        """Its engine starts now; False if the job was cancelled or failed since it was taken."""
        if job.state is not JobState.QUEUED:
            return False
        self._move(job, JobState.RUNNING, now)
        job.started = now
        job.phase = Phase.ENGINE
        return True

    def start_next(self, now: float) -> NodeJob | None:
        job = self.take_next()
        if job is not None:
            self.start(job, now)
        return job

    def progress(self, job: NodeJob, fraction: float) -> bool:
        """Record progress of a running job; False if it no longer runs (report dropped)."""
        if job.state is not JobState.RUNNING:
            return False
        job.progress = max(job.progress, min(1.0, max(0.0, fraction)))
        return True

    def succeed(self, job: NodeJob, result: ResultInfo, now: float) -> bool:
        if job.state is not JobState.RUNNING:
            return False
        job.result = result
        job.progress = 1.0
        self._move(job, JobState.DONE, now)
        return True

    def fail(self, job: NodeJob, error: str, now: float, *, kind: str = "engine") -> bool:
        if job.state.finished:
            return False
        if job.state is JobState.QUEUED:
            self.queue.remove(job)
        job.error = error
        job.error_kind = kind
        self._move(job, JobState.FAILED, now)
        return True

    def cancel(self, job: NodeJob, now: float) -> bool:
        """Queued: cancelled at once (True). Running: the engine is told to stop at its next step."""
        if job.state is JobState.QUEUED:
            self.queue.remove(job)
            self._move(job, JobState.CANCELLED, now)
            return True
        if job.state is JobState.RUNNING:
            job.cancel.cancel()
        return False

    def cancelled(self, job: NodeJob, now: float) -> bool:
        """The engine stopped a running job on request."""
        if job.state is not JobState.RUNNING:
            return False
        self._move(job, JobState.CANCELLED, now)
        return True

    def expire(self, now: float) -> list[NodeJob]:
        """Forget jobs finished more than ``retention`` seconds ago; return them (their results go)."""
        old = [j for j in self.jobs.values() if j.finished is not None and now - j.finished >= self.retention]
        for job in old:
            del self.jobs[job.id]
        return old

    def _move(self, job: NodeJob, to: JobState, now: float) -> None:
        if to not in NODE_TRANSITIONS[job.state]:
            raise AssertionError(f"job {job.id} cannot go from {job.state} to {to}")
        job.state = to
        if to.finished:
            job.finished = now
            job.phase = Phase.ENDED
            if to is JobState.DONE:
                self.done += 1
            elif to is JobState.FAILED:
                self.failed += 1


class ProgressThrottle:
    """At most one progress report per job every ``interval`` seconds; the final 1.0 always passes."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}

    def allow(self, job_id: str, fraction: float, now: float) -> bool:
        last = self._last.get(job_id)
        if fraction < 1.0 and last is not None and now - last < self.interval:
            return False
        self._last[job_id] = now
        return True

    def forget(self, job_id: str) -> None:
        self._last.pop(job_id, None)
