"""Models follow the work: name each job's model by content id, and send a model just in time to nodes
that can run its queued jobs but lack it.

:class:`ModelSync` belongs to a :class:`~farm.runtime.farm.Farm`. ``identify`` gives a spec that names
a model of this PC's models folder that model's content id (so routing matches content, not names).
While the farm runs, ``run`` looks every ``interval`` at the queued jobs: for each model they need,
:func:`farm.core.model_plan.plan_transfers` decides which nodes get it (engine, memory, room, one
transfer per node at a time, the transfer time against running the jobs elsewhere); each transfer
is a task of its own (other nodes keep working), and when it ends the node's info is read again so
the scheduler sends it the jobs at once. A node that refused a model is asked again once that can
have changed (:class:`~farm.core.model_plan.Refusal`: more room, engines or memory, a restart, or a
backoff on ``clock``). Mode ``auto`` sends; ``ask`` sends what the ``ask``
callback allows (none given: nothing); ``off`` sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from farm.core.job import JobState
from farm.core.model_plan import Candidate, ModelNeed, NodeState, Refusal, Transfer, plan_transfers
from farm.core.scheduler import JobRequest
from farm.core.spec import EditSpec
from farm.engines.catalogue import ModelIndex, classify, estimate_memory_mb, sha256_of
from farm.errors import FarmError
from farm.runtime.client import NodeError
from farm.runtime.dispatch import Dispatcher
from farm.runtime.model_push import DEFAULT_CHUNK, ModelPackage, PushError, PushResult, package, push_model
from farm.runtime.workers import RemoteWorker

log = logging.getLogger(__name__)

SyncMode = Literal["auto", "ask", "off"]
SYNC_MODES: tuple[SyncMode, ...] = ("auto", "ask", "off")


@dataclass(frozen=True, slots=True)
class SendQuestion:
    """``ask`` mode: may these nodes get this model? (queued jobs need it, and no capable node has it)."""

    model: str  # its name
    model_id: str
    size: int  # bytes
    nodes: tuple[str, ...]  # the nodes' names
    node_ids: tuple[str, ...]
    jobs: int  # queued jobs that need it
    seconds: float  # the longest of the transfers, estimated
    measured: bool  # the link rate to every one of those nodes was measured (else the estimate assumes one)


#: ``ask``: may these nodes get this model? True sends it. Either answer holds for that model and those
#: nodes for the rest of the session (the farm never asks twice); a node that joins later is asked about.
Ask = Callable[[SendQuestion], Awaitable[bool]]
NodeProgress = Callable[[str, int, int], None]  # node id, bytes it has, bytes in all


@dataclass(frozen=True, slots=True)
class TransferDone:
    """One transfer ended: ``result`` when the node has the model now, ``error`` when it refused or left."""

    node_id: str
    node_name: str
    model: str
    model_id: str
    result: PushResult | None = None
    error: str = ""


class ModelSync:
    """Model ids for specs, and just-in-time transfers for the farm's queued jobs."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        models_dir: Path,
        *,
        mode: SyncMode = "auto",
        ask: Ask | None = None,
        chunk_size: int = DEFAULT_CHUNK,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if mode not in SYNC_MODES:
            raise FarmError(f"model sending must be one of {', '.join(SYNC_MODES)}, not {mode!r}")
        self.dispatcher = dispatcher
        self.models_dir = models_dir
        self.mode = mode
        self.ask = ask
        self.chunk_size = chunk_size
        self.interval = interval
        self.clock = clock
        self.done: list[TransferDone] = []  # every transfer this farm made, in order
        self.listeners: list[Callable[[TransferDone], None]] = []
        self._local: dict[str, LocalModel] = {}  # by model id: this PC's models that jobs named
        self._packages: dict[str, ModelPackage] = {}  # by model id: hashed chunk by chunk, once pushed
        self._inflight: dict[str, asyncio.Task[None]] = {}  # node id -> its one transfer
        self._refused: dict[tuple[str, str], Refusal] = {}  # (node id, model id) -> its last refusal
        self._uptimes: dict[str, tuple[float, float]] = {}  # node id -> (uptime last read, its start then)
        self._answers: dict[tuple[str, str], bool] = {}  # (model id, node id) -> what ``ask`` said
        self._asking: set[str] = set()  # model ids with a question under way
        self._questions: set[asyncio.Future[None]] = set()  # ``ask`` calls under way (cancelled at close)
        self._measured: dict[str, tuple[int, float]] = {}  # node id -> (bytes, seconds) sent
        self._wake = asyncio.Event()

    # ------------------------------------------------------------------ identity
    async def identify(self, spec: EditSpec) -> EditSpec:
        """``spec`` with the content id of its model, when the model is in this PC's models folder."""
        if spec.model is None:
            return spec
        path = self.models_dir / spec.model
        if not path.exists():
            return spec  # named only: nodes that have a file of that name run it (older behaviour)
        try:
            local = await asyncio.to_thread(identify_local, path)
        except (FarmError, OSError) as exc:
            log.debug("cannot identify %s: %s", path, exc)
            return spec
        if local is None:
            return spec
        self._local[local.id] = local
        return replace(spec, model_id=local.id)

    async def learn(self, specs: Iterable[EditSpec]) -> None:
        """Know this PC's files for specs that already name a model id (jobs resumed from the store)."""
        for spec in {s for s in specs if s.model_id is not None and s.model_id not in self._local}:
            await self.identify(replace(spec, model_id=None))

    # ------------------------------------------------------------------ transfers
    @property
    def busy(self) -> bool:
        """Whether a transfer or a question is under way (queued jobs may be waiting for it: they are not
        unrunnable)."""
        return bool(self._inflight or self._asking)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Plan and start transfers until cancelled (then the transfers under way are cancelled too)."""
        try:
            while True:
                self._wake.clear()
                try:
                    await self._tick()
                except Exception:  # one bad round must not end the loop
                    log.exception("model sync")
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        tasks: list[asyncio.Future[None]] = [*self._inflight.values(), *self._questions]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()

    def needs(self) -> list[ModelNeed]:
        """Models of this PC that queued jobs need, with how many online workers hold each."""
        d = self.dispatcher
        counts: dict[str, tuple[str, int]] = {}
        for job in d.jobs.values():
            model_id = job.spec.model_id
            if job.state is JobState.QUEUED and model_id in self._local:
                engine, n = counts.get(model_id, (job.spec.engine, 0))
                counts[model_id] = (engine, n + 1)
        out = []
        for model_id, (engine, jobs) in counts.items():
            local = self._local[model_id]
            probe = JobRequest("probe", engine, model=local.name, model_id=model_id)
            holders = [w for w in d.workers.values() if w.caps().can_run(probe)]
            done = sum(d.stats[w.id].done for w in holders if w.id in d.stats)
            busy = sum(d.stats[w.id].busy_seconds for w in holders if w.id in d.stats)
            model = classify(local.path)
            memory = estimate_memory_mb(model) if model is not None else 0
            out.append(
                ModelNeed(
                    model_id,
                    engine,
                    local.size,
                    memory,
                    jobs,
                    holders=len(holders),
                    seconds_per_job=busy / done if done else None,
                )
            )
        return out

    def candidates(self) -> list[Candidate]:
        out = []
        for worker in self._remote():
            info = worker.info
            out.append(
                Candidate(
                    worker.id,
                    frozenset(info.engine_ids),
                    info.memory_mb,
                    info.model_space,
                    holds=frozenset(m.id for m in info.models if m.id),
                    busy=worker.id in self._inflight,
                    refused=self._still_refused(worker),
                    rate=self._rate(worker.id),
                )
            )
        return out

    def _state(self, worker: RemoteWorker) -> NodeState:
        """The node as a refusal sees it; its start is taken when a new uptime is first seen (so an info
        read a while ago does not look like a later start)."""
        info = worker.info
        seen = self._uptimes.get(worker.id)
        if seen is None or seen[0] != info.uptime:
            seen = self._uptimes[worker.id] = (info.uptime, self.clock() - info.uptime)
        return NodeState(info.model_space, frozenset(info.engine_ids), info.memory_mb, seen[1])

    def _still_refused(self, worker: RemoteWorker) -> frozenset[str]:
        now, state = self.clock(), self._state(worker)
        return frozenset(
            model_id
            for (node_id, model_id), refusal in self._refused.items()
            if node_id == worker.id and refusal.stands(state, now)
        )

    def _refuse(self, worker: RemoteWorker, local: LocalModel) -> None:
        key, now, state = (worker.id, local.id), self.clock(), self._state(worker)
        before = self._refused.get(key)
        self._refused[key] = before.again(now, state) if before else Refusal(local.id, local.size, now, state)

    def _rate(self, node_id: str) -> float | None:
        sent, seconds = self._measured.get(node_id, (0, 0.0))
        return sent / seconds if sent and seconds > 0 else None

    def _remote(self) -> Iterable[RemoteWorker]:
        return (w for w in self.dispatcher.workers.values() if isinstance(w, RemoteWorker))

    async def _tick(self) -> None:
        if self.mode == "off":
            return
        plan = plan_transfers(self.needs(), self.candidates())
        if self.mode == "ask":
            self._ask_about(plan)
            plan = [t for t in plan if self._answers.get((t.model_id, t.node_id))]
        workers = {w.id: w for w in self._remote()}
        for transfer in plan:
            worker = workers.get(transfer.node_id)
            if worker is None or worker.id in self._inflight:
                continue
            task = asyncio.ensure_future(self._send(worker, self._local[transfer.model_id], transfer))
            self._inflight[worker.id] = task

    def _ask_about(self, plan: list[Transfer]) -> None:
        """One question per model for the planned nodes not yet asked about (none given: nothing is sent)."""
        if self.ask is None:
            return
        names = {w.id: w.name for w in self._remote()}
        needs = {n.model_id: n for n in self.needs()}
        for model_id in dict.fromkeys(t.model_id for t in plan):
            new = [t for t in plan if t.model_id == model_id and (model_id, t.node_id) not in self._answers]
            if not new or model_id in self._asking:
                continue
            local = self._local[model_id]
            question = SendQuestion(
                local.name,
                model_id,
                local.size,
                tuple(names.get(t.node_id, t.node_id) for t in new),
                tuple(t.node_id for t in new),
                needs[model_id].jobs if model_id in needs else 0,
                max(t.seconds for t in new),
                all(self._rate(t.node_id) is not None for t in new),
            )
            self._asking.add(model_id)
            task = asyncio.ensure_future(self._ask(question))
            self._questions.add(task)
            task.add_done_callback(self._questions.discard)

    async def _ask(self, question: SendQuestion) -> None:
        assert self.ask is not None
        try:
            answer = bool(await self.ask(question))
            for node_id in question.node_ids:
                self._answers[(question.model_id, node_id)] = answer
            log.info("%s %s to %s", "sending" if answer else "not sending", question.model, ", ".join(question.nodes))
        finally:
            self._asking.discard(question.model_id)
            self._wake.set()

    async def copy_to_nodes(
        self, path: Path, node_ids: Iterable[str] | None = None, progress: NodeProgress | None = None
    ) -> list[TransferDone]:
        """Push a model file or diffusers folder to nodes now ("Copy to nodes"): ``node_ids``, or every
        online node with its engine. One transfer per node at a time: a node busy receiving another
        model is waited for. ``progress(node_id, have, total)`` as bytes arrive."""
        pkg = await asyncio.to_thread(package, path, None, self.chunk_size)
        self._packages[pkg.id] = pkg
        self._local[pkg.id] = LocalModel(pkg.id, pkg.name, path, pkg.size, pkg.kind)
        wanted = set(node_ids) if node_ids is not None else None
        workers = [
            w
            for w in self._remote()
            if (wanted is None and pkg.kind in w.info.engine_ids) or (wanted is not None and w.id in wanted)
        ]

        async def one(worker: RemoteWorker) -> TransferDone:
            while worker.id in self._inflight:  # its one transfer at a time
                await asyncio.wait([self._inflight[worker.id]])  # however it ends
            task = asyncio.ensure_future(self._send(worker, self._local[pkg.id], None, progress))
            self._inflight[worker.id] = task
            await task
            return _find(self.done, worker.id, pkg.id)

        return list(await asyncio.gather(*(one(w) for w in workers)))

    async def _package(self, local: LocalModel) -> ModelPackage:
        """The model hashed chunk by chunk for a push (once per farm); PushError if it changed since."""
        pkg = self._packages.get(local.id)
        if pkg is None:
            pkg = await asyncio.to_thread(package, local.path, None, self.chunk_size)
            if pkg.id != local.id:
                raise PushError(f"{local.path} changed since its jobs were queued", "changed")
            self._packages[local.id] = pkg
        return pkg

    async def _send(
        self, worker: RemoteWorker, local: LocalModel, transfer: Transfer | None, progress: NodeProgress | None = None
    ) -> None:
        if transfer is not None:
            log.info("sending %s to %s (about %.0f s)", local.name, worker.name, transfer.seconds)
        outcome: TransferDone
        report = (lambda have, total: progress(worker.id, have, total)) if progress is not None else None
        try:
            pkg = await self._package(local)
            result = await push_model(worker.client, pkg, progress=report)
            if result.bytes_sent:
                sent, seconds = self._measured.get(worker.id, (0, 0.0))
                self._measured[worker.id] = (sent + result.bytes_sent, seconds + result.seconds)
            outcome = TransferDone(worker.id, worker.name, local.name, local.id, result=result)
            self._refused.pop((worker.id, local.id), None)
            with contextlib.suppress(NodeError):  # its next heartbeat brings the news anyway
                info = await worker.client.info()
                if worker.id in self.dispatcher.workers:
                    self.dispatcher.add_node(worker.id, worker.name, worker.client.base_url, info)
        except (PushError, NodeError) as exc:
            with contextlib.suppress(NodeError):  # the node as it is now: what must change before it is asked again
                info = await worker.client.info()
                if worker.id in self.dispatcher.workers:
                    self.dispatcher.add_node(worker.id, worker.name, worker.client.base_url, info)
            self._refuse(worker, local)
            log.warning("%s did not take %s: %s", worker.name, local.name, exc)
            outcome = TransferDone(worker.id, worker.name, local.name, local.id, error=str(exc))
        finally:
            self._inflight.pop(worker.id, None)
            self._wake.set()
        self.done.append(outcome)
        for listener in list(self.listeners):
            try:
                listener(outcome)
            except Exception:
                log.exception("model sync listener failed")


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A model of this PC's models folder, known by its content id (hashed chunk by chunk only once pushed)."""

    id: str
    name: str
    path: Path
    size: int
    kind: str


def identify_local(path: Path, index: ModelIndex | None = None) -> LocalModel | None:
    """A model file's or diffusers folder's content id, cached by (path, size, mtime) (blocking)."""
    model = classify(path)
    if model is None or model.kind == "unknown" or model.note:
        return None
    index = index or ModelIndex()
    sha = index.get(model).get("sha256")
    if not isinstance(sha, str):
        sha = sha256_of(path)
        index.put(model, sha256=sha)
        with contextlib.suppress(OSError, FarmError):  # a read-only cache costs only speed next time
            index.save()
    return LocalModel(sha, model.name, path, model.size_bytes, model.kind)


def _find(done: list[TransferDone], node_id: str, model_id: str) -> TransferDone:
    return next(d for d in reversed(done) if d.node_id == node_id and d.model_id == model_id)


__all__ = ["SYNC_MODES", "Ask", "ModelSync", "SendQuestion", "SyncMode", "TransferDone"]
