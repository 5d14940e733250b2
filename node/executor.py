"""Runs jobs: N slots, each a worker thread calling farm.pipeline.execute; progress comes back to the loop.

Owns the job book and its queue; everything here except :meth:`JobRunner._work` runs on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from farm.engines import Registry
from farm.errors import FarmError, ImageError, JobCancelled, SpecError
from farm.imageio import DEFAULT_MAX_PIXELS
from farm.pipeline import execute
from node.blobs import BlobStore, read_blob, write_blob
from node.errors import Invalid, MissingBlob, QueueFull, Unavailable
from node.events import EventHub
from node.jobs import JobBook, NodeJob, ProgressThrottle, ResultInfo
from node.requests import JobRequest

log = logging.getLogger(__name__)

Clock = Callable[[], float]
MAX_QUEUE = 10_000


class JobRunner:
    """The node's job engine room: submit, cancel, drain; one task per running job, owned here."""

    def __init__(self, book: JobBook, blobs: BlobStore, registry: Registry, hub: EventHub, *,
                 slots: int, job_timeout: float = 0.0, clock: Clock = time.time,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.book = book
        self.blobs = blobs
        self.registry = registry
        self.hub = hub
        self.slots = slots
        self.job_timeout = job_timeout
        self.clock = clock
        self.max_pixels = max_pixels
        self.draining = False
        self.busy = 0
        self.listeners: list[Callable[[], None]] = []
        self._throttle = ProgressThrottle(0.1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="lanfarm-slot")

    async def close(self) -> None:
        """Stop: queued jobs are cancelled, running ones told to stop; waits for the threads."""
        self.draining = True
        now = self.clock()
        for job in list(self.book.active):
            if self.book.cancel(job, now):
                self._finished(job)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def drain(self) -> None:
        """Refuse new jobs from now on; queued and running ones still finish."""
        self.draining = True
        self._changed()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or running; False on timeout."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- state -----------------------------------------------------------------------------------
    @property
    def free(self) -> int:
        return max(0, self.slots - self.busy)

    def load(self) -> dict[str, Any]:
        return {"type": "load", "slots": {"total": self.slots, "free": self.free},
                "queue": len(self.book.queue), "running": [j.id for j in self.book.running]}

    # -- requests --------------------------------------------------------------------------------
    def submit(self, req: JobRequest) -> tuple[NodeJob, bool]:
        """Queue a job, or return the one already known by that id (it never runs twice)."""
        known = self.book.get(req.id)
        if known is not None:
            return known, False
        if self.draining:
            raise Unavailable("this node is draining (shutting down or being serviced) and takes "
                              "no new jobs; send it elsewhere")
        if len(self.book.queue) >= MAX_QUEUE:
            raise QueueFull(f"this node already has {MAX_QUEUE} queued jobs; try again later")
        desc, _params = self.registry.resolve(req.spec)
        if desc.needs_mask and req.mask is None:
            raise Invalid(f"{req.spec.op} with {desc.id} needs a mask; send one")
        for sha, what in ((req.image, "image"), (req.mask, "mask")):
            if sha is not None and not self.blobs.has(sha):
                raise MissingBlob(f"the {what} {sha[:12]}... is not on this node; PUT it to "
                                  f"/v1/blobs/{sha} first")
        job = NodeJob(id=req.id, spec=req.spec, image=req.image, mask=req.mask, client=req.client,
                      priority=req.priority, created=self.clock())
        self.book.submit(job)
        self.blobs.pin(job.blobs)
        self._idle.clear()
        self._publish(job)
        self._pump()
        self._changed()
        return job, True

    def cancel(self, job: NodeJob) -> NodeJob:
        if self.book.cancel(job, self.clock()):
            self._finished(job)
            self._changed()
        return job

    def expire(self) -> int:
        """Forget jobs past the retention window; their results may then be evicted."""
        old = self.book.expire(self.clock())
        for job in old:
            if job.result is not None:
                self.blobs.unpin([job.result.sha256])
        if old:
            self.blobs.evict()
        return len(old)

    # -- running ---------------------------------------------------------------------------------
    def _pump(self) -> None:
        while self.busy < self.slots and self._pool is not None:
            job = self.book.start_next(self.clock())
            if job is None:
                break
            self.busy += 1
            task = asyncio.get_running_loop().create_task(self._run(job), name=f"job {job.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            self._publish(job)
        self._check_idle()

    async def _run(self, job: NodeJob) -> None:
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.job_timeout, self._time_out, job) if self.job_timeout > 0 else None
        try:
            sha, size = await loop.run_in_executor(self._pool, self._work, job, loop)
        except JobCancelled:
            if self.book.cancelled(job, self.clock()):
                self._publish(job)
        except FarmError as exc:
            kind = "input" if isinstance(exc, ImageError | SpecError) else "engine"
            if self.book.fail(job, str(exc), self.clock(), kind=kind):
                self._publish(job)
        except Exception as exc:  # an engine bug fails its job, never the node
            log.exception("job %s: engine crashed", job.id)
            if self.book.fail(job, f"engine crashed: {type(exc).__name__}: {exc}", self.clock()):
                self._publish(job)
        else:
            self.blobs.pin([sha])
            self.blobs.added(sha, size)
            if self.book.succeed(job, ResultInfo(sha, size, job.content_type), self.clock()):
                self._publish(job)
            else:
                self.blobs.unpin([sha])  # timed out meanwhile: the result is not wanted
        finally:
            if timer is not None:
                timer.cancel()
            self.busy -= 1
            self.blobs.unpin(job.blobs)
            self._throttle.forget(job.id)
            self._pump()
            self._changed()

    def _work(self, job: NodeJob, loop: asyncio.AbstractEventLoop) -> tuple[str, int]:
        """In a slot thread: read the blobs, run the pipeline, write the result blob."""
        image = read_blob(self.blobs.folder, job.image)
        mask = read_blob(self.blobs.folder, job.mask) if job.mask else None

        def progress(fraction: float) -> None:
            loop.call_soon_threadsafe(self._on_progress, job, fraction)

        data = execute(image, mask, job.spec, self.registry, progress=progress, cancel=job.cancel,
                       max_pixels=self.max_pixels)
        return write_blob(self.blobs.folder, data), len(data)

    def _on_progress(self, job: NodeJob, fraction: float) -> None:
        if self.book.progress(job, fraction) and self._throttle.allow(job.id, job.progress, self.clock()):
            self.hub.publish({"type": "progress", "id": job.id, "progress": job.progress})

    def _time_out(self, job: NodeJob) -> None:
        job.cancel.cancel()
        if self.book.fail(job, f"timed out after {self.job_timeout:g} s", self.clock()):
            self._publish(job)

    def _finished(self, job: NodeJob) -> None:
        """A job that never ran has finished (cancelled): release its blobs."""
        self.blobs.unpin(job.blobs)
        self._publish(job)
        self._check_idle()

    def _check_idle(self) -> None:
        if self.busy == 0 and not len(self.book.queue):
            self._idle.set()

    def _publish(self, job: NodeJob) -> None:
        self.hub.publish({"type": "job", "job": job.to_dict()})

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()
