"""The scheduler: a pure decision core (no I/O, time passed in) and its value types."""

from farm.core.scheduler.core import Scheduler, WorkerStatus
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

__all__ = [
    "LOCAL",
    "Cancel",
    "Decision",
    "Dispatch",
    "FailureKind",
    "Finished",
    "JobRequest",
    "LinkEstimate",
    "Phase",
    "Policy",
    "Scheduler",
    "SpeedEstimate",
    "WorkerCaps",
    "WorkerStatus",
]
