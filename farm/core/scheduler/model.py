"""Value types the scheduler takes and returns. No I/O, no clocks: time is always passed in."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

LOCAL = "local"


class Phase(enum.StrEnum):
    """Where a job is in the scheduler's eyes (the wire and the store use the same words)."""

    NEW = "new"  # being added
    QUEUED = "queued"  # waiting for a worker
    ACTIVE = "active"  # at least one attempt runs (a backup copy may run too)
    COMMITTING = "committing"  # a result won and its output is being written
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class FailureKind(enum.StrEnum):
    """Why an attempt failed, which decides what happens next."""

    INPUT = "input"  # the job's own fault (corrupt image, bad mask): it would fail anywhere -> fail now
    ENGINE = "engine"  # the worker's engine failed: retry elsewhere, count towards the blocklist
    LOST = "lost"  # the worker vanished, timed out or the transfer broke: requeue, blame nobody


@dataclass(frozen=True, slots=True)
class JobRequest:
    """What the scheduler needs to know about a job to place it."""

    id: str
    engine: str
    megapixels: float = 1.0
    model: str | None = None
    memory_mb: int = 0
    priority: int = 0
    #: bytes a node would move for it (input and mask up, result down), as whole files; ``shippable``:
    #: only a cut of it travels (an inpaint's crop), so the farm's measured cut ratio scales it.
    transfer_bytes: int = 0
    shippable: bool = False
    model_id: str | None = None  # the model's content id: where a worker says its ids, it must hold this one

    @property
    def kind(self) -> tuple[str, str | None, int, str | None]:
        return (self.engine, self.model, self.memory_mb, self.model_id)


@dataclass(frozen=True, slots=True)
class WorkerCaps:
    """A worker as the scheduler sees it: capacity and capabilities."""

    id: str
    slots: int = 1
    engines: frozenset[str] = frozenset()
    models: Mapping[str, frozenset[str]] = field(default_factory=dict)
    memory_mb: int = 1 << 30
    local: bool = False
    prefetch: int | None = None  # jobs allowed in flight beyond the slots; default 1 for peers, 0 local
    available: bool = True  # False: its owner has it (paused, nimby, schedule, draining): no new job goes there
    model_ids: Mapping[str, frozenset[str]] | None = None  # content ids per engine; None: it says none

    @property
    def capacity(self) -> int:
        extra = self.prefetch if self.prefetch is not None else (0 if self.local else 1)
        return max(0, self.slots) + extra

    def can_run(self, job: JobRequest) -> bool:
        if job.engine not in self.engines or job.memory_mb > self.memory_mb:
            return False
        if job.model is None:
            return True
        if job.model_id is not None and self.model_ids is not None:  # a same-named other file never stands in
            return job.model_id in self.model_ids.get(job.engine, frozenset())
        known = self.models.get(job.engine)
        return known is None or job.model in known


@dataclass(frozen=True, slots=True)
class Dispatch:
    """Send ``job_id`` to ``worker_id``; ``backup`` when another worker already runs it (a straggler)."""

    job_id: str
    worker_id: str
    backup: bool = False


@dataclass(frozen=True, slots=True)
class Cancel:
    """Stop ``job_id`` on ``worker_id`` (the user cancelled it, or another copy already won)."""

    job_id: str
    worker_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Finished:
    """``job_id`` ended: state is done, failed or cancelled; ``errors`` names each worker's failure."""

    job_id: str
    state: Phase
    worker_id: str | None = None
    errors: Mapping[str, str] = field(default_factory=dict)

    @property
    def message(self) -> str:
        if len(self.errors) <= 1:
            return next(iter(self.errors.values()), "")
        return "; ".join(f"{w}: {e}" for w, e in self.errors.items())


Decision = Dispatch | Cancel | Finished


@dataclass(frozen=True, slots=True)
class Policy:
    """Tunables of the failure and speed policy (defaults follow Flamenco-like farms)."""

    max_attempts: int = 3  # engine failures of one job before it ends failed
    max_lost: int = 10  # lost attempts (node vanished) before it ends failed
    retry_backoff: float = 1.0  # seconds, doubled per failed attempt
    blocklist_after: int = 3  # consecutive engine failures of one engine on one worker
    blocklist_seconds: float = 300.0
    speed_alpha: float = 0.3  # weight of the newest sample in the moving average
    tail_margin: float = 1.1  # wait for a faster worker only if it finishes this much sooner
    backup_ratio: float = 1.5  # back up a straggler when the idle worker would finish this much sooner
    waiting_backup_ratio: float = 1.1  # ... or a job still waiting behind another on its node, this much sooner
    shared_uplink: bool = True  # uploads to nodes go one at a time over this PC's link (as the dispatcher sends them)
