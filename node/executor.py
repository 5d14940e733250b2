"""Runs jobs: decode and encode in a CPU pool, the engine in one of N slot threads; progress comes back to the loop.

A job's way through the node (``NodeJob.phase``): the fair queue -> taken in fair order and decoded in
the CPU pool (``preparing``; at most ``slots`` jobs are taken ahead of the slots, so that each slot
has its next job decoded while the current one runs; decodes run in parallel) -> waiting for a slot
(``ready``; slots go to jobs in the order they were taken, so a job decoded before an earlier one
waits for it) -> the engine
in a slot thread (``engine``; the job is ``running`` on the wire from here, and ``started`` is the
engine's start) -> the slot is released and the result is encoded and stored in the CPU pool
(``encoding``) -> done. ``slots`` is the number of engine runs at once, nothing more: on the wire up
to ``2 x slots`` jobs may be ``running``, as engines stop starting while ``slots`` results already
wait to be encoded (``load``'s ``running`` lists the engines only). A job cancelled before its
engine starts never reaches it; one cancelled while encoding finishes.

Owns the job book and its queue; everything here except the ``_decode``/``_engine``/``_encode``
thread functions runs on the loop.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from farm.core.availability import Availability
from farm.core.job import JobState
from farm.engines import Registry
from farm.errors import FarmError, ImageError, JobCancelled, SpecError
from farm.imaging.codec import DEFAULT_MAX_PIXELS, Picture, encode_image, resolve_output
from farm.imaging.pipeline import Prepared, prepare, run
from farm.local.hardware import usable_cpus
from node.blobs import BlobStore, DamagedBlob, read_blob, write_blob
from node.errors import Invalid, MissingBlob, NotAvailable, QueueFull, Unavailable
from node.events import EventHub
from node.jobs import JobBook, NodeJob, Phase, ProgressThrottle, ResultInfo
from node.requests import JobRequest

log = logging.getLogger(__name__)

Clock = Callable[[], float]
MAX_QUEUE = 10_000


def default_cpu_workers() -> int:
    """Threads for decoding and encoding: half the cores, at least 2 and at most 8 (cv2 releases the GIL)."""
    return max(2, min(8, usable_cpus() // 2))


class JobRunner:
    """The node's job engine room: submit, cancel, drain; one task per job taken from the queue, owned here."""

    def __init__(
        self,
        book: JobBook,
        blobs: BlobStore,
        registry: Registry,
        hub: EventHub,
        *,
        slots: int,
        job_timeout: float = 0.0,
        clock: Clock = time.time,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        cpu_workers: int | None = None,
        slot_registries: Sequence[Registry] = (),
    ) -> None:
        self.book = book
        self.blobs = blobs
        self.registry = registry
        self.hub = hub
        self.slots = slots
        # slot i's engines (one registry per device: slot i of a multi-GPU node runs on cuda:i)
        self.slot_registries = list(slot_registries) or [registry] * slots
        if len(self.slot_registries) != slots:
            raise ValueError(f"{len(self.slot_registries)} slot registries for {slots} slots")
        self._slot = threading.local()
        self._slot_numbers = itertools.count()
        self.job_timeout = job_timeout
        self.clock = clock
        self.max_pixels = max_pixels
        self.cpu_workers = cpu_workers or default_cpu_workers()
        self.draining = False
        self._closing = False
        self.busy = 0  # engines running now, at most ``slots``
        self.prepared = 0  # jobs decoded so far (a counter for tests and diagnostics)
        self.listeners: list[Callable[[], None]] = []
        self.availability: Callable[[], Availability] = Availability  # node.availability.Steward sets it
        self.ended: list[Callable[[NodeJob], None]] = []  # called once per finished job (metrics)
        self._throttle = ProgressThrottle(0.1)
        self._tasks: set[asyncio.Task[None]] = set()
        self._pool: ThreadPoolExecutor | None = None  # the slots: engines only
        self._cpu: ThreadPoolExecutor | None = None  # decoding and encoding
        self._staged: list[NodeJob] = []  # taken from the queue, not started yet: preparing or ready
        self._ready: dict[str, Prepared] = {}  # decoded inputs of ready jobs, by job id
        self._started = 0  # jobs between engine start and their end (engine or encoding)
        self._encoding = 0  # jobs out of their slot, their result being encoded
        self._idle = asyncio.Event()
        self._idle.set()

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix="lanfarm-slot", initializer=self._number_slot)
        self._cpu = ThreadPoolExecutor(self.cpu_workers, thread_name_prefix="lanfarm-cpu")

    async def close(self) -> None:
        """Stop: queued jobs are cancelled, running ones told to stop; waits for the threads."""
        self.draining = self._closing = True
        now = self.clock()
        for job in list(self.book.active):
            if self.book.cancel(job, now):
                self._finished(job)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for pool in (self._pool, self._cpu):
            if pool is not None:
                pool.shutdown(wait=True)
        self._pool = self._cpu = None

    def drain(self) -> None:
        """Refuse new jobs from now on; queued and running ones still finish."""
        self.draining = True
        self._changed()

    def undrain(self) -> None:
        """Take new jobs again (a drain is reversible; a shutdown is not)."""
        if not self._closing and self.draining:
            self.draining = False
            self._changed()

    def publish_load(self) -> None:
        """Send the load (with the availability) to subscribers now, not at the next tick."""
        self.hub.publish(self.load())
        self._changed()

    def hand_back(self, why: str, *, running: bool) -> int:
        """Cancel the jobs whose engine has not started (and, with ``running``, the running ones too),
        saying ``why``: the farm runs them elsewhere. Returns how many were handed back."""
        now = self.clock()
        count = 0
        for job in list(self.book.active):
            if job.state is JobState.RUNNING and not running:
                continue
            job.error = why
            if self.book.cancel(job, now):
                self._finished(job)
            count += 1
        if count:
            log.info("%s (%d jobs)", why, count)
            self._changed()
        return count

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

    @property
    def queued(self) -> int:
        """Jobs whose engine has not started: in the fair queue, being decoded or waiting for a slot."""
        return len(self.book.queue) + len(self._staged)

    def load(self) -> dict[str, Any]:
        return {
            "type": "load",
            "slots": {"total": self.slots, "free": self.free},
            "queue": self.queued,
            "running": [j.id for j in self.book.running],
            **self.availability().to_dict(),
        }

    # -- requests --------------------------------------------------------------------------------
    def submit(self, req: JobRequest) -> tuple[NodeJob, bool]:
        """Queue a job, or return the one already known by that id (it never runs twice)."""
        known = self.book.get(req.id)
        if known is not None:
            return known, False
        if self.draining:
            raise Unavailable(
                "this node is draining (shutting down or being serviced) and takes no new jobs; send it elsewhere"
            )
        availability = self.availability()
        if not availability.available:
            raise NotAvailable(f"this node is {availability.label()}; it takes no new jobs now: send it elsewhere")
        if self.queued >= MAX_QUEUE:
            raise QueueFull(f"this node already has {MAX_QUEUE} queued jobs; try again later")
        desc, _params = self.registry.resolve(req.spec)
        if desc.needs_mask and req.mask is None:
            raise Invalid(f"{req.spec.op} with {desc.id} needs a mask; send one")
        for sha, what in ((req.image, "image"), (req.mask, "mask")):
            if sha is not None and not self.blobs.has(sha):
                raise MissingBlob(f"the {what} {sha[:12]}... is not on this node; PUT it to /v1/blobs/{sha} first")
        job = NodeJob(
            id=req.id,
            spec=req.spec,
            image=req.image,
            mask=req.mask,
            client=req.client,
            priority=req.priority,
            created=self.clock(),
        )
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
                self.blobs.release_result(job.result.sha256)
        if old:
            self.blobs.evict()
        return len(old)

    # -- running ---------------------------------------------------------------------------------
    def _pump(self) -> None:
        """Start engines for decoded jobs while slots are free; take jobs to decode ahead of the slots."""
        if self._pool is None or self._closing:
            self._check_idle()
            return
        while self._staged:
            if self.busy >= self.slots or self.busy + self._encoding >= 2 * self.slots:
                break  # all slots busy, or encoding lags behind: at most ``slots`` results wait for it
            job = self._staged[0]  # jobs start in the order they were taken (fair order: priority, then arrival)
            prepared = self._ready.pop(job.id, None)
            if prepared is None:
                break  # still decoding: a later job decoded first waits for it, so the start order never races
            self._staged.pop(0)
            if not self.book.start(job, self.clock()):
                continue  # cannot happen: a job cancelled while staged leaves the stage at once
            self.busy += 1
            self._started += 1
            self._spawn(self._run(job, prepared))
            self._publish(job)
        while len(self._staged) < self.slots:
            taken = self.book.take_next()
            if taken is None:
                break
            taken.phase = Phase.PREPARING
            self._staged.append(taken)
            self._spawn(self._prepare(taken))
        self._check_idle()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prepare(self, job: NodeJob) -> None:
        """Decode a taken job's inputs in the CPU pool; it then waits for a slot (or fails, as the job's fault)."""
        loop = asyncio.get_running_loop()
        error: tuple[str, str] | None = None
        prepared: Prepared | None = None
        try:
            prepared = await loop.run_in_executor(self._cpu, self._decode, job)
        except FarmError as exc:
            if isinstance(exc, DamagedBlob):
                self.blobs.discard(exc.sha)  # so that the farm's re-upload is stored, not "already here"
            error = (str(exc), "input" if isinstance(exc, ImageError | SpecError) else "engine")
        except Exception as exc:  # a decoder bug fails its job, never the node
            log.exception("job %s: decoding crashed", job.id)
            error = (f"decoding crashed: {type(exc).__name__}: {exc}", "engine")
        if job in self._staged:  # not cancelled meanwhile (that releases its blobs itself)
            if prepared is not None:
                self.prepared += 1
                job.phase = Phase.READY
                self._ready[job.id] = prepared
            else:
                assert error is not None
                self._staged.remove(job)
                if self.book.fail(job, error[0], self.clock(), kind=error[1]):
                    self._publish(job)
                self.blobs.unpin(job.blobs)
        self._pump()
        self._changed()

    async def _run(self, job: NodeJob, prepared: Prepared) -> None:
        """The engine in a slot, then (slot released) the encoding in the CPU pool."""
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self.job_timeout, self._time_out, job) if self.job_timeout > 0 else None
        in_slot = True
        try:
            picture = await loop.run_in_executor(self._pool, self._engine, job, prepared, loop)
            del prepared
            in_slot = False
            self.busy -= 1
            job.phase = Phase.ENCODING
            self._encoding += 1
            self._pump()  # the next job's engine starts while this result is encoded
            try:
                sha, size = await loop.run_in_executor(self._cpu, self._encode, job, picture)
            finally:
                self._encoding -= 1
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
            self.blobs.add_result(sha, size)
            if job.cancel.cancelled:  # DELETE came after the engine's last step: cancelled all the same
                self.blobs.release_result(sha)
                if self.book.cancelled(job, self.clock()):
                    self._publish(job)
            elif self.book.succeed(job, ResultInfo(sha, size, job.content_type), self.clock()):
                self._publish(job)
            else:
                self.blobs.release_result(sha)  # timed out meanwhile: the result is not wanted
        finally:
            if timer is not None:
                timer.cancel()
            if in_slot:
                self.busy -= 1
            self._started -= 1
            self.blobs.unpin(job.blobs)
            self._throttle.forget(job.id)
            self._pump()
            self._changed()

    def _decode(self, job: NodeJob) -> Prepared:
        """In a CPU thread: read the input blobs and decode them."""
        image = read_blob(self.blobs.folder, job.image)
        mask = read_blob(self.blobs.folder, job.mask) if job.mask else None
        return prepare(image, mask, job.spec, self.registry, max_pixels=self.max_pixels)

    def _number_slot(self) -> None:
        """Each slot thread, once: its number (at most ``slots`` threads exist, so each number is one slot's)."""
        self._slot.index = next(self._slot_numbers) % self.slots

    def slot_registry(self) -> Registry:
        """In a slot thread: the engines of this slot's device."""
        return self.slot_registries[getattr(self._slot, "index", 0)]

    def _engine(self, job: NodeJob, prepared: Prepared, loop: asyncio.AbstractEventLoop) -> Picture:
        """In a slot thread: the engine, nothing else."""

        def progress(fraction: float) -> None:
            loop.call_soon_threadsafe(self._on_progress, job, fraction)

        return run(prepared, self.slot_registry(), progress=progress, cancel=job.cancel)

    def _encode(self, job: NodeJob, picture: Picture) -> tuple[str, int]:
        """In a CPU thread: encode the result and write it as a blob."""
        job.encoded_as = resolve_output(picture, job.spec.output)[0].format
        data = encode_image(picture, job.spec.output)
        return write_blob(self.blobs.folder, data), len(data)

    def _on_progress(self, job: NodeJob, fraction: float) -> None:
        if self.book.progress(job, fraction) and self._throttle.allow(job.id, job.progress, self.clock()):
            self.hub.publish({"type": "progress", "id": job.id, "progress": job.progress})

    def _time_out(self, job: NodeJob) -> None:
        job.cancel.cancel()
        if self.book.fail(job, f"timed out after {self.job_timeout:g} s", self.clock()):
            self._publish(job)

    def _finished(self, job: NodeJob) -> None:
        """A job that never ran has finished (cancelled): release its blobs and decoded inputs."""
        if job in self._staged:
            self._staged.remove(job)
            self._ready.pop(job.id, None)
        self.blobs.unpin(job.blobs)
        self._publish(job)
        self._pump()  # a stage place is free: take the next job to decode

    def _check_idle(self) -> None:
        if self._started == 0 and not self._staged and not len(self.book.queue):
            self._idle.set()

    def _publish(self, job: NodeJob) -> None:
        self.hub.publish({"type": "job", "job": job.to_dict()})
        if job.state.finished:
            for callback in self.ended:
                callback(job)

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()
