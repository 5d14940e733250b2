"""The dispatcher: the async glue that feeds the pure scheduler events and carries out its decisions.

It owns the workers (this PC and the nodes), one pooled HTTP session, the clock tick, and the
attempt tasks. Outputs are written here, once per job: the scheduler says which result wins.
:class:`farm.runtime.farm.Farm` (the front door) owns one, with discovery and the durable queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from PIL import Image

from farm.core.descriptor import EngineDescriptor
from farm.core.job import Job, JobState
from farm.core.nodeinfo import NodeInfo
from farm.core.remembered import Remembered
from farm.core.scheduler import (
    LOCAL,
    Cancel,
    Decision,
    Dispatch,
    FailureKind,
    Finished,
    JobRequest,
    Policy,
    Scheduler,
)
from farm.core.shipping_choice import CutCost, send_whole
from farm.core.spec import EditSpec
from farm.core.split_choice import Candidate, tile_count
from farm.engines.registry import Registry
from farm.errors import EngineError, FarmError, OutputError
from farm.imaging.codec import DEFAULT_MAX_PIXELS
from farm.imaging.shipping import shippable
from farm.local.files import read_bytes, write_atomic
from farm.local.store import QueueStore
from farm.runtime import splitting
from farm.runtime.client import NodeClient, NodeUnreachable, connector
from farm.runtime.memory import FarmMemory
from farm.runtime.planning import Planned
from farm.runtime.splitting import REGIONS, Split
from farm.runtime.trust import Trust
from farm.runtime.workers import LocalWorker, RemoteWorker, Task, Worker, WorkerFailure

log = logging.getLogger(__name__)
_STATES = {"done": JobState.DONE, "failed": JobState.FAILED, "cancelled": JobState.CANCELLED}


@dataclass(slots=True)
class WorkerStats:
    """What one worker did in this session (for summaries and the dashboard)."""

    name: str
    done: int = 0
    failed: int = 0
    busy_seconds: float = 0.0  # from each job's start there to its result here
    compute_seconds: float = 0.0  # from each job's start there to its end there (a node's result not yet fetched)
    parts: int = 0  # tiles or regions of split edits it did (their edit counts as done where it is written)
    errors: list[str] = field(default_factory=list)  # the latest failed attempts' messages (at most 20)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """A job changed state, or made progress (``progress`` set); ``state`` is the state at that moment."""

    job: Job
    progress: float | None = None
    state: JobState = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", self.job.state)


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A worker appeared, changed or went away (``online`` False)."""

    worker_id: str
    name: str
    online: bool
    reason: str = ""
    address: str = ""  # a node's base URL ("" for this PC)
    info: NodeInfo | None = None
    authorised: bool = True  # False: the node refused the farm token (or, ``untrusted``, we refused it)
    untrusted: bool = False  # another certificate than the one pinned, or no proof of the token (``reason``)


FarmEvent = JobEvent | NodeEvent


@dataclass
class FarmOptions:
    use_local: bool = True
    local_slots: int = 1
    overwrite: bool = False
    resize_mask: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    tick_seconds: float = 0.25
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    payload_cache_bytes: int = 256 << 20
    #: how an inpaint travels to a node: ``crop`` (what its engine needs), ``whole`` (the input as it is),
    #: ``auto`` (the crop, unless the link is fast enough that cutting here costs more than it saves)
    shipping: str = "auto"
    #: a big upscale cut into tiles for several workers: ``auto`` (when that ends it clearly sooner),
    #: ``off``, or a number of tiles (farm/core/split_choice.py)
    tiles: str | int = "auto"


