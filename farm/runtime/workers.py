"""Workers the runtime dispatches to: this PC (in-process threads) and remote nodes (HTTP)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from farm.core.nodeinfo import NodeInfo
from farm.core.scheduler import LOCAL, FailureKind, WorkerCaps
from farm.core.spec import EditSpec
from farm.engines.base import CancelToken
from farm.engines.registry import Registry
from farm.errors import FarmError, ImageError, JobCancelled, SpecError
from farm.imaging.codec import DEFAULT_MAX_PIXELS
from farm.imaging.pipeline import execute
from farm.local.files import sha256_hex
from farm.local.hardware import ram_total
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

    async def run(self, task: Task, progress: ProgressCb, started: StartedCb) -> bytes: ...

    async def close(self) -> None: ...


def failure_kind_of(exc: BaseException) -> FailureKind:
    """Input errors are the job's fault; everything else is the worker's."""
    return FailureKind.INPUT if isinstance(exc, ImageError | SpecError) else FailureKind.ENGINE


class LocalWorker:
    """This PC: the same engines in a thread pool of ``slots`` threads."""

    name = "this PC"

    def __init__(self, registry: Registry, slots: int = 1) -> None:
        self.id = LOCAL
        self.registry = registry
        self.slots = max(1, slots)
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="lanfarm-local")

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
        )

    async def run(self, task: Task, progress: ProgressCb, started: StartedCb) -> bytes:
        loop = asyncio.get_running_loop()
        token = CancelToken()

        def report(fraction: float) -> None:
            loop.call_soon_threadsafe(progress, fraction)

        def work() -> bytes:
            loop.call_soon_threadsafe(started)
            return execute(
                task.image,
                task.mask,
                task.spec,
                self.registry,
                progress=report,
                cancel=token,
                max_pixels=task.max_pixels,
                resize_mask=task.resize_mask,
            )

        future = loop.run_in_executor(self._pool, work)
        try:
            return await future
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
        """Wait for the pool's threads to end (running engines were told to cancel by their attempts)."""
        await asyncio.to_thread(self._pool.shutdown, wait=True, cancel_futures=True)


class RemoteWorker:
    """A node over HTTP: upload blobs it lacks, submit, follow its events, download the result.

    A dropped event stream is not a dead node: the job is polled, and only when the node stops
    answering health probes too is the attempt reported LOST (so it runs elsewhere).
    """

    poll_interval = 2.0  # a safety net while the event stream is up (it pushes every change)
    poll_interval_without_events = 0.25
    probe_failures_for_lost = 3

    def __init__(self, node_id: str, name: str, client: NodeClient, info: NodeInfo, *, client_id: str = "") -> None:
        self.id = node_id
        self.name = name
        self.client = client
        self.info = info
        self.client_id = client_id
        self._waiters: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._events_task: asyncio.Task[None] | None = None
        self._events_up = False
        self.last_load: dict[str, Any] = {}
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

    async def run(self, task: Task, progress: ProgressCb, started: StartedCb) -> bytes:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._waiters[task.id] = queue
        submitted = False
        try:
            await asyncio.to_thread(lambda: (task.image_sha, task.mask_sha))  # hash megabytes off the loop
            await self.client.put_blob(task.image, task.image_sha)
            if task.mask is not None:
                await self.client.put_blob(task.mask, task.mask_sha)
            job = await self.client.submit(
                task.id, task.spec, task.image_sha, task.mask_sha, client=self.client_id, priority=task.priority
            )
            submitted = True
            job = await self._until_finished(task.id, job, queue, progress, started)
            if job["state"] == "done":
                return await self.client.result(task.id)
            if job["state"] == "cancelled":
                raise WorkerFailure(FailureKind.LOST, f"{self.name}: the job was cancelled on the node")
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
            return
        job_id = msg.get("id") if kind == "progress" else (msg.get("job") or {}).get("id")
        queue = self._waiters.get(job_id) if isinstance(job_id, str) else None
        if queue is not None:
            queue.put_nowait(msg)


def caps_from_info(node_id: str, info: NodeInfo) -> WorkerCaps:
    """A node's /v1/info as scheduler capabilities (memory: the biggest GPU, else RAM)."""
    engines = info.available_engines
    return WorkerCaps(
        id=node_id,
        slots=info.slots_total,
        engines=frozenset(e.id for e in engines),
        models={e.id: frozenset(e.models) for e in engines if e.models},
        memory_mb=info.memory_mb,
        model_ids=info.model_ids(),
    )
