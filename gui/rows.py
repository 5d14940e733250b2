"""The rows the app's views show, as plain values (no Qt): queue rows, node rows, counts."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

from farm.core.job import Job, JobState
from farm.core.nodeinfo import NodeInfo
from farm.core.scheduler import LOCAL, WorkerStatus


class JobRow:
    """One queue row: the farm's job plus what the view shows about it (progress, timing)."""

    __slots__ = ("counted", "ended", "job", "progress", "reported", "seen", "started")

    def __init__(self, job: Job) -> None:
        self.job = job
        self.counted: JobState | None = None  # the state the model's counts include it under
        self.progress = 0.0
        self.seen: JobState | None = None  # the state at the latest event
        self.reported = False  # the engine reported a fraction for this attempt (else: a busy indicator)
        self.started: float | None = None
        self.ended: float | None = None

    def update(self, progress: float | None, now: float) -> None:
        state = self.job.state
        if progress is not None:
            self.progress = progress
            self.reported = True
        if state is JobState.RUNNING and self.started is None:
            self.started = now
        elif state is JobState.QUEUED:
            self.started = self.ended = None
            self.progress = 0.0
            self.reported = False
        elif state.finished and self.ended is None:
            self.ended = now
            if state is JobState.DONE:
                self.progress = 1.0

    def elapsed(self, now: float) -> float | None:
        if self.started is None:
            return None
        return (self.ended or now) - self.started

    def bar(self) -> tuple[bool, str]:
        """(busy, text) of the row's progress bar: a busy indicator, never a fake 0 %, while the
        engine has reported no fraction (OpenCV reports none; a node upload has none yet)."""
        if self.job.state is JobState.DISPATCHED:
            return True, "sending…"
        if not self.reported:
            return True, "working…"
        return False, f"{self.progress:.0%}"

    def fix(self) -> tuple[str, str]:
        """(plain reason, action) of a failed row: action is "models", "mask" or "retry"."""
        return failure_fix(self.job.error or "")


def plain_error(text: str) -> str:
    """A farm message as a sentence for people: no backticks, no internal ids."""
    text = text.replace("`", "").strip()
    text = re.sub(r"\bengine (\w+)", lambda m: ENGINE_NAMES.get(m.group(1), m.group(1)), text)
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower():  # a sentence, not a name ("attic-gpu: ...") or a path
        text = text[:1].upper() + text[1:]
    return text


ENGINE_NAMES = {"lama": "LaMa", "cv2": "OpenCV", "sd": "Stable Diffusion", "upscale": "the upscaler"}


def failure_fix(error: str) -> tuple[str, str]:
    """Why a job failed, plainly, and what the user can do about it."""
    lower = error.lower()
    if "no worker of the farm can run" in lower or ("model" in lower and ("put " in lower or "no " in lower)):
        return plain_error(error), "models"
    if "mask" in lower:
        return plain_error(error), "mask"
    if "not an image" in lower or "cannot read" in lower or "corrupt" in lower:
        return plain_error(error), "reveal"  # the file itself: running it again would fail again
    return plain_error(error) or "Failed", "retry"


FIX_LABELS = {"models": "Open models folder", "mask": "Paint mask…", "reveal": "Show in folder", "retry": "Retry"}


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

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.cancelled

    def summary(self) -> str:
        parts = [f"{self.running} running", f"{self.queued} queued", f"{self.done} done"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.cancelled:
            parts.append(f"{self.cancelled} cancelled")
        return " · ".join(parts)


class BatchProgress:
    """The work in hand since the queue was last empty: how much is finished, and when the rest
    should be, from the rate jobs finished at so far (shown once two have finished)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.base = 0  # jobs finished before this run of work began
        self.ends: list[float] = []

    def job_changed(self, job_id: str, state: JobState, now: float) -> None:
        if state.finished and self.started is not None:
            self.ends.append(now)

    def update(self, counts: Counts, now: float) -> None:
        if counts.unfinished == 0:
            self.started, self.ends = None, []
            self.base = counts.finished
        elif self.started is None:
            self.started, self.ends = now, []
            self.base = min(self.base, counts.finished)
        self.base = min(self.base, counts.finished)

    def value(self, counts: Counts) -> tuple[int, int]:
        """(finished, total) of this run of work."""
        done = counts.finished - min(self.base, counts.finished)
        return done, done + counts.unfinished

    def eta(self, counts: Counts, now: float, running: float = 0.0) -> float | None:
        """Seconds left, from the rate edits finished at; ``running``: the summed progress of the edits
        running now, so one long edit that reports its progress (a big upscale's tiles) has an ETA too."""
        if self.started is None or counts.unfinished == 0:
            return None
        if len(self.ends) >= 2:
            rate = len(self.ends) / max(now - self.started, 1e-6)
            return counts.unfinished / rate
        done = len(self.ends) + running
        if running < 0.05 or now - self.started < 2.0:
            return None
        return (counts.unfinished - running) * (now - self.started) / done

    def text(self, counts: Counts, now: float, *, paused: bool = False, running: float = 0.0) -> str:
        done, total = self.value(counts)
        if not total:
            return ""
        text = f"{done} of {total} edited"
        if paused:
            return text + " · paused"
        eta = self.eta(counts, now, running)
        if eta is not None:
            text += f" · about {format_seconds(max(eta, 1))} left"
        elif counts.unfinished:
            text += " · estimating time left…"
        return text


NODE_STATES = (
    "idle",
    "busy",
    "paused",
    "blocklisted",
    "offline",
    "unauthorised",
    "untrusted",
    "ignored",
    "nimby",
    "schedule",
    "draining",
    "asleep",
    "waking",
)


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
    untrusted: bool = False  # refused by this farm: not the pinned certificate, or no proof of the token
    tls: bool = False
    fingerprint: str = ""  # the SHA-256 of its TLS certificate, from /v1/info
    paused: bool = False
    ignored: bool = False
    blocked: tuple[str, ...] = ()
    job: str = ""
    progress: float = 0.0
    done: int = 0
    failed: int = 0
    seconds_per_mp: float | None = None
    error: str = ""
    errors: list[str] = field(default_factory=list)  # the latest failed attempts there, oldest first
    waiting: str = ""  # why an idle worker takes none of the queued edits ("" when nothing waits)
    held: str = ""  # its owner's availability state when it takes no jobs (paused, nimby, schedule, draining)
    held_reason: str = ""  # why, in the node's words
    sleep: str = ""  # offline because its PC sleeps: "asleep", or "waking" after a magic packet
    history: deque[int] = field(default_factory=lambda: deque(maxlen=60))
    _last_done: int = 0

    @property
    def local(self) -> bool:
        return self.id == LOCAL

    @property
    def state(self) -> str:
        if self.ignored:
            return "ignored"
        if self.untrusted:
            return "untrusted"
        if not self.authorised:
            return "unauthorised"
        if not self.online:
            return self.sleep or "offline"
        if self.held:
            return self.held
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
        self.tls, self.fingerprint = info.tls, info.fingerprint
        a = info.availability
        self.held, self.held_reason = ("", "") if a.available else (str(a.state), a.reason)

    @property
    def state_text(self) -> str:
        """The state, and below it why its owner holds it (``paused`` / ``gaming``)."""
        return f"{self.state}\n{self.held_reason}" if self.held and self.held_reason and self.online else self.state

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
