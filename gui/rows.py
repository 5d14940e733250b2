"""The rows the app's views show, as plain values (no Qt): queue rows, node rows, counts."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from farm.core.job import Job, JobState
from farm.core.nodeinfo import NodeInfo
from farm.core.scheduler import LOCAL, WorkerStatus


class JobRow:
    """One queue row: the farm's job plus what the view shows about it (progress, timing)."""

    __slots__ = ("counted", "ended", "job", "progress", "started")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.counted: JobState | None = None  # the state the model's counts include it under
        self.progress = 0.0
        self.started: float | None = None
        self.ended: float | None = None

    def update(self, progress: float | None, now: float) -> None:
        state = self.job.state
        if progress is not None:
            self.progress = progress
        if state is JobState.RUNNING and self.started is None:
            self.started = now
        elif state is JobState.QUEUED:
            self.started = self.ended = None
            self.progress = 0.0
        elif state.finished and self.ended is None:
            self.ended = now
            if state is JobState.DONE:
                self.progress = 1.0

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now) - self.started


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(seconds)
    return (
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if seconds >= 3600
        else f"{seconds // 60}:{seconds % 60:02d}"
    )


@dataclass(frozen=True, slots=True)
class Counts:
    """Jobs per state, for the status bar and the tray icon."""

    queued: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0

    @property
    def unfinished(self) -> int:
        return self.queued + self.running

    def summary(self) -> str:
        parts = [f"{self.running} running", f"{self.queued} queued", f"{self.done} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        return " · ".join(parts)


NODE_STATES = ("idle", "busy", "paused", "blocklisted", "offline", "unauthorised", "ignored")


@dataclass(slots=True)
class NodeRow:
    """One node on the dashboard. Fed by node up/changed/down/unauthorised calls (discovery, added
    peers, farm NodeEvents) and by :meth:`sample` from the scheduler's view once a second."""

    id: str
    name: str
    address: str = ""
    gpu: str = "?"
    vram_used_mb: int = 0
    vram_total_mb: int = 0
    online: bool = True
    authorised: bool = True
    paused: bool = False
    ignored: bool = False
    blocked: tuple[str, ...] = ()
    job: str = ""
    progress: float = 0.0
    done: int = 0
    failed: int = 0
    seconds_per_mp: float | None = None
    error: str = ""
    history: deque[int] = field(default_factory=lambda: deque(maxlen=60))
    _last_done: int = 0

    @property
    def local(self) -> bool:
        return self.id == LOCAL

    @property
    def state(self) -> str:
        if self.ignored:
            return "ignored"
        if not self.authorised:
            return "unauthorised"
        if not self.online:
            return "offline"
        if self.paused:
            return "paused"
        if self.blocked:
            return "blocklisted"
        return "busy" if self.job else "idle"

    @property
    def vram_text(self) -> str:
        if not self.vram_total_mb:
            return "—"
        return f"{self.vram_used_mb / 1024:.1f} / {self.vram_total_mb / 1024:.1f} GB"

    @property
    def speed_text(self) -> str:
        """Seconds per megapixel as the scheduler measured it (the sparkline shows jobs over time)."""
        return f"{self.seconds_per_mp:.2f} s/MP" if self.seconds_per_mp else "—"

    def apply_info(self, info: NodeInfo) -> None:
        """Take name, GPU and VRAM from a node's /v1/info answer."""
        self.name = info.name or self.name
        self.gpu = info.gpu_label
        self.vram_total_mb, self.vram_used_mb = info.vram_total_mb, info.vram_used_mb

    def sample(self, status: WorkerStatus | None, done: int, failed: int, job: str, progress: float) -> None:
        """Once a second: the scheduler's view of this worker; the sparkline gets jobs done since last."""
        if status is not None:
            self.online = status.online
            self.paused = status.paused
            self.blocked = status.blocked
            speeds = [s for s in status.seconds_per_mp.values() if s]
            self.seconds_per_mp = min(speeds) if speeds else self.seconds_per_mp
        self.history.append(max(0, done - self._last_done))
        self._last_done = done
        self.done, self.failed = done, failed
        self.job, self.progress = (job, progress) if self.online else ("", 0.0)