class Dispatcher:
    """Runs jobs across this PC and the nodes it is told about. Use as ``async with Dispatcher(...)``."""

    def __init__(
        self,
        registry: Registry,
        *,
        token: str = "",
        options: FarmOptions | None = None,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
        store: QueueStore | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self._dirty: dict[str, Job] = {}
        self.token = token
        self.options = options or FarmOptions()
        self.scheduler = Scheduler(policy)
        self.clock = clock
        self.jobs: dict[str, Job] = {}
        self.progress: dict[str, float] = {}
        self.stats: dict[str, WorkerStats] = {}
        self._cut_cost = CutCost()  # this PC's time to cut crops for nodes and paste their results back
        self.memory: FarmMemory | None = None  # what earlier batches measured (recall_from)
        self._host_cpu = asyncio.Semaphore(1)  # one cut or paste at a time beside this PC's own edits
        self._uplink = asyncio.Lock()  # one upload at a time on this PC's link, whichever node it goes to
        self.workers: dict[str, Worker] = {}
        self._specs: dict[str, EditSpec] = {}
        self._attempts: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._started_at: dict[tuple[str, str], float] = {}
        self._computed_at: dict[tuple[str, str], float] = {}
        self._listeners: list[Callable[[FarmEvent], None]] = []
        self._payloads: OrderedDict[Path, bytes] = OrderedDict()
        self._payload_bytes = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None
        self.trust: Trust | None = None  # the farm's (farm.runtime.trust); None: nodes are not checked
        self._tick_task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # workers taken out, closing in the background
        self._closed = False
        self._splits: dict[str, Split] = {}  # parent job id -> the parent in flight as parts
        self._split_counts: dict[str, Split] = {}  # parent job id -> how it was split (a retry cuts it the same way)
        self._split_tasks: set[asyncio.Future[None]] = set()  # cutting, assembling, saving parts' results

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Dispatcher:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(connector=connector(limit=64, limit_per_host=8))
        if self.options.use_local:
            self._add_worker(LocalWorker(self.registry, self.options.local_slots))
        self._tick_task = asyncio.create_task(self._ticker(), name="farm tick")

    async def close(self) -> None:
        self._closed = True
        if self._tick_task is not None:
            self._tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tick_task
        attempts = list(self._attempts.values())
        for task in attempts:
            task.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)
        for worker in list(self.workers.values()):
            await worker.close()
        await asyncio.gather(*self._closing, return_exceptions=True)
        await asyncio.gather(*self._split_tasks, return_exceptions=True)
        for split in list(self._splits.values()):
            await asyncio.to_thread(splitting.discard, split)  # resumed later from the store, cut again
        self._splits.clear()
        await self._flush()
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("Farm.start() was not awaited")
        return self._session

    def recall_from(self, remembered: Remembered) -> FarmMemory:
        """Start from what earlier batches measured (each figure stands until this run times its own), and
        keep what this run measures there (:meth:`FarmMemory.keep`)."""
        self.memory = FarmMemory(self.scheduler, remembered)
        for worker in self.workers.values():
            self.memory.worker_added(worker.id, _host_of(worker))
        return self.memory

    def subscribe(self, listener: Callable[[FarmEvent], None]) -> None:
        self._listeners.append(listener)

    # ---------------------------------------------------------------------- nodes
    def node_client(self, base_url: str) -> NodeClient:
        return NodeClient(self.session, base_url, self.token, trust=self.trust)

    def set_token(self, token: str) -> None:
        """Talk to nodes with another farm token from now on (every remote worker's requests)."""
        self.token = token
        for worker in self.workers.values():
            if isinstance(worker, RemoteWorker):
                worker.client = self.node_client(worker.client.base_url)

    def add_node(self, node_id: str, name: str, base_url: str, info: NodeInfo) -> None:
        """A node is up (or its info changed): it becomes a worker."""
        worker = self.workers.get(node_id)
        if isinstance(worker, RemoteWorker):
            worker.info = info
            if worker.client.base_url != base_url.rstrip("/"):
                worker.client = self.node_client(base_url)
        else:
            worker = RemoteWorker(
                node_id,
                name,
                self.node_client(base_url),
                info,
                client_id=self.options.client_id,
                observer=self,
                host_cpu=self._host_cpu,
                uplink=self._uplink,
            )
            worker.on_change = functools.partial(self._availability_changed, worker)
            worker.start()
            self._add_worker(worker)
            return
        self._apply(self.scheduler.worker_up(worker.caps(), self.clock()))

    def _availability_changed(self, worker: RemoteWorker) -> None:
        """A node's owner paused or released it (its events said so): no new job goes there, or they do again."""
        if self.workers.get(worker.id) is worker:
            self._apply(self.scheduler.worker_up(worker.caps(), self.clock()))
            self._emit(NodeEvent(worker.id, worker.name, True, address=worker.client.base_url, info=worker.info))

    async def add_peer(self, base_url: str) -> str:
        """Add a node by address (no discovery); returns its id. Raises NodeError if unusable."""
        info = await self.node_client(base_url).info()
        self.add_node(info.id, info.name, base_url, info)
        return info.id

    def remove_node(self, node_id: str, reason: str = "went offline") -> None:
        """A node went away: its jobs go back to the queue and run elsewhere."""
        worker = self.workers.pop(node_id, None)
        if worker is None:
            return
        lost = []
        for (job_id, wid), task in list(self._attempts.items()):
            if wid == node_id:
                task.cancel()
                del self._attempts[(job_id, wid)]
                lost.append(job_id)
        decisions = self.scheduler.worker_down(node_id, self.clock(), f"{worker.name} {reason}")
        self._requeued(lost)
        self._apply(decisions)
        self._emit(NodeEvent(node_id, worker.name, False, reason))
        closing = asyncio.ensure_future(worker.close())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def set_local(self, use: bool, slots: int) -> None:
        """Switch this PC's worker on or off, or give it another number of slots, while the farm runs.

        Its running jobs go back to the queue (they run again elsewhere or on the new local worker).
        """
        self.options.use_local, self.options.local_slots = use, slots
        current = self.workers.get(LOCAL)
        if isinstance(current, LocalWorker) and use and current.slots == max(1, slots):
            return
        if current is not None:
            self.remove_node(LOCAL, "reconfigured")
        if use:
            self._add_worker(LocalWorker(self.registry, slots))

    def set_worker_paused(self, worker_id: str, paused: bool) -> None:
        self._apply(self.scheduler.set_worker_paused(worker_id, paused, self.clock()))

    def _add_worker(self, worker: Worker) -> None:
        self.workers[worker.id] = worker
        self.stats.setdefault(worker.id, WorkerStats(worker.name))
        remote = worker if isinstance(worker, RemoteWorker) else None
        self._emit(
            NodeEvent(
                worker.id,
                worker.name,
                True,
                address=remote.client.base_url if remote else "",
                info=remote.info if remote else None,
            )
        )
        self._apply(self.scheduler.worker_up(worker.caps(), self.clock()))
        if self.memory is not None and self.memory.worker_added(worker.id, _host_of(worker)):
            self._apply(self.scheduler.tick(self.clock()))  # a recalled figure may place queued jobs now

    # ----------------------------------------------------------------------- jobs
    async def submit(
        self, items: Sequence[Planned], spec: EditSpec, *, priority: int = 0, batch: int | None = None
    ) -> list[Job]:
        """Queue one job per planned input (recorded in the store's ``batch`` first, if any)."""
        jobs = [Job(input=i.input, spec=spec, output=i.output, mask=i.mask, priority=priority) for i in items]
        await self.enqueue(jobs, batch=batch)
        return jobs

    async def enqueue(self, jobs: Sequence[Job], *, batch: int | None = None) -> None:
        """Queue jobs made elsewhere (resumed from the store, or built by the app)."""
        if self.store is not None and batch is not None:
            await asyncio.to_thread(self.store.add_jobs, batch, jobs)
        scales = [self._scale(j.spec) for j in jobs]
        sizes = await asyncio.to_thread(
            lambda: [(_megapixels(j.input), _transfer_bytes(j, k)) for j, k in zip(jobs, scales, strict=True)]
        )
        requests = []
        for job, (mp, moved) in zip(jobs, sizes, strict=True):
            self.jobs[job.id] = job
            self._specs[job.id] = job.spec
            requests.append(
                JobRequest(
                    job.id,
                    job.spec.engine,
                    mp,
                    job.spec.model,
                    self._memory_need(job.spec),
                    job.priority,
                    transfer_bytes=moved,
                    shippable=shippable(job.spec, job.mask is not None),
                    model_id=job.spec.model_id,  # issue 14: routing matches the model's content id
                )
            )
        if jobs:
            self._idle.clear()
        if self.memory is not None:
            self.memory.edits_queued(job.spec for job in jobs)
        for job in jobs:
            self._emit(JobEvent(job))
        whole = []
        for req in requests:
            job = self.jobs[req.id]
            parts = self._parts_for(job, req, others=len(requests) - 1)
            if parts > 1:
                self._split(Split(job, req, parts))
            elif parts == REGIONS:
                self._split(Split(job, req, REGIONS))
            else:
                whole.append(req)
        self._apply(self.scheduler.add_jobs(whole, self.clock()))

    def cancel(self, job_id: str) -> None:
        split = self._splits.get(job_id)
        if split is not None:
            if not split.assembling:  # once every part is in, the output is being written: it ends done
                self._end_split(split, JobState.CANCELLED)
            return
        if job_id in self._split_counts:
            return  # a parent that already ended
        self._apply(self.scheduler.cancel(job_id, self.clock()))

    def retry(self, job_id: str) -> None:
        job = self.jobs[job_id]
        if job.state in (JobState.FAILED, JobState.CANCELLED):
            job.move(JobState.QUEUED)
            self._idle.clear()
            self._emit(JobEvent(job))
            if job_id in self._split_counts:
                self._split(self._split_counts[job_id])
                return
            self._apply(self.scheduler.retry(job_id, self.clock()))

    def pause(self) -> None:
        self.scheduler.pause()

    def resume(self) -> None:
        self._apply(self.scheduler.resume(self.clock()))

    def could_run_queued(self) -> bool:
        """Whether some online worker could run each kind of queued job (busy or not)."""
        return self.scheduler.all_queued_runnable(self.clock())

    def fail_unrunnable(self) -> None:
        """End the queued jobs no worker of the farm can run, saying what is missing."""
        self._apply(self.scheduler.fail_unrunnable(self.clock(), self._why_unrunnable))

    def _why_unrunnable(self, job: JobRequest) -> str:
        what = f"engine {job.engine}" + (f" with model {job.model}" if job.model else "")
        message = f"no worker of the farm can run {what}"
        try:
            desc = self.registry.descriptor(job.engine)
        except EngineError:
            return f"{message}, and this PC does not know that engine"
        if not self.options.use_local:
            return f"{message} (this PC takes no jobs)"
        if not desc.available:
            return f"{message}: on this PC, {desc.unavailable_reason}"
        return message

    async def wait(self) -> None:
        """Until every submitted job has finished (done, failed or cancelled)."""
        await self._idle.wait()

    # ------------------------------------------------------------------ internals
    def _memory_need(self, spec: EditSpec) -> int:
        try:
            return self.registry.descriptor(spec.engine).memory_mb
        except EngineError:
            return 0

    def _apply(self, decisions: Sequence[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Dispatch):
                job = self.jobs[d.job_id]
                if job.state is JobState.QUEUED:
                    job.move(JobState.DISPATCHED)
                    job.worker = d.worker_id
                    self._emit(JobEvent(job))
                log.debug("%s -> %s%s", job.name, d.worker_id, " (a backup copy)" if d.backup else "")
                self._attempts[(d.job_id, d.worker_id)] = asyncio.create_task(
                    self._attempt(d.job_id, d.worker_id), name=f"job {d.job_id[:8]} on {d.worker_id}"
                )
            elif isinstance(d, Cancel):
                task = self._attempts.pop((d.job_id, d.worker_id), None)
                if task is not None:
                    task.cancel()
            elif isinstance(d, Finished):
                job = self.jobs[d.job_id]
                job.worker = d.worker_id or job.worker
                if job.state is not _STATES[d.state]:
                    job.move(_STATES[d.state], error=d.message or None)
                self._emit(JobEvent(job))
        self._check_idle()

    def _check_idle(self) -> None:
        if self.scheduler.unfinished() == 0 and not self._splits:
            self._idle.set()

    def _requeued(self, job_ids: Sequence[str]) -> None:
        """After a failed attempt: a job the scheduler will run again goes back to queued."""
        for job_id in job_ids:
            job = self.jobs[job_id]
            still_running = any(k[0] == job_id for k in self._attempts)
            if (
                job.state in (JobState.DISPATCHED, JobState.RUNNING)
                and not still_running
                and self.scheduler.state(job_id) in ("queued", "active")
            ):
                job.move(JobState.QUEUED)
                self.progress.pop(job_id, None)
                self._emit(JobEvent(job))

    async def _attempt(self, job_id: str, worker_id: str) -> None:
        worker = self.workers.get(worker_id)
        job = self.jobs[job_id]
        key = (job_id, worker_id)
        try:
            if worker is None:
                raise WorkerFailure(FailureKind.LOST, f"{worker_id} is gone")
            task = await self._payload(job)
            data = await worker.run(
                task,
                lambda f: self._on_progress(job, f),
                lambda: self._on_started(job, worker_id),
                lambda: self._on_computed(job, worker_id),
            )
        except asyncio.CancelledError:
            self._started_at.pop(key, None)
            self._computed_at.pop(key, None)
            return
        except WorkerFailure as exc:
            self._attempt_failed(job_id, worker_id, exc.kind, str(exc))
            if isinstance(exc.__context__, NodeUnreachable) and worker_id in self.workers:
                self.remove_node(worker_id, "refused the connection")  # nothing listens there: gone now
            return
        except FarmError as exc:  # reading the input failed: the job's own fault
            self._attempt_failed(job_id, worker_id, FailureKind.INPUT, str(exc))
            return
        except Exception as exc:  # a bug or a malformed answer: that worker's fault, never a lost job
            log.exception("attempt of %s on %s failed unexpectedly", job.name, worker_id)
            self._attempt_failed(job_id, worker_id, FailureKind.ENGINE, f"{type(exc).__name__}: {exc}")
            return
        self._attempts.pop(key, None)
        began = self._started_at.pop(key, None)
        computed = self._computed_at.pop(key, None)
        if began is not None:
            stats = self.stats.setdefault(worker_id, WorkerStats(worker_id))
            stats.busy_seconds += self.clock() - began
            stats.compute_seconds += (computed if computed is not None else self.clock()) - began
        won, decisions = self.scheduler.succeeded(job_id, worker_id, self.clock())
        log.debug("%s done on %s%s", job.name, worker_id, "" if won else " (another copy won)")
        self._apply(decisions)
        if not won:
            return
        error = None
        try:
            if job.parent is not None:
                await self._save_part(job, data)
            else:
                await asyncio.to_thread(write_atomic, job.output, data, overwrite=self.options.overwrite)
            self._count(worker_id, ok=True, part=job.parent is not None)
        except FileExistsError:
            error = f"{job.output.name} appeared in the output folder meanwhile; not overwritten"
        except FarmError as exc:  # OutputError, or a part's result that is not what was cut
            error = str(exc)
        self._apply(self.scheduler.committed(job_id, self.clock(), error))

    def _attempt_failed(self, job_id: str, worker_id: str, kind: FailureKind, message: str) -> None:
        self._attempts.pop((job_id, worker_id), None)
        self._started_at.pop((job_id, worker_id), None)
        self._computed_at.pop((job_id, worker_id), None)
        if kind is not FailureKind.INPUT:
            self._count(worker_id, ok=False)
            errors = self.stats[worker_id].errors
            errors.append(f"{self.jobs[job_id].name}: {message}")
            del errors[:-20]
        decisions = self.scheduler.failed(job_id, worker_id, kind, message, self.clock())
        self._requeued([job_id])
        self._apply(decisions)

    def _on_started(self, job: Job, worker_id: str) -> None:
        self._started_at[(job.id, worker_id)] = self.clock()
        log.debug("%s started on %s", job.name, worker_id)
        decisions = self.scheduler.started(job.id, worker_id, self.clock())
        if job.state is JobState.DISPATCHED:
            job.move(JobState.RUNNING)
            self._emit(JobEvent(job))
        self._apply(decisions)  # a node not timed yet may take its next job ahead now

    def _on_computed(self, job: Job, worker_id: str) -> None:
        """A node's engine ended the job; its result downloads while that node takes the next one."""
        log.debug("%s computed on %s", job.name, worker_id)
        self._computed_at[(job.id, worker_id)] = self.clock()
        self._apply(self.scheduler.computed(job.id, worker_id, self.clock()))

    # the TransferObserver of the remote workers
    def link_measured(self, worker_id: str, nbytes: int, seconds: float) -> None:
        self.scheduler.link_measured(worker_id, nbytes, seconds)

    def shipped(self, ratio: float, *, cut: bool = True) -> None:
        self.scheduler.shipped(ratio)  # what travels, crops and whole files alike: the link estimates
        if cut:  # what a crop moves: the choice between a crop and the whole files
            self._cut_cost.cut_size(ratio)

    def cut_measured(self, seconds: float, nbytes: int, *, provisional: bool = False) -> None:
        if provisional:
            self._cut_cost.guess(seconds, nbytes)
        else:
            self._cut_cost.add(seconds, nbytes)

    def prefer_whole(self, worker_id: str, nbytes: int, job_id: str | None = None) -> bool:
        if self.options.shipping != "auto":
            return self.options.shipping == "whole"
        link = self.scheduler.link_rate(worker_id)
        req = self.scheduler.request(job_id) if job_id is not None else None
        desc = self._descriptor(req.engine) if req is not None else None
        here = self.scheduler.expected(LOCAL, req) if req is not None and self.options.use_local else None
        mp = req.megapixels if req is not None else 0.0
        crop = self._cut_cost.crop_ratio or 0.0  # before any cut: the whole files count as all extra
        light = desc is not None and desc.light
        off_cpu = req is not None and self.registry.off_cpu(req.engine)
        return send_whole(
            nbytes, crop, link, self._cut_cost, local_seconds=here, megapixels=mp, light=light, off_cpu=off_cpu
        )

    def shares_uplink(self, worker_id: str) -> bool:
        return self.scheduler.shares_uplink(worker_id)

    def uploaded(self, worker_id: str, job_id: str) -> None:
        self.scheduler.uploaded(job_id, worker_id, self.clock())

    def _on_progress(self, job: Job, fraction: float) -> None:
        self.progress[job.id] = fraction
        self._emit(JobEvent(job, progress=fraction))

    def _count(self, worker_id: str, *, ok: bool, part: bool = False) -> None:
        stats = self.stats.setdefault(worker_id, WorkerStats(worker_id))
        if ok and part:
            stats.parts += 1
        elif ok:
            stats.done += 1
        else:
            stats.failed += 1

    async def _payload(self, job: Job) -> Task:
        image = await self._read(job.input)
        mask = await self._read(job.mask) if job.mask is not None else None
        return Task(
            job.id,
            self._specs[job.id],
            image,
            mask,
            priority=job.priority,
            resize_mask=self.options.resize_mask,
            max_pixels=self.options.max_pixels,
        )

    async def _read(self, path: Path) -> bytes:
        """A file's bytes, read off the loop and cached (one mask serves many jobs)."""
        data = self._payloads.get(path)
        if data is not None:
            self._payloads.move_to_end(path)
            return data
        data = await asyncio.to_thread(read_bytes, path)
        self._payloads[path] = data
        self._payload_bytes += len(data)
        while self._payload_bytes > self.options.payload_cache_bytes and len(self._payloads) > 1:
            _, old = self._payloads.popitem(last=False)
            self._payload_bytes -= len(old)
        return data

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.options.tick_seconds)
            self._apply(self.scheduler.tick(self.clock()))
            await self._flush()

    # ------------------------------------------------------- big edits as parts (farm/runtime/splitting.py)
    def _parts_for(self, job: Job, req: JobRequest, *, others: int) -> int:
        """Into how many tiles to cut ``job`` (1: it runs whole; REGIONS: one crop per region of its mask,
        if it has several), from the workers that could run them."""
        if job.parent is not None or self.options.tiles == "off":
            return 1
        if job.spec.op == "inpaint":
            return REGIONS if self._regions_worth_trying(job, req, others) else 1
        if job.spec.op != "upscale":
            return 1
        return tile_count(
            self.options.tiles,
            req.megapixels,
            req.transfer_bytes,
            self._candidates(req),
            max_tiles=splitting.max_tiles(req.megapixels),
            queued_elsewhere=self.scheduler.queued() + others,
        )

    def _candidates(self, req: JobRequest) -> list[Candidate]:
        """The workers that could run ``req`` now (online, not held), with what the scheduler measured."""
        statuses = {s.id: s for s in self.scheduler.workers()}
        candidates = []
        for worker in self.workers.values():
            caps, status = worker.caps(), statuses.get(worker.id)
            if not caps.available or not caps.can_run(req) or status is None or status.paused or not status.online:
                continue
            speed = status.seconds_per_mp.get(req.engine)
            candidates.append(Candidate(speed, self.scheduler.link_rate(worker.id), caps.local, caps.slots))
        return candidates

    def _regions_worth_trying(self, job: Job, req: JobRequest, others: int) -> bool:
        """An inpaint's regions go to several workers when its engine is a model (not OpenCV's, which ends
        a crop in milliseconds), the crop strategy applies and other workers would be idle."""
        if job.mask is None or job.spec.hd.strategy != "crop":
            return False
        if isinstance(self.options.tiles, int):
            return self.options.tiles > 1
        desc = self._descriptor(job.spec.engine)
        if desc is None or desc.devices == ("cpu",):
            return False
        workers = sum(max(1, c.slots) for c in self._candidates(req))
        return workers >= 2 and self.scheduler.queued() + others < workers

    def _split(self, split: Split) -> None:
        split = Split(split.parent, split.request, split.count)  # a fresh one (a retry cuts it again)
        self._splits[split.parent.id] = split
        self._split_counts[split.parent.id] = split
        self._idle.clear()
        self._background(self._cut(split), split)

    def _background(self, coro: Coroutine[Any, Any, None], split: Split) -> None:
        task = asyncio.ensure_future(coro)
        self._split_tasks.add(task)
        split.saving.add(task)
        task.add_done_callback(self._split_tasks.discard)
        task.add_done_callback(split.saving.discard)

    async def _cut(self, split: Split) -> None:
        """Cut the parent into tiles off the loop, then queue them as ordinary jobs."""
        job = split.parent
        desc = self._descriptor(job.spec.engine)
        params = desc.params.validate(job.spec.params) if desc is not None else dict(job.spec.params)
        options = self.options
        try:
            if split.count == REGIONS:
                cut = await asyncio.to_thread(
                    splitting.cut_regions, job, max_pixels=options.max_pixels, resize_mask=options.resize_mask
                )
            else:
                cut = await asyncio.to_thread(
                    splitting.cut_tiles,
                    job,
                    split.count,
                    multiple=desc.size_multiple if desc is not None else 1,
                    overlap=int(params.get("overlap", splitting.DEFAULT_OVERLAP)),
                    max_pixels=options.max_pixels,
                )
        except FarmError as exc:
            self._end_split(split, JobState.FAILED, str(exc))
            return
        if split.ended or self._closed:
            await asyncio.to_thread(splitting.discard, split)
            return
        if cut is None:  # nothing worth cutting apart: the job runs whole
            self._splits.pop(job.id, None)
            self._split_counts.pop(job.id, None)
            self._apply(self.scheduler.add_jobs([split.request], self.clock()))
            return
        split.cut = cut
        split.parts = splitting.part_jobs(job, cut)
        job.split = split.describe()
        await self.enqueue(split.parts)

    async def _save_part(self, part: Job, data: bytes) -> None:
        """A part's result into its parent's staging folder (the save runs to its end even if cancelled)."""
        split = self._splits.get(part.parent or "")
        if split is None or split.cut is None:
            raise OutputError(f"{part.name}: its image ended meanwhile")
        save = asyncio.ensure_future(asyncio.to_thread(split.cut.assembly.save, split.index(part), data))
        split.saving.add(save)
        save.add_done_callback(split.saving.discard)
        await asyncio.shield(save)

    def _part_changed(self, event: JobEvent) -> None:
        """A part moved: its parent moves (started, progress, done when the last part is in, failed)."""
        part = event.job
        split = self._splits.get(part.parent or "")
        if split is None or split.ended:
            return
        parent = split.parent
        if event.progress is not None:
            split.progress[part.id] = event.progress
        elif part.state in (JobState.DISPATCHED, JobState.RUNNING):
            parent.split = split.describe()  # "6 tiles on 3 PCs": the parent is on no one PC
            if parent.state is JobState.QUEUED:
                parent.move(JobState.DISPATCHED)
            if part.state is JobState.RUNNING and parent.state is JobState.DISPATCHED:
                parent.move(JobState.RUNNING)
            self._emit(JobEvent(parent))
        elif part.state is JobState.QUEUED:
            split.progress.pop(part.id, None)  # its worker failed or went away: it runs again elsewhere
        elif part.state is JobState.DONE:
            split.done.add(part.id)
            if split.complete:
                split.assembling = True
                parent.split = split.describe()  # "joining 6 tiles"
                self._emit(JobEvent(parent))
                self._background(self._assemble(split), split)
        elif part.state is JobState.FAILED:
            self._end_split(split, JobState.FAILED, f"{part.name}: {part.error}")
            return
        self.progress[parent.id] = split.fraction
        self._emit(JobEvent(parent, progress=split.fraction))

    async def _assemble(self, split: Split) -> None:
        """Every part is in: the parent's output, written once, atomically."""
        parent, error = split.parent, None
        assert split.cut is not None
        loop = asyncio.get_running_loop()

        def joined(fraction: float) -> None:  # from the assembling thread
            loop.call_soon_threadsafe(self._joined, split, fraction)

        try:
            await asyncio.to_thread(
                split.cut.assembly.write, parent.output, overwrite=self.options.overwrite, progress=joined
            )
        except FileExistsError:
            error = f"{parent.output.name} appeared in the output folder meanwhile; not overwritten"
        except FarmError as exc:
            error = str(exc)
        split.assembling = False
        parent.split = split.describe()
        self._end_split(split, JobState.FAILED if error else JobState.DONE, error)

    def _joined(self, split: Split, fraction: float) -> None:
        if split.ended:
            return
        split.joined = fraction
        self.progress[split.parent.id] = split.fraction
        self._emit(JobEvent(split.parent, progress=split.fraction))

    def _end_split(self, split: Split, state: JobState, error: str | None = None) -> None:
        """The parent ends: its unfinished parts are cancelled and its staging folder goes."""
        if split.ended:
            return
        split.ended = True
        parent = split.parent
        self._splits.pop(parent.id, None)
        for part in split.parts:
            if not part.state.finished:
                self._apply(self.scheduler.cancel(part.id, self.clock()))
        if parent.state is not state:
            parent.move(state, error=error)
        self.progress.pop(parent.id, None)
        self._emit(JobEvent(parent))
        if split.cut is not None:  # else the cut, still running, removes what it made
            self._background(self._discard_after(split), split)
        self._check_idle()

    async def _discard_after(self, split: Split) -> None:
        pending = [t for t in split.saving if t is not asyncio.current_task()]
        await asyncio.gather(*pending, return_exceptions=True)
        await asyncio.to_thread(splitting.discard, split)

    def _scale(self, spec: EditSpec) -> int:
        """How many times bigger an edit's result is on each side (an upscaler's factor; 1 for an inpaint)."""
        if spec.op != "upscale":
            return 1
        desc = self._descriptor(spec.engine)
        return desc.scale if desc is not None else 1

    def _descriptor(self, engine_id: str) -> EngineDescriptor | None:
        """The engine as this PC knows it, else as a node says it."""
        with contextlib.suppress(EngineError):
            return self.registry.descriptor(engine_id)
        for worker in self.workers.values():
            if isinstance(worker, RemoteWorker):
                for desc in worker.info.engines:
                    if desc.id == engine_id:
                        return desc
        return None

    async def _flush(self) -> None:
        """Write the jobs whose state changed since the last flush to the durable queue."""
        if self.store is None or not self._dirty:
            return
        changed, self._dirty = list(self._dirty.values()), {}
        await asyncio.to_thread(self.store.update, changed)

    def _emit(self, event: FarmEvent) -> None:
        if isinstance(event, JobEvent) and event.job.parent is not None:
            self._part_changed(event)  # a part is the dispatcher's own: the farm sees its parent
            return
        if self.store is not None and isinstance(event, JobEvent) and event.progress is None:
            self._dirty[event.job.id] = event.job
        for listener in self._listeners:
            try:
                listener(event)
            except Exception:
                log.exception("farm listener failed")


def _host_of(worker: Worker) -> str:
    """The host a node is reached at (its link rates are remembered per host); "" for this PC."""
    return urlsplit(worker.client.base_url).hostname or "" if isinstance(worker, RemoteWorker) else ""


def _transfer_bytes(job: Job, scale: int = 1) -> int:
    """What a node would move for ``job`` as whole files: the input and mask up, a result about the
    input's size down (outputs keep the input's format by default), ``scale``² times that for an upscale."""
    try:
        image = os.stat(job.input).st_size
        mask = os.stat(job.mask).st_size if job.mask is not None else 0
    except OSError:
        return 0
    return image * (1 + scale * scale) + mask


def _megapixels(path: Path) -> float:
    if not os.path.isfile(path):  # a pipe or device is never opened here (the attempt refuses it by name)
        return 1.0
    try:
        with Image.open(path) as im:
            return im.size[0] * im.size[1] / 1e6
    except Exception:  # unreadable: the attempt will report it properly
        return 1.0


__all__ = ["LOCAL", "Dispatcher", "FarmEvent", "FarmOptions", "JobEvent", "NodeEvent", "WorkerStats"]
