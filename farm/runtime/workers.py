"""Workers the runtime dispatches to: this PC (in-process threads) and remote nodes (HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from farm.core.availability import Availability
from farm.core.nodeinfo import NodeInfo
from farm.core.scheduler import LOCAL, FailureKind, WorkerCaps
from farm.core.spec import EditSpec
from farm.engines.base import CancelToken
from farm.engines.registry import Registry
from farm.errors import FarmError, ImageError, JobCancelled, SpecError
from farm.imaging import pipeline
from farm.imaging.codec import DEFAULT_MAX_PIXELS, Picture, encode_image
from farm.imaging.shipping import Shipment, cut, paste, shippable
from farm.local.files import sha256_hex
from farm.local.hardware import ram_total, usable_cpus
from farm.runtime.client import (
    NodeClient,
    NodeError,
    NodeRejected,
    NodeUnauthorised,
    NodeUnavailable,
    NodeUnreachable,
)

log = logging.getLogger(__name__)
ProgressCb = Callable[[float], None]
StartedCb = Callable[[], None]


def _nothing() -> None:
    return None


class TransferObserver(Protocol):
    """Told about each node transfer (the scheduler's link and cut estimates feed on it)."""

    def link_measured(self, worker_id: str, nbytes: int, seconds: float) -> None: ...

    def shipped(self, ratio: float, *, cut: bool = True) -> None: ...

    def cut_measured(self, seconds: float, nbytes: int, *, provisional: bool = False) -> None: ...

    def prefer_whole(self, worker_id: str, nbytes: int, job_id: str | None = None) -> bool: ...

    def shares_uplink(self, worker_id: str) -> bool: ...

    def uploaded(self, worker_id: str, job_id: str) -> None: ...


class WorkerFailure(Exception):
    """An attempt failed; ``kind`` tells the scheduler whose fault it was."""

    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(slots=True)
class Task:
    """One attempt's payload: the job id, what to do, and the encoded input bytes.

    The hashes are computed on first use (only nodes need them, to skip uploads), off the loop.
    """

    id: str
    spec: EditSpec
    image: bytes
    mask: bytes | None
    priority: int = 0
    resize_mask: bool = False
    max_pixels: int = DEFAULT_MAX_PIXELS
    _image_sha: str | None = None
    _mask_sha: str | None = None

    @property
    def image_sha(self) -> str:
        if self._image_sha is None:
            self._image_sha = sha256_hex(self.image)
        return self._image_sha

    @property
    def mask_sha(self) -> str | None:
        if self.mask is not None and self._mask_sha is None:
            self._mask_sha = sha256_hex(self.mask)
        return self._mask_sha


class Worker(Protocol):
    id: str
    name: str

    def caps(self) -> WorkerCaps: ...

    async def run(
        self, task: Task, progress: ProgressCb, started: StartedCb, computed: StartedCb = _nothing
    ) -> bytes: ...

    async def close(self) -> None: ...


def failure_kind_of(exc: BaseException) -> FailureKind:
    """Input errors are the job's fault; everything else is the worker's."""
    return FailureKind.INPUT if isinstance(exc, ImageError | SpecError) else FailureKind.ENGINE


class LocalWorker:
    """This PC: the same engines, in the node's three stages (``node.executor``): the inputs decoded in a
    pool of codec threads, the engine in one of ``slots`` threads, the result encoded in the codec pool.

    It takes one job more than its slots (``WorkerCaps.prefetch``), so the next input is decoded while an
    engine runs and a result is encoded while the next one runs: a GPU edit does not wait on decoding and
    encoding a 24 MP frame (0.2 s for a JPEG, 1 s for a PNG, against 1 s of engine). A job is ``started``
    when its engine starts; decoding ahead is not running. The engines take the jobs as their inputs are
    decoded (an engine does not wait on a slow decode while another input is ready).

    Codec threads: as many as engine slots (2 at least), never more than the cores. On one core two codecs
    at once only take turns: the lab's 24 MP JPEGs with OpenCV took 5 % longer with two, not one; on two
    cores with two OpenCV slots one codec thread took 30 % longer than two.
    """

    name = "this PC"

    def __init__(self, registry: Registry, slots: int = 1) -> None:
        self.id = LOCAL
        self.registry = registry
        self.slots = max(1, slots)
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="lanfarm-local")
        codecs = min(usable_cpus(), 8, max(2, self.slots))
        self._codec = ThreadPoolExecutor(max_workers=codecs, thread_name_prefix="lanfarm-codec")

    def caps(self) -> WorkerCaps:
        descs = [d for d in self.registry.descriptors() if d.available]
        ram_mb = (ram_total() >> 20) or 8192
        return WorkerCaps(
            id=LOCAL,
            slots=self.slots,
            engines=frozenset(d.id for d in descs),
            models={d.id: frozenset(d.models) for d in descs if d.models},
            memory_mb=int(ram_mb),
            local=True,
            prefetch=1,
        )

    async def run(self, task: Task, progress: ProgressCb, started: StartedCb, computed: StartedCb = _nothing) -> bytes:
        loop = asyncio.get_running_loop()
        token = CancelToken()

        def report(fraction: float) -> None:
            loop.call_soon_threadsafe(progress, fraction)

        def decode() -> pipeline.Prepared:
            return pipeline.prepare(
                task.image,
                task.mask,
                task.spec,
                self.registry,
                max_pixels=task.max_pixels,
                resize_mask=task.resize_mask,
            )

        def engine(prepared: pipeline.Prepared) -> Picture:
            token.check()
            loop.call_soon_threadsafe(started)
            return pipeline.run(prepared, self.registry, progress=report, cancel=token)

        try:
            prepared = await loop.run_in_executor(self._codec, decode)
            running = loop.run_in_executor(self._pool, engine, prepared)
            del prepared  # not held here while the result encodes
            picture = await running
            return await loop.run_in_executor(self._codec, encode_image, picture, task.spec.output)
        except asyncio.CancelledError:
            token.cancel()
            raise
        except JobCancelled:
            raise WorkerFailure(FailureKind.LOST, "cancelled") from None
        except FarmError as exc:
            raise WorkerFailure(failure_kind_of(exc), str(exc)) from None
        except Exception as exc:  # an engine bug fails this job, never the farm
            log.exception("local engine failed")
            raise WorkerFailure(FailureKind.ENGINE, f"{type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        """Wait for the pools' threads to end (running engines were told to cancel by their attempts)."""
        for pool in (self._pool, self._codec):
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)


