"""A job record and its state machine: queued -> dispatched -> running -> done | failed | cancelled."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from farm.core.spec import EditSpec
from farm.errors import IllegalTransition

if TYPE_CHECKING:
    from pathlib import Path


class JobState(enum.StrEnum):
    QUEUED = "queued"
    DISPATCHED = "dispatched"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


_S = JobState
#: Allowed moves. Dispatched/running may fall back to queued when a worker fails or vanishes;
#: failed and cancelled jobs may be queued again by a person (retry). Done is final.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    _S.QUEUED: frozenset({_S.DISPATCHED, _S.CANCELLED, _S.FAILED}),
    _S.DISPATCHED: frozenset({_S.RUNNING, _S.QUEUED, _S.DONE, _S.FAILED, _S.CANCELLED}),
    _S.RUNNING: frozenset({_S.DONE, _S.FAILED, _S.CANCELLED, _S.QUEUED}),
    _S.DONE: frozenset(),
    _S.FAILED: frozenset({_S.QUEUED}),
    _S.CANCELLED: frozenset({_S.QUEUED}),
}


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class Job:
    """One edit of one input image. ``state`` only changes through :meth:`move`."""

    input: Path
    spec: EditSpec
    output: Path
    mask: Path | None = None
    id: str = field(default_factory=new_job_id)
    priority: int = 0
    attempts: int = 0
    state: JobState = JobState.QUEUED
    error: str | None = None
    worker: str | None = None
    #: a tile (or region) of a bigger edit: that job's id. The farm shows and counts the bigger job; a part's
    #: input and output live in the bigger job's staging folder (farm/runtime/splitting.py).
    parent: str | None = None
    label: str = ""  # a part's name for people ("photo.jpg tile 3/12"); "" for a job of its own
    split: str = ""  # a job run as parts: what they are, for people ("8 tiles", "3 regions")

    def move(self, to: JobState, *, error: str | None = None) -> None:
        """Change state, or raise IllegalTransition naming both states."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"job {self.id[:8]} cannot go from {self.state} to {to}")
        if to is JobState.DISPATCHED:
            self.attempts += 1
        self.state = to
        self.error = error if to is JobState.FAILED else None

    @property
    def name(self) -> str:
        return self.label or self.input.name
