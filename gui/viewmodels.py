"""Between the widgets and the farm: the FarmController QObject.

The controller opens the :class:`farm.runtime.farm.Farm` (on the qasync loop, which is the GUI
thread's), turns its events into model updates and signals, and runs every network or disk step as
an owned asyncio task; a failed step becomes one line in ``message`` (the only place gui/ translates
farm errors). Everything else is forwarding: the farm owns discovery, the token, the queue store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web
from PIL import Image
from PySide6.QtCore import QObject, QTimer, Signal

from farm.core.address import Address
from farm.core.job import Job, JobState
from farm.core.scheduler import LOCAL
from farm.core.spec import EditSpec
from farm.engines import EngineDescriptor, Registry
from farm.errors import FarmError
from farm.local import paths
from farm.local.measurements import measurements_path
from farm.local.peers import load_peers
from farm.local.settings import interfaces
from farm.local.store import default_store_path
from farm.runtime.doctor import Verdict, examine
from farm.runtime.farm import (
    Batch,
    BatchEnded,
    Farm,
    FarmEvent,
    FarmSettings,
    JobEvent,
    NodeEvent,
    WorkerSnapshot,
)
from farm.runtime.model_sync import SYNC_MODES, SendQuestion, SyncMode
from farm.runtime.planning import collect_inputs
from gui.activity import ActivityLog
from gui.nodes_model import NodesModel
from gui.queue_model import QueueModel
from gui.rows import BatchProgress, Counts, plain_error
from gui.settings import AppSettings, SettingsStore

log = logging.getLogger(__name__)
PROBE_WAIT = 5.0  # seconds an added address has to answer
UNRUNNABLE_AFTER = 1.0  # seconds a job no worker can run waits before it ends with the reason


class FarmController(QObject):
    """The app's farm, its queue and node models, and the settings; widgets only talk to this."""

    message = Signal(str)  # one line for the user (also kept in ``log``, the activity strip's history)
    notify = Signal(str, str, bool)  # title, text, is_error: a batch ended (tray notification)
    activity = Signal(str)  # "idle" | "working" | "error"
    countsChanged = Signal(object)  # Counts
    pausedChanged = Signal(bool)
    localPausedChanged = Signal(bool)
    tokenChanged = Signal(str)
    settingsChanged = Signal(object)  # AppSettings
    needsMask = Signal(list)  # inputs dropped without a mask for an engine that needs one
    enginesChanged = Signal(list)  # EngineDescriptors the farm offers: this PC's plus the nodes'

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
        self.monitor_interval = monitor_interval
        self.queue = QueueModel(clock=clock, parent=self)
        self.queue.worker_names[LOCAL] = "this PC"
        self.nodes = NodesModel(parent=self)
        self.farm: Farm | None = None
        self.log = ActivityLog(parent=self)
        self.progress = BatchProgress()
        self._moved: dict[str, int] = {}  # worker -> its jobs put back in the queue in this loop turn
        self._seen_nodes: set[str] = set()
        self.queue_path = queue_path or default_store_path("app-queue")
        self.token = ""
        self.paused = False
        self._activity = "idle"
        self._last_batch_failed = False
        self._tasks: set[asyncio.Task[Any]] = set()
        self._serving: web.AppRunner | None = None  # the APIs other programs use, when the setting is on
        self.serving_url = ""
        self._open = contextlib.AsyncExitStack()  # holds the farm's ``async with`` from start to stop
        # "Send models: ask me": the window's prompt ("send", "not_now" or "always"); None: never sent
        self.asker: Callable[[SendQuestion], Awaitable[str]] | None = None
        self._flush_timer = QTimer(self, interval=100)
        self._flush_timer.timeout.connect(self.flush)
        self._node_timer = QTimer(self, interval=1000)
        self._node_timer.timeout.connect(self.refresh_nodes)

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.token = await asyncio.to_thread(self.store.token)
        self.tokenChanged.emit(self.token)
        saved = await asyncio.to_thread(_saved_peers)
        peers = [Address.parse(p) for p in self.settings.peers] + saved
        settings = FarmSettings(
            token=self.token,
            use_local=self.settings.local_worker,
            local_slots=self.settings.local_slots,
            mdns=self.settings.discovery,  # LANFARM_DISCOVERY applied by the settings store
            interfaces=interfaces().value,
            peers=tuple(dict.fromkeys(peers)),
            store=self.queue_path,
            measurements=measurements_path(),
            retry_failed_on_resume=False,
            heartbeat_interval=self.monitor_interval,
            unrunnable_after=UNRUNNABLE_AFTER,
            models_dir=self.settings.models_dir,
            send_models=sync_mode(self.settings.send_models),
            ask_send_models=self._ask_send_models,
            tiles="auto" if self.settings.split_edits else "off",
        )
        self.farm = await self._open.enter_async_context(Farm.open(settings, registry=self.registry))
        self.farm.subscribe(self.on_event)
        for batch in await self.farm.resume_unfinished():
            self.post(f"Resumed {batch.total} unfinished edit{_s(batch.total)} from last time", "ok")
        if self.settings.serve_api:
            await self._serve(self.settings.serve_port)
        self._flush_timer.start()
        self._node_timer.start()
        self.refresh_nodes()

    async def stop(self) -> None:
        self._flush_timer.stop()
        self._node_timer.stop()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop_serving()
        self.farm = None
        await self._open.aclose()

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
                self.post(f"{what[:1].upper()}{what[1:]} failed: {plain_error(str(exc))}", "error")
            elif exc is not None:
                log.error("%s failed", what, exc_info=exc)
                self.post(f"{what[:1].upper()}{what[1:]} failed unexpectedly: {type(exc).__name__}: {exc}", "error")

        task.add_done_callback(done)
        return task

    # ------------------------------------------------------- other programs (lanfarm serve's APIs)
    async def _serve(self, port: int) -> None:
        """Serve IOPaint's API and the farm API on 127.0.0.1:``port`` over this app's farm: Krita's
        plugin or a script on this PC sends edits to the whole farm, and they show in the queue."""
        await self._stop_serving()
        farm = self._farm()
        from farm.api.access import Access
        from farm.api.app import ServeConfig, create_app, make_runner

        config = ServeConfig(work_dir=paths.cache_dir() / "app-serve", access=Access(self.token))
        runner = make_runner(create_app(farm, config))
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", port).start()
        except OSError as exc:
            await runner.cleanup()
            self.post(f"Other programs cannot use the farm: 127.0.0.1:{port} is taken ({exc.strerror or exc})", "error")
            return
        self._serving = runner
        self.serving_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        self.post(f"Other programs can use the farm at {self.serving_url} (IOPaint's API; docs/clients.md)", "ok")

    async def _stop_serving(self) -> None:
        runner, self._serving, self.serving_url = self._serving, None, ""
        if runner is not None:
            await runner.cleanup()

    async def _ask_send_models(self, question: SendQuestion) -> bool:
        """Setting "ask me": the window's prompt answers (none: not sent); "always" switches the setting."""
        if self.asker is None:
            return False
        answer = await self.asker(question)
        nodes = ", ".join(question.nodes)
        if answer == "always":
            self.update_settings(replace(self.settings, send_models="auto"))
            self.post(f"Sending {question.model} to {nodes}; models now go to nodes automatically", "ok")
        elif answer == "send":
            self.post(f"Sending {question.model} to {nodes}", "ok")
        else:
            self.post(f"Not sending {question.model} to {nodes}: its edits run where the model is", "info")
        return answer in ("send", "always")

    def post(self, text: str, level: str = "info") -> None:
        """Tell the user something; it stays in the activity log."""
        self.log.post(text, level)
        self.message.emit(text)

    def engines(self) -> list[EngineDescriptor]:
        """This PC's engines plus those only nodes have (an AI engine on the GPU box, say)."""
        return self.farm.engines() if self.farm else self.registry.descriptors()

    # ----------------------------------------------------------------------- jobs
    async def add_paths(self, paths: Sequence[Path], spec: EditSpec) -> list[Job]:
        """Dropped files/folders -> checked here (readable image, under the size limit) -> the farm
        (masks by name: NAME_mask.* beside the image or masks/NAME.*)."""
        farm = self._farm()
        paths, refused = await asyncio.to_thread(check_locally, paths, farm.settings.max_pixels)
        for path, reason in refused[:3]:
            self.post(f"{path.name} not added: {reason}", "warning")
        if len(refused) > 3:
            self.post(f"{len(refused) - 3} more files not added (too big or not images)", "warning")
        if not paths:
            return []
        batch = await farm.submit_paths(paths, None, spec, self.settings.output_dir, only_masked=True)
        if batch.unmasked:
            self.needsMask.emit(batch.unmasked)
        if batch.problems:
            n = len(batch.problems)
            self.post(f"{n} file{_s(n)} skipped: {plain_error(str(batch.problems[0]))}", "warning")
        return self._queued(batch)

    async def add_with_mask(self, image: Path, mask: Path, spec: EditSpec) -> list[Job]:
        """An image with a mask painted in the editor."""
        return self._queued(await self._farm().submit_masked(image, mask, spec, self.settings.output_dir))

    def _queued(self, batch: Batch) -> list[Job]:
        if batch.jobs:
            self.post(f"Queued {batch.total} image{_s(batch.total)}")
        return batch.jobs

    def cancel(self, job_ids: Sequence[str]) -> None:
        self._farm().cancel(job_ids)

    def retry(self, job_ids: Sequence[str]) -> None:
        self._farm().retry(job_ids)

    def set_paused(self, paused: bool) -> None:
        farm = self._farm()
        if paused:
            farm.pause()
        else:
            farm.resume()
        self.paused = paused
        self.pausedChanged.emit(paused)

    def set_local_paused(self, paused: bool) -> None:
        self.set_node_paused(LOCAL, paused)

    # ---------------------------------------------------------------------- nodes
    async def add_peer(self, text: str) -> str:
        """Add a node by address: probed at once, saved in the settings when a node answered there."""
        if not text.strip():
            raise ValueError("type the node's address first, e.g. 192.168.1.20:7788")
        record = await self._farm().add_peer(text, wait=PROBE_WAIT)
        self.update_settings(self.settings.with_peer(Address.parse(text).url))
        self.post(f"Added {record.name} at {Address.parse(text)}: {record.state}", "ok")
        return record.state

    async def trust_node(self, node_id: str) -> None:
        """Trust the new certificate of a node this farm refuses (it is pinned once it proves the token)."""
        row = self.nodes.row(node_id)
        if not await self._farm().trust_node(node_id):
            raise FarmError(f"{row.name if row else node_id} has no pinned certificate to replace")
        self.post(f"Trusting the new certificate of {row.name if row else node_id}; asking it again", "ok")

    async def diagnose(self, wait: float = 2.0) -> list[Verdict]:
        """`lanfarm doctor`'s checks from the app: mDNS here, and every saved, given or known node."""
        farm = self._farm()
        known = [r.address for r in farm.nodes()] + [u.address for u in farm.unreached()]
        peers = list(dict.fromkeys([*farm.settings.peers, *known]))
        mdns = farm.settings.mdns
        return await examine(self.token, peers, list(farm.settings.interfaces), mdns=mdns, wait=wait, trust=farm.trust)

    def remove_peer(self, node_id: str) -> None:
        row = self.nodes.row(node_id)
        if row is None or row.local:
            return
        if self.farm is not None:
            self.farm.remove_node(node_id, row.address)
        self.nodes.remove(node_id)
        self.update_settings(self.settings.without_peer(row.address))

    def set_node_paused(self, node_id: str, paused: bool) -> None:
        self._farm().pause_worker(node_id, paused)
        if node_id == LOCAL:
            self.localPausedChanged.emit(paused)
        self.refresh_nodes()

    def reset_errors(self, node_id: str) -> None:
        """The node's error count and list start again from nothing."""
        if self.farm is not None:
            self.farm.reset_errors(node_id)
        row = self.nodes.row(node_id)
        if row is not None:
            row.errors = []
            row.error = ""
        self.refresh_nodes()

    def set_node_ignored(self, node_id: str, ignored: bool) -> None:
        """An ignored node gets no jobs and is not re-added until it is un-ignored."""
        row = self.nodes.row(node_id)
        if row is None or row.local or self.farm is None:
            return
        self.farm.ignore_node(node_id, ignored)
        self.nodes.update(node_id, ignored=ignored)

    # ---------------------------------------------------------------------- token
    def regenerate_token(self) -> str:
        return self.set_token(self.store.regenerate_token())

    def set_token(self, token: str) -> str:
        token = self.store.set_token(token)
        self.token = token
        if self.farm is not None:
            self.farm.set_token(token)
            if self._serving is not None:  # the farm API checks the token: serve with the new one
                self.spawn(self._serve(self.settings.serve_port), "serving other programs")
        self.tokenChanged.emit(token)
        return token

    # ------------------------------------------------------------------- settings
    def update_settings(self, settings: AppSettings) -> None:
        old, self.settings = self.settings, settings
        self.store.save(settings)
        local = (settings.local_worker, settings.local_slots)
        if self.farm is not None and (old.local_worker, old.local_slots) != local:
            self.farm.set_local(*local)
            self.refresh_nodes()
        serving = (settings.serve_api, settings.serve_port)
        if self.farm is not None and (old.serve_api, old.serve_port) != serving:
            start = self._serve(settings.serve_port) if settings.serve_api else self._stop_serving()
            self.spawn(start, "serving other programs")
        if self.farm is not None:
            self.farm.models.mode = sync_mode(settings.send_models)  # from its next look
            self.farm.set_tiles("auto" if settings.split_edits else "off")  # from the next edit on
        self.settingsChanged.emit(settings)

    # --------------------------------------------------------------------- events
    def on_event(self, event: FarmEvent) -> None:
        """From the farm (on the loop = GUI thread): staged now, shown at the next flush (10 a second)."""
        if isinstance(event, JobEvent):
            previous = self.queue.staged_state(event.job.id)
            self.queue.stage(event.job, event.progress)
            if event.progress is None:
                self._job_changed(event, previous)
        elif isinstance(event, NodeEvent):
            if event.name:
                self.queue.worker_names[event.worker_id] = event.name
            name = event.name or self.queue.worker_names.get(event.worker_id, event.worker_id)
            if event.online:
                self.nodes.node_up(event.worker_id, event.name, event.address, event.info)
                if event.worker_id != LOCAL and event.worker_id not in self._seen_nodes:
                    self.post(f"{name} joined the farm", "ok")
                self._seen_nodes.add(event.worker_id)
            elif event.untrusted:
                self.nodes.node_untrusted(event.worker_id, event.address, event.reason)
                self.post(f"{name} is not trusted: {event.reason}", "error")
            elif not event.authorised:
                self.nodes.node_unauthorised(event.worker_id, event.address, event.reason)
                self.post(f"{name} refused this farm's token: copy the token (Nodes tab) into its token file", "error")
            else:
                row = self.nodes.row(event.worker_id)
                was_online = row is not None and row.online
                self.nodes.node_down(event.worker_id, event.reason)
                moved = self._moved.pop(event.worker_id, 0)
                if event.worker_id != LOCAL and (was_online or moved):
                    text = f"{name} went offline ({event.reason or 'no answer'})"
                    others = self.farm is not None and bool(self.farm.worker_ids - {event.worker_id})
                    if moved:
                        where = "moved to other PCs" if others else "back in the queue: no other PC is on"
                        text += f" - {moved} edit{_s(moved)} {where}"
                    self.post(text, "warning")
        elif isinstance(event, BatchEnded):
            self._batch_ended(event.batch)

    def _job_changed(self, event: JobEvent, previous: JobState | None) -> None:
        """A job put back in the queue from a worker: counted for that worker's offline notice."""
        job = event.job
        self.progress.job_changed(job.id, event.state, time.monotonic())
        if event.state is JobState.QUEUED and previous in (JobState.DISPATCHED, JobState.RUNNING) and job.worker:
            if not self._moved:  # the node-down event follows in the same loop turn, or never
                asyncio.get_running_loop().call_soon(self._moved.clear)
            self._moved[job.worker] = self._moved.get(job.worker, 0) + 1

    def _batch_ended(self, batch: Batch) -> None:
        self._last_batch_failed = batch.failed > 0
        if batch.failed:
            text = f"{batch.done} of {batch.total} done, {batch.failed} failed or cancelled"
            self.notify.emit("LAN Farm: batch finished with errors", text, True)
            self.log.post(f"Batch finished: {text}", "error")
        else:
            text = f"{batch.done} image{_s(batch.done)} edited, in {batch.out_dir}"
            self.notify.emit("LAN Farm: batch finished", text, False)
            self.log.post(f"Batch finished: {text}", "ok")

    def flush(self) -> None:
        if self.queue.flush():
            counts: Counts = self.queue.counts()
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
        """Once a second: every worker's state, current job and counts, from the farm's snapshot."""
        farm = self.farm
        if farm is None:
            return
        workers = {w.id: w for w in farm.workers()}
        for w in workers.values():
            if self.nodes.row(w.id) is None:
                self.nodes.node_up(w.id, w.name, w.address, w.info)
        self.enginesChanged.emit(self.engines())
        stats = farm.stats()
        waiting = self._waiting_engines()
        sleeping = {z.sleeper.id: z.state for z in farm.sleeping()}  # Wake-on-LAN: asleep or waking
        for row in self.nodes.rows():
            row.sleep = sleeping.get(row.id, "") if not row.online else ""
            row.waiting = self._why_waiting(row.id, workers.get(row.id), waiting) if waiting else ""
            snapshot = workers.get(row.id)
            if snapshot is None:  # not a worker now (offline, ignored ...): what the scheduler last saw
                status, done = farm.status(row.id), stats.get(row.id)
                if done is not None:
                    row.errors = list(done.errors)
                if status is None:
                    self.nodes.sample(row.id, None, row.done, row.failed, "", 0.0)
                else:
                    finished = done.done + done.parts if done else 0
                    self.nodes.sample(row.id, status, finished, done.failed if done else 0, "", 0.0)
                continue
            if snapshot.vram_used_mb is not None:
                row.vram_used_mb = snapshot.vram_used_mb
            s = snapshot.stats
            row.errors = list(s.errors)
            finished = s.done + s.parts  # tiles and regions of split edits are work done there too
            self.nodes.sample(row.id, snapshot.status, finished, s.failed, snapshot.job, snapshot.progress)

    def _waiting_engines(self) -> set[str]:
        """The engines of the edits still queued (none: nothing waits)."""
        farm = self.farm
        if farm is None or not farm.queued():
            return set()
        return {j.spec.engine for j in farm.jobs.values() if j.state is JobState.QUEUED}

    def _why_waiting(self, worker_id: str, snapshot: WorkerSnapshot | None, engines: set[str]) -> str:
        """Why an idle worker takes none of the queued edits, in a few words."""
        if snapshot is None or snapshot.job or (snapshot.status is not None and snapshot.status.paused):
            return ""
        if self.paused:
            return "the queue is paused"
        if snapshot.info is not None:
            own = {e.id for e in snapshot.info.engines if e.available}
        else:
            own = {d.id for d in self.registry.descriptors() if d.available}
        if not engines & own:
            names = ", ".join(sorted(engines))
            return f"it cannot run {names}" + (" (no model here)" if engines & set(self.registry.ids()) else "")
        return "the last edits go to a faster PC, which finishes them sooner"

    def _farm(self) -> Farm:
        if self.farm is None:
            raise FarmError("the farm is not running yet")
        return self.farm