class RemoteWorker:
    """A node over HTTP: upload blobs it lacks, submit, follow its events, download the result.

    An inpaint travels as the crop its engine needs (:mod:`farm.imaging.shipping`): cut here, edited
    there, pasted back here. Uploads to one node go one after another (its first job starts as soon as
    its own input is there); a result downloads while the next upload goes. Each transfer is timed for
    the scheduler's link estimate (``observer``). Cutting and pasting is this PC's CPU work: it goes
    through ``host_cpu`` (the farm shares one among its nodes), so the crops of a burst of dispatches
    do not all decode full frames at once beside this PC's own edits, and each crop is decided with the
    cost of the ones before it measured. Uploads to all nodes share this PC's link too (``uplink``): one at
    a time, so the first node starts computing as soon as its own input is there instead of every node
    waiting for all of theirs; a node whose own link is clearly the slower one (the observer says) does not
    wait for the others.

    A dropped event stream is not a dead node: the job is polled, and only when the node stops
    answering health probes too is the attempt reported LOST (so it runs elsewhere).
    """

    poll_interval = 2.0  # a safety net while the event stream is up (it pushes every change)
    poll_interval_without_events = 0.25
    probe_failures_for_lost = 3

    def __init__(
        self,
        node_id: str,
        name: str,
        client: NodeClient,
        info: NodeInfo,
        *,
        client_id: str = "",
        observer: TransferObserver | None = None,
        host_cpu: asyncio.Semaphore | None = None,
        uplink: asyncio.Lock | None = None,
    ) -> None:
        self.id = node_id
        self.observer = observer
        self.host_cpu = host_cpu or asyncio.Semaphore(1)
        self.uplink = uplink or asyncio.Lock()  # one upload at a time on this PC's link, to any node
        self._uploads = asyncio.Lock()  # one upload at a time on this node's link
        self.name = name
        self.client = client
        self.info = info
        self.client_id = client_id
        self._waiters: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._events_task: asyncio.Task[None] | None = None
        self._events_up = False
        self.last_load: dict[str, Any] = {}
        self.on_change: Callable[[], None] | None = None  # its availability changed (from a load event)
        self._background: set[asyncio.Task[Any]] = set()  # best-effort requests (a cancel) in flight

    def caps(self) -> WorkerCaps:
        return caps_from_info(self.id, self.info)

    def start(self) -> None:
        if self._events_task is None:
            self._events_task = asyncio.create_task(self._follow_events(), name=f"events {self.name}")

    async def close(self) -> None:
        """Stop following events and let the best-effort requests in flight end (each has 3 s)."""
        if self._events_task is not None:
            self._events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._events_task
            self._events_task = None
        await asyncio.gather(*self._background, return_exceptions=True)

    def _fire_and_forget(self, coro: Coroutine[Any, Any, Any]) -> None:
        """A request that must not hold up the caller; owned until done, awaited by :meth:`close`."""
        task = asyncio.ensure_future(asyncio.wait_for(coro, 3.0))
        self._background.add(task)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("%s: background request failed: %s", self.name, task.exception())

    async def run(self, task: Task, progress: ProgressCb, started: StartedCb, computed: StartedCb = _nothing) -> bytes:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiters[task.id] = queue
        submitted = False
        try:
            shipment = await self._ship(task)
            image: bytes = shipment.image if shipment else task.image
            mask: bytes | None = shipment.mask if shipment else task.mask
            spec = shipment.spec if shipment else task.spec
            if shipment is None:
                await asyncio.to_thread(lambda: (task.image_sha, task.mask_sha))  # hash megabytes off the loop
            image_sha = shipment.image_sha if shipment else task.image_sha
            mask_sha = shipment.mask_sha if shipment else task.mask_sha
            async with self._uploads:
                shared = self.observer is None or self.observer.shares_uplink(self.id)
                async with self.uplink if shared else contextlib.nullcontext():
                    await self._send(image, image_sha)
                    if mask is not None and mask_sha is not None:
                        await self._send(mask, mask_sha)
                if self.observer is not None:
                    self.observer.uploaded(self.id, task.id)
            job = await self.client.submit(
                task.id, spec, image_sha, mask_sha, client=self.client_id, priority=task.priority
            )
            submitted = True
            job = await self._until_finished(task.id, job, queue, progress, started)
            if job["state"] == "done":
                computed()
                data = await self._fetch(task.id)
                return data if shipment is None else await self._paste(shipment, data, task)
            if job["state"] == "cancelled":  # by the node's owner (handed back), or its shutdown: run it elsewhere
                why = job.get("error") or "the job was cancelled on the node"
                raise WorkerFailure(FailureKind.LOST, f"{self.name}: {why}")
            kind = FailureKind.INPUT if job.get("error_kind") == "input" else FailureKind.ENGINE
            raise WorkerFailure(kind, f"{self.name}: {job.get('error') or 'failed'}")
        except asyncio.CancelledError:
            if submitted:
                self._fire_and_forget(self.client.cancel(task.id))
            raise
        except NodeRejected as exc:
            if exc.status == 409:  # a blob we thought it had is gone (evicted, node restarted)
                self.client.forget_blobs()
            if exc.status == 422 and exc.code in ("invalid_spec", "bad_request"):
                raise WorkerFailure(FailureKind.INPUT, str(exc)) from None
            # unknown engine/model here, a blob evicted meanwhile, or draining: try elsewhere
            kind = FailureKind.ENGINE if exc.status == 422 else FailureKind.LOST
            raise WorkerFailure(kind, str(exc)) from None
        except NodeUnauthorised as exc:
            raise WorkerFailure(FailureKind.LOST, str(exc)) from None
        except NodeError as exc:
            raise WorkerFailure(FailureKind.LOST, str(exc)) from None
        finally:
            self._waiters.pop(task.id, None)

    async def _ship(self, task: Task) -> Shipment | None:
        """The crop that travels instead of the whole image, cut off the loop (None: the whole input)."""
        if task.mask is None or not shippable(task.spec, has_mask=True):
            return None
        whole = len(task.image) + len(task.mask)
        if self._travels_whole(task, whole):  # at once: a whole input never waits for another node's cut
            return None
        async with self.host_cpu:  # a crop is decided again once the crops before it are measured
            if self._travels_whole(task, whole):
                return None
            began = time.monotonic()
            shipment = await asyncio.to_thread(
                cut, task.image, task.mask, task.spec, max_pixels=task.max_pixels, resize_mask=task.resize_mask
            )
        if shipment is not None:
            shipment.cut_seconds = time.monotonic() - began
            log.debug(
                "%s: %s cut in %.2f s: %d of %d bytes", self.name, task.id, shipment.cut_seconds, shipment.size, whole
            )
            if self.observer is not None:
                self.observer.shipped(shipment.size / max(1, whole))
                # until a paste is measured too, the cut's own time stands for half of the work
                self.observer.cut_measured(2 * shipment.cut_seconds, whole, provisional=True)
        return shipment

    def _travels_whole(self, task: Task, whole: int) -> bool:
        """Whether ``task``'s whole input goes to this node (a fast link, or a cheap engine: the node
        decoding and encoding the frame saves this PC more than a crop would save the link)."""
        if self.observer is None or not self.observer.prefer_whole(self.id, whole, task.id):
            return False
        self.observer.shipped(1.0, cut=False)  # the scheduler counts what travels: the whole files
        log.debug("%s: %s travels whole (%d bytes)", self.name, task.id, whole)
        return True

    async def _paste(self, shipment: Shipment, result: bytes, task: Task) -> bytes:
        try:
            async with self.host_cpu:
                began = time.monotonic()
                data = await asyncio.to_thread(paste, shipment, result, task.spec.output)
        except ImageError as exc:  # what came back is not the crop that was sent: the node's fault
            raise WorkerFailure(FailureKind.ENGINE, f"{self.name}: {exc}") from None
        log.debug("%s: %s pasted in %.2f s", self.name, task.id, time.monotonic() - began)
        if self.observer is not None:
            seconds = shipment.cut_seconds + time.monotonic() - began
            self.observer.cut_measured(seconds, len(task.image) + (len(task.mask) if task.mask else 0))
        return data

    async def _send(self, data: bytes, sha: str) -> None:
        began = time.monotonic()
        if await self.client.send_blob(data, sha):
            log.debug("%s: sent %d bytes in %.2f s", self.name, len(data), time.monotonic() - began)
            if self.observer is not None:
                self.observer.link_measured(self.id, len(data), time.monotonic() - began)

    async def _fetch(self, job_id: str) -> bytes:
        began = time.monotonic()
        data = await self.client.result(job_id)
        log.debug("%s: fetched %d bytes in %.2f s", self.name, len(data), time.monotonic() - began)
        if self.observer is not None:
            self.observer.link_measured(self.id, len(data), time.monotonic() - began)
        return data

    async def _until_finished(
        self,
        job_id: str,
        job: dict[str, Any],
        queue: asyncio.Queue[dict[str, Any]],
        progress: ProgressCb,
        started: StartedCb,
    ) -> dict[str, Any]:
        failures = 0
        announced = False
        while True:
            state = job.get("state")
            if state == "running" and not announced:
                announced = True
                started()
            if state in ("done", "failed", "cancelled"):
                return job
            try:
                wait = self.poll_interval if self._events_up else self.poll_interval_without_events
                update = await asyncio.wait_for(queue.get(), wait)
            except TimeoutError:
                update = {"type": "poll"}
            if update.get("type") == "poll":  # no news for a while, or the event stream dropped: ask
                try:
                    job = await self.client.job(job_id)
                    failures = 0
                except NodeRejected as exc:
                    if exc.status == 404:  # the node restarted and forgot the job
                        raise NodeUnavailable(f"{self.name}: the node no longer knows this job") from None
                    raise
                except NodeUnreachable:
                    raise  # nothing listens there any more: no point probing again
                except NodeUnavailable:  # busy, or a network hiccup: only repeated silence counts
                    failures += 1
                    if failures >= self.probe_failures_for_lost:
                        raise
                continue
            if update.get("type") == "progress":
                progress(float(update.get("progress", 0.0)))
                if not announced:
                    announced = True
                    started()
            elif update.get("type") == "job":
                job = update["job"]

    async def _follow_events(self) -> None:
        delay = 0.2
        while True:
            try:
                async for msg in self.client.events():
                    delay = 0.2
                    self._events_up = True
                    self._route(msg)
            except NodeError as exc:
                log.debug("%s: events unavailable: %s", self.name, exc)
            except Exception:
                log.exception("%s: events follower failed", self.name)
            self._events_up = False
            for queue in self._waiters.values():  # the stream dropped: every waiting job asks at once
                queue.put_nowait({"type": "poll"})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _route(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "load":
            self.last_load = msg
            if "state" in msg:  # the node's owner paused it, or took it back: before any job message
                self._set_availability(Availability.from_dict(msg))
            return
        job_id = msg.get("id") if kind == "progress" else (msg.get("job") or {}).get("id")
        queue = self._waiters.get(job_id) if isinstance(job_id, str) else None
        if queue is not None:
            queue.put_nowait(msg)

    def _set_availability(self, availability: Availability) -> None:
        if availability != self.info.availability:
            self.info = dataclasses.replace(self.info, availability=availability)
            if self.on_change is not None:
                self.on_change()


def caps_from_info(node_id: str, info: NodeInfo) -> WorkerCaps:
    """A node's /v1/info as scheduler capabilities (memory: the biggest GPU, else RAM)."""
    engines = info.available_engines
    return WorkerCaps(
        id=node_id,
        slots=info.slots_total,
        engines=frozenset(e.id for e in engines),
        models={e.id: frozenset(e.models) for e in engines if e.models},
        memory_mb=info.memory_mb,
        available=info.availability.available,
        model_ids=info.model_ids(),
    )
