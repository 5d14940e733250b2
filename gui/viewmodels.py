"""Between the widgets and the farm: value types (job rows, node rows) and the FarmController QObject.

The controller owns the :class:`farm.runtime.dispatch.Farm` (on the qasync loop, which is the GUI thread's),
turns its events into model updates, and runs every network or disk step as an owned asyncio task;
a failed step becomes one line in ``message`` (the only place gui/ translates farm errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from farm.core.address import Address
from farm.core.job import Job, JobState
from farm.core.spec import EditSpec
from farm.engines import EngineDescriptor, Registry
from farm.engines.base import merge_descriptors
from farm.errors import FarmError
from farm.local.peers import load_peers
from farm.local.store import QueueStore, default_store_path
from farm.runtime.discovery import Discovery, interfaces_from_env, mdns_switched_off
from farm.runtime.dispatch import LOCAL, Farm, FarmEvent, FarmOptions, JobEvent, NodeEvent
from farm.runtime.planning import OutputNamer, Planned, plan
from gui.nodefeed import AppBridge, DashboardFeed
from gui.nodes_model import NodesModel
from gui.queue_model import QueueModel
from gui.settings import AppSettings, SettingsStore

log = logging.getLogger(__name__)
PROBE_WAIT = 5.0  # seconds an added address has to answer


def _saved_peers() -> list[Address]:
    """The peers ``lanfarm run`` and ``lanfarm nodes`` use too (peers.json); none if unreadable."""
    try:
        return load_peers()
    except (FarmError, OSError):
        return []


# ---------------------------------------------------------------------------------- value types


@dataclass(slots=True)
class Batch:
    """Jobs submitted together; one notification when the last of them ends."""

    job_ids: set[str]
    out_dir: Path
    total: int
    done: int = 0
    failed: int = 0
    stored: int | None = None  # its batch in the durable queue


# ------------------------------------------------------------------------------- the controller
class FarmController(QObject):
    """The app's farm, its queue and node models, and the settings; widgets only talk to this."""

    message = Signal(str)  # one line for the status bar
    notify = Signal(str, str, bool)  # title, text, is_error: a batch ended (tray notification)
    activity = Signal(str)  # "idle" | "working" | "error"
    countsChanged = Signal(object)  # Counts
    pausedChanged = Signal(bool)
    localPausedChanged = Signal(bool)
    tokenChanged = Signal(str)
    settingsChanged = Signal(object)  # AppSettings
    needsMask = Signal(list)  # inputs dropped without a mask for an engine that needs one
    enginesChanged = Signal(list)  # EngineDescriptors the farm offers: this PC's plus the nodes'

    def engines(self) -> list[EngineDescriptor]:
        """This PC's engines plus those only nodes have (an AI engine on the GPU box, say)."""
        remote: list[EngineDescriptor] = []
        for worker in self.farm.workers.values() if self.farm else ():
            for data in (getattr(worker, "info", None) or {}).get("engines", ()):
                with contextlib.suppress(FarmError, KeyError, TypeError, ValueError):
                    remote.append(EngineDescriptor.from_dict(data))
        return merge_descriptors(self.registry.descriptors(), remote)

    def __init__(
        self,
        store: SettingsStore,
        registry: Registry,
        *,
        clock: Callable[[], float] = time.monotonic,
        monitor_interval: float = 2.0,
        queue_path: Path | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.registry = registry
        self.settings = store.load()
        self.clock = clock
        self.monitor_interval = monitor_interval
        self.queue = QueueModel(clock=clock, parent=self)
        self.nodes = NodesModel(parent=self)
        self.farm: Farm | None = None
        self.queue_path = queue_path or default_store_path("app-queue")
        self.queue_store: QueueStore | None = None
        self.token = ""
        self.paused = False
        self._activity = "idle"
        self._batches: list[Batch] = []
        self._last_batch_failed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self.discovery: Discovery | None = None
        self.bridge: AppBridge | None = None
        self._flush_timer = QTimer(self, interval=100)
        self._flush_timer.timeout.connect(self.flush)
        self._node_timer = QTimer(self, interval=1000)
        self._node_timer.timeout.connect(self.refresh_nodes)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.token = await asyncio.to_thread(self.store.token)
        options = FarmOptions(use_local=self.settings.local_worker, local_slots=self.settings.local_slots)
        self.queue_store = await asyncio.to_thread(QueueStore, self.queue_path)
        self.farm = Farm(self.registry, token=self.token, options=options, store=self.queue_store)
        self.farm.subscribe(self.on_event)
        self.tokenChanged.emit(self.token)
        await self.farm.start()
        await self._resume()
        peers = [*self.settings.peers, *(a.url for a in await asyncio.to_thread(_saved_peers))]
        self.bridge = AppBridge(self.farm)
        self.discovery = Discovery(
            self.token,
            session=self.farm.session,
            mdns=self.settings.discovery and not mdns_switched_off(),
            interfaces=interfaces_from_env() or None,
            peers=dict.fromkeys(peers),
            listeners=[self.bridge, DashboardFeed(self.nodes)],
            heartbeat_interval=self.monitor_interval,
        )
        await self.discovery.async_start()
        self._flush_timer.start()
        self._node_timer.start()
        self.refresh_nodes()

    async def stop(self) -> None:
        self._flush_timer.stop()
        self._node_timer.stop()
        if self.discovery is not None:
            await self.discovery.async_stop()
            self.discovery = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self.farm is not None:
            await self.farm.close()
            self.farm = None
        if self.queue_store is not None:
            await asyncio.to_thread(self.queue_store.close)
            self.queue_store = None

    async def _resume(self) -> None:
        """Edits still queued or running when the app last stopped (or was killed) run again."""
        farm, store = self._farm(), self.queue_store
        assert store is not None
        for stored in await asyncio.to_thread(store.unfinished_batches):
            resumed = await asyncio.to_thread(store.resume, stored, include_failed=False)
            if not resumed.todo:
                await asyncio.to_thread(store.finish_batch, stored)
                continue
            self._batches.append(
                Batch({j.id for j in resumed.todo}, resumed.todo[0].output.parent, len(resumed.todo), stored=stored)
            )
            await farm.enqueue(resumed.todo)
            self.message.emit(f"resumed {len(resumed.todo)} unfinished edit(s) from last time")

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run ``coro`` on the loop, owned (cancelled at stop); a failure becomes a status message."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if t.cancelled():
                return
            exc = t.exception()
            if isinstance(exc, FarmError | OSError | ValueError):
                self.message.emit(f"{what}: {exc}")
            elif exc is not None:
                log.error("%s failed", what, exc_info=exc)
                self.message.emit(f"{what} failed unexpectedly: {type(exc).__name__}: {exc}")

        task.add_done_callback(done)
        return task

    # ----------------------------------------------------------------------- jobs
    async def add_paths(self, paths: Sequence[Path], spec: EditSpec) -> list[Job]:
        """Dropped files/folders -> planned jobs (masks by NAME_mask.* convention) -> the farm."""
        farm = self._farm()
        out_dir = self.settings.output_dir
        engines = {d.id: d for d in self.engines()}
        needs_mask = engines[spec.engine].needs_mask if spec.engine in engines else True

        def planning() -> tuple[list[Planned], list[str]]:
            out_dir.mkdir(parents=True, exist_ok=True)
            items, problems = plan(list(paths), None, out_dir, spec.output.suffix)
            return items, [str(p) for p in problems]

        items, problems = await asyncio.to_thread(planning)
        if needs_mask:
            unmasked = [i.input for i in items if i.mask is None]
            items = [i for i in items if i.mask is not None]
            if unmasked:
                self.needsMask.emit(unmasked)
        if problems:
            self.message.emit(f"{len(problems)} skipped: {problems[0]}")
        return await self._submit(farm, items, spec, out_dir)

    async def add_with_mask(self, image: Path, mask: Path, spec: EditSpec) -> list[Job]:
        """An image with a mask painted in the editor."""
        farm = self._farm()
        out_dir = self.settings.output_dir

        def naming() -> Path:
            out_dir.mkdir(parents=True, exist_ok=True)
            return OutputNamer(out_dir, spec.output.suffix, protected=[image]).name_for(image)

        output = await asyncio.to_thread(naming)
        return await self._submit(farm, [Planned(image, mask, output)], spec, out_dir)

    async def _submit(self, farm: Farm, items: list[Planned], spec: EditSpec, out_dir: Path) -> list[Job]:
        if not items:
            return []
        store = self.queue_store
        stored = await asyncio.to_thread(store.new_batch, "app") if store is not None else None
        jobs = await farm.submit(items, spec, batch=stored)
        self._batches.append(Batch({j.id for j in jobs}, out_dir, len(jobs), stored=stored))
        self.message.emit(f"queued {len(jobs)} image{'s' if len(jobs) != 1 else ''}")
        return jobs

    def cancel(self, job_ids: Sequence[str]) -> None:
        for job_id in job_ids:
            self._farm().cancel(job_id)

    def retry(self, job_ids: Sequence[str]) -> None:
        farm = self._farm()
        for job_id in job_ids:
            job = farm.jobs.get(job_id)
            if job is not None and job.state in (JobState.FAILED, JobState.CANCELLED):
                self._batches.append(Batch({job_id}, job.output.parent, 1))
                farm.retry(job_id)

    def set_paused(self, paused: bool) -> None:
        farm = self._farm()
        if paused:
            farm.pause()
        else:
            farm.resume()
        self.paused = paused
        self.pausedChanged.emit(paused)

    def set_local_paused(self, paused: bool) -> None:
        self._farm().set_worker_paused(LOCAL, paused)
        self.localPausedChanged.emit(paused)
        self.refresh_nodes()

    # ---------------------------------------------------------------------- nodes
    async def add_peer(self, text: str) -> str:
        """Add a node by address: probed at once, saved in the settings when a node answered there."""
        discovery = self._discovery()
        address = Address.parse(text)
        discovery.add_peer(address)
        await discovery.async_wait_probed(PROBE_WAIT)
        record = next((r for r in discovery.nodes() if address == r.address or address in r.addresses), None)
        if record is None:
            miss = next((u.error for u in discovery.unreached() if u.address == address), "no answer")
            discovery.remove_peer(address)
            raise FarmError(f"{address} did not answer ({miss}); is `lanfarm node` running there?")
        self.update_settings(self.settings.with_peer(address.url))
        self.message.emit(f"node {record.name} at {address}: {record.state}")
        return record.state

    def remove_peer(self, node_id: str) -> None:
        row = self.nodes.row(node_id)
        if row is None or row.local:
            return
        if self.discovery is not None and row.address:
            self.discovery.remove_peer(Address.parse(row.address))
        if self.farm is not None:
            self.farm.remove_node(node_id, "removed")
        self.nodes.remove(node_id)
        self.update_settings(self.settings.without_peer(row.address))

    def set_node_paused(self, node_id: str, paused: bool) -> None:
        self._farm().set_worker_paused(node_id, paused)
        if node_id == LOCAL:
            self.localPausedChanged.emit(paused)
        self.refresh_nodes()

    def set_node_ignored(self, node_id: str, ignored: bool) -> None:
        """An ignored node gets no jobs and is not re-added until it is un-ignored."""
        row = self.nodes.row(node_id)
        if row is None or row.local:
            return
        bridge, discovery = self.bridge, self.discovery
        if bridge is None or discovery is None:
            return
        if ignored:
            bridge.ignored.add(node_id)
            self._farm().remove_node(node_id, "ignored")
        else:
            bridge.ignored.discard(node_id)
            record = discovery.get(node_id)
            if record is not None:
                bridge.on_node_up(record)
        self.nodes.update(node_id, ignored=ignored)

    # ---------------------------------------------------------------------- token
    def regenerate_token(self) -> str:
        return self.set_token(self.store.regenerate_token())

    def set_token(self, token: str) -> str:
        token = self.store.set_token(token)
        self.token = token
        if self.farm is not None:
            self.farm.token = token
            for worker in self.farm.workers.values():
                client = getattr(worker, "client", None)
                if client is not None:  # a remote worker: its requests carry the new token from now on
                    worker.client = self.farm.node_client(client.base_url)  # type: ignore[attr-defined]
        if self.discovery is not None:
            self.discovery.set_token(token)
        self.tokenChanged.emit(token)
        return token

    # ------------------------------------------------------------------- settings
    def update_settings(self, settings: AppSettings) -> None:
        old, self.settings = self.settings, settings
        self.store.save(settings)
        if self.farm is not None and (old.local_worker, old.local_slots) != (
            settings.local_worker,
            settings.local_slots,
        ):
            self.farm.set_local(settings.local_worker, settings.local_slots)
            self.refresh_nodes()
        self.settingsChanged.emit(settings)

    # --------------------------------------------------------------------- events
    def on_event(self, event: FarmEvent) -> None:
        """From the farm (on the loop = GUI thread): staged now, shown at the next flush (10 a second)."""
        if isinstance(event, JobEvent):
            self.queue.stage(event.job, event.progress)
            if event.progress is None and event.job.state.finished:
                self._job_ended(event.job)
        elif isinstance(event, NodeEvent):
            self.queue.worker_names[event.worker_id] = event.name
            if event.online:
                worker = self.farm.workers.get(event.worker_id) if self.farm else None
                info = getattr(worker, "info", {}) or {}
                address = worker.client.base_url if hasattr(worker, "client") else ""  # type: ignore[union-attr]
                self.nodes.node_up(event.worker_id, event.name, address, info)
            else:
                self.nodes.node_down(event.worker_id, event.reason)

    def _job_ended(self, job: Job) -> None:
        for batch in list(self._batches):
            if job.id not in batch.job_ids:
                continue
            batch.job_ids.discard(job.id)
            if job.state is JobState.DONE:
                batch.done += 1
            else:
                batch.failed += 1
            if not batch.job_ids:
                self._batches.remove(batch)
                self._batch_ended(batch)

    def _batch_ended(self, batch: Batch) -> None:
        self._last_batch_failed = batch.failed > 0
        if batch.stored is not None and self.queue_store is not None:
            self.spawn(asyncio.to_thread(self.queue_store.finish_batch, batch.stored), "saving the queue")
        if batch.failed:
            self.notify.emit(
                "LAN Farm: batch finished with errors",
                f"{batch.done} of {batch.total} done, {batch.failed} failed or cancelled",
                True,
            )
        else:
            self.notify.emit(
                "LAN Farm: batch finished",
                f"{batch.done} image{'s' if batch.done != 1 else ''} edited, in {batch.out_dir}",
                False,
            )

    def flush(self) -> None:
        if self.queue.flush():
            counts = self.queue.counts()
            self.countsChanged.emit(counts)
            working = counts.unfinished > 0
            activity = "working" if working else ("error" if self._last_batch_failed else "idle")
            if activity != self._activity:
                self._activity = activity
                self.activity.emit(activity)

    @property
    def current_activity(self) -> str:
        return self._activity

    def refresh_nodes(self) -> None:
        """Once a second: every worker's state, current job and counts from the scheduler."""
        farm = self.farm
        if farm is None:
            return
        statuses = {s.id: s for s in farm.scheduler.workers()}
        for worker_id, worker in farm.workers.items():
            if self.nodes.row(worker_id) is None:
                address = worker.client.base_url if hasattr(worker, "client") else ""  # type: ignore[union-attr]
                self.nodes.node_up(worker_id, worker.name, address, getattr(worker, "info", {}) or {})
        self.enginesChanged.emit(self.engines())
        for row in self.nodes.rows():
            status = statuses.get(row.id)
            if status is None and row.id not in farm.workers:
                self.nodes.sample(row.id, None, row.done, row.failed, "", 0.0)
                continue
            running = status.running if status else ()
            job = farm.jobs.get(running[0]) if running else None
            stats = farm.stats.get(row.id)
            worker = farm.workers.get(row.id)
            load = getattr(worker, "last_load", None) or {}
            if load.get("vram"):
                row.vram_used_mb = int(load["vram"]) >> 20
            self.nodes.sample(
                row.id,
                status,
                stats.done if stats else 0,
                stats.failed if stats else 0,
                job.name if job else "",
                farm.progress.get(job.id, 0.0) if job else 0.0,
            )

    def _discovery(self) -> Discovery:
        if self.discovery is None:
            raise FarmError("the farm is not running yet")
        return self.discovery

    def _farm(self) -> Farm:
        if self.farm is None:
            raise FarmError("the farm is not running yet")
        return self.farm