def check_locally(paths: Sequence[Path], max_pixels: int) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Refuse, before anything is sent, images over the farm's size limit (read from the file's header
    only). Folders are expanded only when one of their images is refused."""
    refused: list[tuple[Path, str]] = []
    files, _problems = collect_inputs(paths)
    for f in files:
        reason = _too_big(f, max_pixels)
        if reason:
            refused.append((f, reason))
    if not refused:
        return list(paths), []
    bad = {f for f, _ in refused}
    return [f for f in files if f not in bad], refused


def _too_big(path: Path, max_pixels: int) -> str:
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, ValueError, Image.DecompressionBombError):
        return ""  # not readable as an image here: planning and the engine say why
    if w * h > max_pixels:
        return f"{w}x{h} is {w * h / 1e6:.0f} MP, over the farm's limit of {max_pixels / 1e6:.0f} MP"
    return ""


def _s(n: int) -> str:
    return "" if n == 1 else "s"


def _saved_peers() -> list[Address]:
    """The peers ``lanfarm run`` and ``lanfarm nodes`` use too (peers.json); none if unreadable."""
    try:
        return load_peers()
    except (FarmError, OSError):
        return []


def sync_mode(value: str) -> SyncMode:
    """The farm's model-sending mode for the setting's value (AppSettings keeps it valid)."""
    return next((m for m in SYNC_MODES if m == value), "auto")
