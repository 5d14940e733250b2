"""The farm's front door: ``async with Farm.open(settings) as farm:``.

A :class:`Farm` owns everything a shell would otherwise wire by hand: the dispatcher (this PC and
the nodes as workers, the pure scheduler), discovery (mDNS, saved and typed peers, heartbeats), the
farm token, the durable queue, and input planning. The app, ``lanfarm run``, ``nodes`` and ``demo``
use only this surface: they submit paths, read typed snapshots and subscribe to one event stream.
Every task and thread it starts is ended by :meth:`Farm.close` (the ``async with`` does it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from farm.core.address import Address
from farm.core.descriptor import EngineDescriptor, merge_descriptors
from farm.core.job import Job, JobState
from farm.core.nodeinfo import NodeInfo
from farm.core.nodetable import DownReason, NodeRecord, NodeState, Unreached
from farm.core.scheduler import LOCAL, Policy, WorkerStatus
from farm.core.spec import EditSpec
from farm.engines.installed import default_registry
from farm.engines.registry import Registry
from farm.errors import FarmError
from farm.imaging.codec import DEFAULT_MAX_PIXELS
from farm.local.measurements import load_measurements, save_measurements
from farm.local.paths import models_dir
from farm.local.sleepers import SleeperBook
from farm.local.store import QueueStore, batch_key
from farm.runtime.discovery import Discovery, NodeListener
from farm.runtime.dispatch import Dispatcher, FarmOptions, JobEvent, NodeEvent, WorkerStats
from farm.runtime.model_sync import Ask, ModelSync, SyncMode
from farm.runtime.planning import OutputNamer, Planned, Problem, UpToDate, plan
from farm.runtime.trust import Trust
from farm.runtime.waker import SleepingNode, Waker
from farm.runtime.workers import RemoteWorker

log = logging.getLogger(__name__)
DOWN_REASONS: dict[str, str] = {"timeout": "stopped answering", "goodbye": "shut down"}


@dataclass(frozen=True, slots=True)
class FarmSettings:
    """What a farm is opened with; the shells resolve it (CLI > ``LANFARM_*`` environment > file).

    ``nodes`` False means this PC alone (no discovery, no peers, no token needed); ``mdns`` False
    means only ``peers``. ``store`` is the durable queue's file (None: nothing is recorded).
    ``measurements``: the file of what earlier batches measured (each worker's speed, each node's link
    rate: :mod:`farm.core.remembered`), read at the start and written as each batch ends (None: the farm
    starts from nothing and keeps nothing).
    ``retry_failed_on_resume``: a batch that ended with failures stays unfinished in the store, and
    resuming it runs its failed jobs again (``lanfarm run``); otherwise a batch is finished when its
    last job ends and resuming runs only what never ended (the app). ``unrunnable_after``: queued
    jobs that no worker of the farm can run end failed, saying what is missing, once that has lasted
    this long (None: they wait).
    """

    token: str = ""
    use_local: bool = True
    local_slots: int = 1
    nodes: bool = True
    mdns: bool = True
    interfaces: tuple[str, ...] = ()
    peers: tuple[Address, ...] = ()
    store: Path | None = None
    measurements: Path | None = None
    retry_failed_on_resume: bool = True
    overwrite: bool = False
    resize_mask: bool = False
    shipping: str = "auto"  # how an inpaint travels to a node: auto, crop or whole (FarmOptions.shipping)
    tiles: str | int = "auto"  # a big upscale cut into tiles for several workers: auto, off or N (FarmOptions.tiles)
    max_pixels: int = DEFAULT_MAX_PIXELS
    heartbeat_interval: float = 2.0
    probe_timeout: float = 2.0
    unrunnable_after: float | None = None
    tick_seconds: float = 0.25
    wake_on_lan: bool = True  # a batch start sends magic packets to nodes that went to sleep
    pins: Path | None = None  # the pinned node certificates (None: pins.json in the config folder)
    models_dir: Path | None = None  # this PC's models folder (None: the default one)
    send_models: SyncMode = "auto"  # models follow the work: auto / ask / off (farm/runtime/model_sync.py)
    ask_send_models: Ask | None = None  # for "ask": may these nodes get this model?


@dataclass(slots=True)
class Batch:
    """Jobs submitted together (one drop, one ``lanfarm run``); counts move as its jobs end."""

    jobs: list[Job]
    out_dir: Path
    problems: list[Problem] = field(default_factory=list)
    unmasked: list[Path] = field(default_factory=list)  # inputs left out: the engine needs a mask
    earlier: list[Job] = field(default_factory=list)  # done by an earlier, interrupted run
    current: list[Path] = field(default_factory=list)  # outputs an earlier run wrote that still match
    resumed: bool = False
    stored: int | None = None  # its id in the durable queue
    done: int = 0
    failed: int = 0
    pending: set[str] = field(default_factory=set)

    @property
    def total(self) -> int:
        return len(self.jobs)

    @property
    def finished(self) -> bool:
        return not self.pending


@dataclass(frozen=True, slots=True)
class BatchEnded:
    """The last job of a batch ended (done, failed or cancelled)."""

    batch: Batch


FarmEvent = JobEvent | NodeEvent | BatchEnded


@dataclass(frozen=True, slots=True)
class WorkerSnapshot:
    """One worker as the dashboard shows it: what it is, what the scheduler sees, what it did."""

    id: str
    name: str
    address: str
    info: NodeInfo | None
    status: WorkerStatus | None
    stats: WorkerStats
    job: str  # the name of the job it runs now ("" when idle)
    progress: float
    vram_used_mb: int | None  # from the node's latest load report

    @property
    def local(self) -> bool:
        return self.id == LOCAL


class Farm:
    """This PC and the farm's nodes, as one queue. Open with ``async with Farm.open(settings)``."""

    def __init__(
        self,
        settings: FarmSettings,
        registry: Registry,
        *,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._clock = clock
        options = FarmOptions(
            use_local=settings.use_local,
            local_slots=settings.local_slots,
            overwrite=settings.overwrite,
            resize_mask=settings.resize_mask,
            max_pixels=settings.max_pixels,
            tick_seconds=settings.tick_seconds,
            shipping=settings.shipping,
            tiles=settings.tiles,
        )
        self._dispatcher = Dispatcher(registry, token=settings.token, options=options, policy=policy, clock=clock)
        self.trust = self._dispatcher.trust = Trust(settings.pins)
        self._dispatcher.subscribe(self._on_dispatcher_event)
        self.models = ModelSync(
            self._dispatcher,
            settings.models_dir or models_dir(),
            mode=settings.send_models,
            ask=settings.ask_send_models,
        )
        self._store: QueueStore | None = None
        self._discovery: Discovery | None = None
        self._listeners: list[Callable[[FarmEvent], None]] = []
        self._batches: list[Batch] = []
        self._ignored: set[str] = set()
        self._paused = False
        self._tasks: set[asyncio.Task[None]] = set()  # loops that run until close (cancelled there)
        self._writes: set[asyncio.Future[None]] = set()  # store writes in flight (awaited at close)
        self.waker: Waker | None = None  # Wake-on-LAN (farm.runtime.waker), with discovery

    # ------------------------------------------------------------------ opening and closing
    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: FarmSettings | None = None,
        *,
        registry: Registry | None = None,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> AsyncIterator[Farm]:
        """A running farm for the ``async with`` block; everything it started is ended after it."""
        farm = cls(settings or FarmSettings(), registry or default_registry(), policy=policy, clock=clock)
        try:
            await farm._start()
            yield farm
        finally:
            await farm.close()

    async def _start(self) -> None:
        s = self.settings
        if s.store is not None:
            self._store = await asyncio.to_thread(QueueStore, s.store)
            self._dispatcher.store = self._store
        if s.measurements is not None:
            self._dispatcher.recall_from(await asyncio.to_thread(load_measurements, s.measurements))
        await self._dispatcher.start()
        if s.nodes:
            book = await asyncio.to_thread(SleeperBook)
            self.waker = Waker(book, enabled=s.wake_on_lan, clock=time.time, run_io=self._write_off_loop)
            self._discovery = Discovery(
                s.token,
                session=self._dispatcher.session,
                trust=self.trust,
                mdns=s.mdns,
                interfaces=s.interfaces or None,
                peers=s.peers,
                listeners=[_DiscoveryFeed(self)],
                heartbeat_interval=s.heartbeat_interval,
                timeout=s.probe_timeout,
                clock=self._clock,
            )
            await self._discovery.async_start()
        if s.unrunnable_after is not None:
            self._spawn(self._fail_unrunnable_after(s.unrunnable_after), "unrunnable jobs")
        if s.nodes:  # "off" only idles it: the app can switch sending on while the farm runs
            self._spawn(self.models.run(), "model sync")

    def _write_off_loop(self, write: Callable[[], None]) -> None:
        future = asyncio.ensure_future(asyncio.to_thread(write))
        self._writes.add(future)
        future.add_done_callback(self._writes.discard)

    def sleeping(self) -> list[SleepingNode]:
        """Nodes that went to sleep (asleep, or waking after a magic packet)."""
        return self.waker.sleeping(n.id for n in self.nodes()) if self.waker else []

    def wake(self, name_or_id: str) -> list[tuple[str, int]]:
        """Send a known node its magic packets; where they went. FarmError if it is not known."""
        sleeper = self.waker.book.find(name_or_id) if self.waker else None
        if sleeper is None or self.waker is None:
            raise FarmError(f"no known node {name_or_id!r} to wake (a node is known once seen with its MAC addresses)")
        return self.waker.wake(sleeper)

    async def close(self) -> None:
        """Stop discovery, the dispatcher (its workers and attempts) and the store; safe to call twice."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._discovery is not None:
            discovery, self._discovery = self._discovery, None
            await discovery.async_stop()
        await self._dispatcher.close()
        self._keep_measurements()
        await asyncio.gather(*self._writes, return_exceptions=True)
        if self._store is not None:
            store, self._store = self._store, None
            await asyncio.to_thread(store.close)

    def subscribe(self, listener: Callable[[FarmEvent], None]) -> Callable[[], None]:
        """Every job, node and batch event, on the loop; returns a function that unsubscribes."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def wait(self) -> None:
        """Until every submitted job has ended (done, failed or cancelled)."""
        await self._dispatcher.wait()

    async def wait_for_nodes(self, timeout: float, *, mdns_grace: float = 1.0) -> None:
        """Give mDNS ``mdns_grace`` seconds to find nodes, then wait until every known address has
        answered or failed once, for at most ``timeout``."""
        if self._discovery is None:
            return
        if self.settings.mdns:
            await asyncio.sleep(mdns_grace)
        await self._discovery.async_wait_probed(timeout)

    # ------------------------------------------------------------------ submitting
    async def submit_paths(
        self,
        paths: Sequence[Path],
        mask: Path | None,
        spec: EditSpec,
        out_dir: Path,
        *,
        resumable: bool = False,
        fresh: bool = False,
        only_masked: bool = False,
        up_to_date: UpToDate | None = None,
        priority: int = 0,
    ) -> Batch:
        """Files and folders -> planned jobs (masks matched by name) -> the queue, recorded first.

        ``resumable``: the same paths, mask, edit and folder again resume an interrupted batch
        (finished outputs are kept) unless ``fresh``. ``only_masked``: inputs without a mask are
        left out (listed in ``unmasked``) when the engine needs one. ``up_to_date``: inputs whose
        output it vouches for are not run again (listed in ``current``). ``priority``: the jobs'
        priority (higher runs first, here and on each node).
        """
        s = self.settings
        if self.waker is not None:
            self.waker.wake_all(n.id for n in self.nodes())  # nodes asleep get their magic packets now
        if s.nodes:  # the model's content id: routing to nodes matches it (this PC alone needs none)
            spec = await self.models.identify(spec)
        key = "app"
        if resumable:
            key = batch_key(
                *sorted(p.resolve() for p in paths),
                mask and mask.resolve(),
                out_dir.resolve(),
                spec.to_json(),
                s.overwrite,
                s.resize_mask,
            )
            stored = (
                None if fresh or self._store is None else await asyncio.to_thread(self._store.unfinished_batch, key)
            )
            if stored is not None and self._store is not None:
                resumed = await asyncio.to_thread(self._store.resume, stored)
                batch = Batch(resumed.todo, out_dir, earlier=resumed.done, resumed=True, stored=stored)
                await self._enqueue(batch, record=False)
                return batch

        def planning() -> tuple[list[Planned], list[Problem]]:
            out_dir.mkdir(parents=True, exist_ok=True)
            return plan(list(paths), mask, out_dir, spec.output, overwrite=s.overwrite, up_to_date=up_to_date)

        items, problems = await asyncio.to_thread(planning)
        current = [i.output for i in items if i.current]
        items = [i for i in items if not i.current]
        unmasked: list[Path] = []
        if only_masked and self._needs_mask(spec):
            unmasked = [i.input for i in items if i.mask is None]
            items = [i for i in items if i.mask is not None]
        jobs = self._jobs(items, spec, priority)
        batch = Batch(jobs, out_dir, problems=problems, unmasked=unmasked, current=current)
        if batch.jobs or resumable:
            await self._enqueue(batch, key=key)
        return batch

    async def submit_masked(self, image: Path, mask: Path, spec: EditSpec, out_dir: Path) -> Batch:
        """One image with a mask painted for it (the mask editor)."""
        if self.settings.nodes:
            spec = await self.models.identify(spec)

        def naming() -> Path:
            out_dir.mkdir(parents=True, exist_ok=True)
            return OutputNamer(out_dir, spec.output, protected=[image]).name_for(image)

        output = await asyncio.to_thread(naming)
        batch = Batch(self._jobs([Planned(image, mask, output)], spec), out_dir)
        await self._enqueue(batch, key="app")
        return batch

    async def resume_unfinished(self) -> list[Batch]:
        """Batches still unfinished when the farm last stopped (or was killed) run again."""
        store = self._store
        if store is None:
            return []
        batches = []
        for stored in await asyncio.to_thread(store.unfinished_batches):
            resumed = await asyncio.to_thread(store.resume, stored, include_failed=self.settings.retry_failed_on_resume)
            if not resumed.todo:
                await asyncio.to_thread(store.finish_batch, stored)
                continue
            batch = Batch(
                resumed.todo, resumed.todo[0].output.parent, earlier=resumed.done, resumed=True, stored=stored
            )
            await self._enqueue(batch, record=False)
            batches.append(batch)
        return batches

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._dispatcher.cancel(job_id)

    def retry(self, job_ids: Sequence[str]) -> None:
        """Failed or cancelled jobs run again (each a batch of one, for the notification)."""
        for job_id in job_ids:
            job = self._dispatcher.jobs.get(job_id)
            if job is not None and job.state in (JobState.FAILED, JobState.CANCELLED):
                self._batches.append(Batch([job], job.output.parent, pending={job_id}))
                self._dispatcher.retry(job_id)

    def pause(self) -> None:
        """No new job starts anywhere (running ones finish)."""
        self._paused = True
        self._dispatcher.pause()

    def resume(self) -> None:
        self._paused = False
        self._dispatcher.resume()

    @property
    def paused(self) -> bool:
        return self._paused

    # ------------------------------------------------------------------ nodes and this PC
    @property
    def tiles(self) -> str | int:
        """Whether big edits are split across workers now: auto, off or a number of tiles."""
        return self._dispatcher.options.tiles

    def set_tiles(self, tiles: str | int) -> None:
        """Cut big upscales into tiles (and inpaints into regions) for several workers: auto, off or N,
        from the next submitted job on."""
        self._dispatcher.options.tiles = tiles

    def set_local(self, use: bool, slots: int) -> None:
        """This PC's worker on or off, or another number of slots, while the farm runs."""
        self._dispatcher.set_local(use, slots)

    def pause_worker(self, worker_id: str, paused: bool) -> None:
        """A paused worker (a node, or this PC: ``LOCAL``) gets no new jobs."""
        self._dispatcher.set_worker_paused(worker_id, paused)

    def ignore_node(self, node_id: str, ignored: bool) -> None:
        """An ignored node gets no jobs and is not used again until it is un-ignored."""
        if ignored:
            self._ignored.add(node_id)
            self._dispatcher.remove_node(node_id, "ignored")
            return
        self._ignored.discard(node_id)
        record = self._discovery.get(node_id) if self._discovery else None
        if record is not None:
            self._sync(record)

    async def add_peer(self, text: str, *, wait: float = 5.0) -> NodeRecord:
        """Add a node by address and probe it; FarmError when nothing answers there within ``wait``."""
        discovery = self._need_discovery()
        address = Address.parse(text)
        discovery.add_peer(address)
        await discovery.async_wait_probed(wait)
        record = next((r for r in discovery.nodes() if address == r.address or address in r.addresses), None)
        if record is None:
            miss = next((u.error for u in discovery.unreached() if u.address == address), "no answer")
            discovery.remove_peer(address)
            raise FarmError(f"{address} did not answer ({miss}); is `lanfarm node` running there?")
        return record

    def remove_node(self, node_id: str, address: str = "") -> None:
        """Stop using a node: its peer address is forgotten and its jobs run elsewhere."""
        if self._discovery is not None and address:
            self._discovery.remove_peer(Address.parse(address))
        self._dispatcher.remove_node(node_id, "removed")

    async def trust_node(self, text: str) -> list[str]:
        """Trust the certificate the node named ``text`` (name, id, address) shows next, after it proves
        the farm token again; returns the ids whose old pin was dropped (none: no such node)."""
        ids = await self.trust.trust(text)
        if ids and self._discovery is not None:
            self._discovery.set_token(self.token)  # ask every node again, now
        return ids

    @property
    def token(self) -> str:
        return self._dispatcher.token

    def set_token(self, token: str) -> None:
        """Use another farm token: requests carry it from now on and every node is asked again."""
        self._dispatcher.set_token(token)
        if self._discovery is not None:
            self._discovery.set_token(token)

    # ------------------------------------------------------------------ snapshots
    @property
    def jobs(self) -> Mapping[str, Job]:
        """Every job submitted since the farm opened, by id (read-only; the tiles of a split edit are not
        jobs of their own here: their edit is)."""
        return MappingProxyType({k: j for k, j in self._dispatcher.jobs.items() if j.parent is None})

    @property
    def worker_ids(self) -> frozenset[str]:
        return frozenset(self._dispatcher.workers)

    def workers(self) -> list[WorkerSnapshot]:
        """Every worker now: this PC and the nodes in use."""
        d = self._dispatcher
        statuses = {s.id: s for s in d.scheduler.workers()}
        out = []
        for worker_id, worker in d.workers.items():
            status = statuses.get(worker_id)
            running = status.running if status else ()
            job = d.jobs.get(running[0]) if running else None
            remote = worker if isinstance(worker, RemoteWorker) else None
            vram = remote.last_load.get("vram") if remote else None
            out.append(
                WorkerSnapshot(
                    id=worker_id,
                    name=worker.name,
                    address=remote.client.base_url if remote else "",
                    info=remote.info if remote else None,
                    status=status,
                    stats=d.stats.get(worker_id) or WorkerStats(worker.name),
                    job=job.name if job else "",
                    progress=d.progress.get(job.id, 0.0) if job else 0.0,
                    vram_used_mb=int(vram) >> 20 if vram else None,
                )
            )
        return out

    def status(self, worker_id: str) -> WorkerStatus | None:
        return next((s for s in self._dispatcher.scheduler.workers() if s.id == worker_id), None)

    def reset_errors(self, worker_id: str) -> None:
        """Forget a worker's failed attempts (the user read them and fixed the cause)."""
        stats = self._dispatcher.stats.get(worker_id)
        if stats is not None:
            stats.failed = 0
            stats.errors.clear()

    def stats(self) -> dict[str, WorkerStats]:
        """What each worker did since the farm opened."""
        return dict(self._dispatcher.stats)

    def nodes(self) -> list[NodeRecord]:
        """The nodes discovery knows (online and unauthorised), by name."""
        return self._discovery.nodes() if self._discovery else []

    def unreached(self) -> list[Unreached]:
        """Addresses probed without finding a node there (a saved peer that is off, say)."""
        return self._discovery.unreached() if self._discovery else []

    def engines(self) -> list[EngineDescriptor]:
        """This PC's engines plus those only nodes have (an AI engine on the GPU box, say)."""
        remote = [e for w in self._dispatcher.workers.values() if isinstance(w, RemoteWorker) for e in w.info.engines]
        return merge_descriptors(self.registry.descriptors(), remote)

    def queued(self) -> int:
        return self._dispatcher.scheduler.queued()

    # ------------------------------------------------------------------ internals
    def _jobs(self, items: Sequence[Planned], spec: EditSpec, priority: int = 0) -> list[Job]:
        return [Job(input=i.input, spec=spec, output=i.output, mask=i.mask, priority=priority) for i in items]

    def _needs_mask(self, spec: EditSpec) -> bool:
        engines = {d.id: d for d in self.engines()}
        return engines[spec.engine].needs_mask if spec.engine in engines else True

    async def _enqueue(self, batch: Batch, *, key: str = "", record: bool = True) -> None:
        if record and self._store is not None:
            batch.stored = await asyncio.to_thread(self._store.new_batch, key)
        batch.pending = {j.id for j in batch.jobs}
        if not batch.pending:
            self._batch_ended(batch)
            return
        self._batches.append(batch)
        await self.models.learn(j.spec for j in batch.jobs)
        await self._dispatcher.enqueue(batch.jobs, batch=batch.stored if record else None)
        self.models.wake()

    def _on_dispatcher_event(self, event: JobEvent | NodeEvent) -> None:
        self._emit(event)
        if isinstance(event, JobEvent) and event.progress is None and event.job.state.finished:
            self._job_ended(event.job)

    def _job_ended(self, job: Job) -> None:
        for batch in list(self._batches):
            if job.id not in batch.pending:
                continue
            batch.pending.discard(job.id)
            if job.state is JobState.DONE:
                batch.done += 1
            else:
                batch.failed += 1
            if batch.finished:
                self._batches.remove(batch)
                self._batch_ended(batch)

    def _batch_ended(self, batch: Batch) -> None:
        keep = self.settings.retry_failed_on_resume and batch.failed > 0
        if batch.stored is not None and self._store is not None and not keep:
            write = asyncio.ensure_future(asyncio.to_thread(self._store.finish_batch, batch.stored))
            self._writes.add(write)
            write.add_done_callback(self._writes.discard)
        self._keep_measurements()
        self._emit(BatchEnded(batch))

    def _keep_measurements(self) -> None:
        """Write what the farm has measured so far for the next batches (taken here, written off the loop)."""
        memory, path = self._dispatcher.memory, self.settings.measurements
        if memory is not None and path is not None:
            data = memory.keep().to_dict(memory.wall())
            self._write_off_loop(lambda: save_measurements(data, path))

    def _sync(self, record: NodeRecord) -> None:
        """Discovery's view of one node -> a worker (online), or none (ignored, unauthorised, offline)."""
        d = self._dispatcher
        if record.id in self._ignored:
            d.remove_node(record.id, "ignored")
            return
        if record.state is NodeState.ONLINE and record.info is not None:
            if self.waker is not None:
                self.waker.seen(record)
            known = record.id in d.workers
            d.add_node(record.id, record.name, record.address.url, record.info)
            if known:
                self._emit(NodeEvent(record.id, record.name, True, address=record.address.url, info=record.info))
            return
        d.remove_node(record.id, record.state)
        if record.state is NodeState.UNTRUSTED:
            self._emit(
                NodeEvent(
                    record.id,
                    record.name,
                    False,
                    record.problem,
                    address=record.address.url,
                    authorised=False,
                    untrusted=True,
                )
            )
        if record.state is NodeState.UNAUTHORISED:
            self._emit(
                NodeEvent(
                    record.id,
                    record.name,
                    False,
                    f"{record.address} answered 401",
                    address=record.address.url,
                    authorised=False,
                )
            )

    def _node_down(self, node_id: str, reason: DownReason) -> None:
        if self.waker is not None:
            self.waker.left(node_id, reason)
        text = DOWN_REASONS.get(reason, reason)
        if node_id in self._dispatcher.workers:
            self._dispatcher.remove_node(node_id, text)
        else:
            self._emit(NodeEvent(node_id, "", False, text))

    async def _fail_unrunnable_after(self, grace: float) -> None:
        """Jobs that no worker of the farm can run end failed once that has lasted ``grace`` seconds
        (a batch never hangs because every node went away and this PC takes no jobs)."""
        loop = asyncio.get_running_loop()
        since: float | None = None
        while True:
            d = self._dispatcher
            if d.scheduler.queued() and not d.could_run_queued() and not self.models.busy:  # no model on its way
                since = since if since is not None else loop.time()
                if loop.time() - since >= grace:
                    d.fail_unrunnable()
                    since = None
            else:
                since = None
            await asyncio.sleep(min(0.5, grace))

    def _spawn(self, coro: Awaitable[None], what: str) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", what, exc_info=t.exception())

        task.add_done_callback(done)

    def _need_discovery(self) -> Discovery:
        if self._discovery is None:
            raise FarmError("this farm uses no nodes (opened with nodes=False)")
        return self._discovery

    def _emit(self, event: FarmEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("farm listener failed")


class _DiscoveryFeed(NodeListener):
    """Discovery's events into the farm (on the loop)."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def on_node_up(self, record: NodeRecord) -> None:
        self.farm._sync(record)

    def on_node_changed(self, record: NodeRecord) -> None:
        self.farm._sync(record)

    def on_node_down(self, node_id: str, reason: DownReason) -> None:
        self.farm._node_down(node_id, reason)


__all__ = ["Batch", "BatchEnded", "Farm", "FarmEvent", "FarmSettings", "JobEvent", "NodeEvent", "WorkerSnapshot"]
