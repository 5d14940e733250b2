"""The node's job pipeline: decode ahead of the slots, only the engine in a slot, cancel before the engine.

A gated engine (the test lets each run finish) makes every check event-driven: no wall-clock timings.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from farm.core.job import JobState
from farm.core.params import ParamValue
from farm.engines import simulated
from farm.engines.base import CancelToken, ProgressFn
from farm.engines.registry import EngineEntry, Registry
from node import keys
from node.app import create_app
from node.config import NodeConfig
from node.executor import JobRunner
from node.jobs import Phase
from tests.node.conftest import FAKE_HW, Clock, NodeClient, make_app
from tests.node.helpers import SIGNED, TOKEN, job_body, mask_png, png, sha

MASK = mask_png()


class GatedEngine:
    """Stands in for a GPU: each run waits for a permit from the test; counts runs and overlap."""

    descriptor = simulated.DESCRIPTOR

    def __init__(self) -> None:
        self.permits = threading.Semaphore(0)
        self._lock = threading.Lock()
        self.active = self.peak = self.runs = 0

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, ParamValue],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray:
        with self._lock:
            self.active += 1
            self.runs += 1
            self.peak = max(self.peak, self.active)
        try:
            while not self.permits.acquire(timeout=0.005):
                cancel.check()
            progress(1.0)
            return 255 - image
        finally:
            with self._lock:
                self.active -= 1


def gated_app(engine: GatedEngine, **settings: Any) -> web.Application:
    config = NodeConfig(**{"advertise": False, "slots": 1, **settings})
    return create_app(
        config,
        registry=Registry([EngineEntry(simulated.DESCRIPTOR, lambda _m: engine)]),
        token=TOKEN,
        node_id="testnode0001",
        hardware=FAKE_HW,
    )


async def until(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "condition never came true"
        await asyncio.sleep(0.005)


async def post(client: NodeClient, job_id: str, image: bytes) -> None:
    for data in (image, MASK):
        resp = await client.put(f"/v1/blobs/{sha(data)}", data=data)
        assert resp.status in (200, 201), await resp.text()
    resp = await client.post("/v1/jobs", json=job_body(job_id, image, MASK))
    assert resp.status == 202, await resp.text()


async def test_next_job_is_decoded_while_the_engine_runs(aiohttp_client: Any) -> None:
    engine = GatedEngine()
    client = await aiohttp_client(gated_app(engine, slots=1), middlewares=SIGNED)
    runner: JobRunner = client.app[keys.RUNNER]
    await post(client, "first-job", png(seed=1))
    await post(client, "second-job", png(seed=2))
    await post(client, "third-job", png(seed=3))
    first, second, third = (runner.book.get(i) for i in ("first-job", "second-job", "third-job"))
    assert first and second and third
    await until(lambda: engine.active == 1 and second.phase is Phase.READY)
    # the engine runs the first job; the second is decoded, still queued (on the wire too), no slot
    assert first.state is JobState.RUNNING and first.phase is Phase.ENGINE and first.started is not None
    assert second.state is JobState.QUEUED and second.started is None and runner.prepared == 2
    assert third.phase is Phase.QUEUED and runner.queued == 2 and runner.free == 0  # one job decoded ahead
    body = await (await client.get("/v1/jobs/second-job")).json()
    assert body["state"] == "queued" and body["started"] is None
    engine.permits.release()
    await until(lambda: first.state is JobState.DONE and engine.active == 1 and third.phase is Phase.READY)
    assert second.phase is Phase.ENGINE and engine.runs == 2 and runner.prepared == 3
    engine.permits.release(2)
    await until(lambda: third.state is JobState.DONE)
    assert engine.peak == 1 and runner.busy == 0 and await runner.wait_idle(1.0)


@pytest.mark.parametrize("slots", [1, 2])
async def test_never_more_engines_at_once_than_slots(aiohttp_client: Any, slots: int) -> None:
    engine = GatedEngine()
    client = await aiohttp_client(gated_app(engine, slots=slots), middlewares=SIGNED)
    runner: JobRunner = client.app[keys.RUNNER]
    ids = [f"burst-job-{i}" for i in range(6)]
    await asyncio.gather(*(post(client, i, png(seed=n)) for n, i in enumerate(ids)))
    released = 0
    while runner.book.done < len(ids):
        assert engine.active <= slots and runner.busy <= slots and len(runner.book.running) <= slots
        if engine.active == slots or (engine.active and released + slots >= len(ids)):
            engine.permits.release()
            released += 1
            await until(lambda r=released: engine.runs > r or runner.book.done >= r)  # type: ignore[misc]
        await asyncio.sleep(0.002)
    assert engine.peak == slots and engine.runs == len(ids)


async def test_a_job_cancelled_while_decoding_or_ready_never_reaches_the_engine(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = GatedEngine()
    app = gated_app(engine, slots=1)
    client = await aiohttp_client(app, middlewares=SIGNED)
    runner: JobRunner = app[keys.RUNNER]
    decode, gate = runner._decode, threading.Event()

    def slow_decode(job: Any) -> Any:
        if job.id == "decoding-job":
            gate.wait(10)
        return decode(job)

    monkeypatch.setattr(runner, "_decode", slow_decode)
    await post(client, "decoding-job", png(seed=1))
    job = runner.book.get("decoding-job")
    assert job is not None and job.phase is Phase.PREPARING
    body = await (await client.delete("/v1/jobs/decoding-job")).json()
    assert body["state"] == "cancelled" and body["started"] is None
    await post(client, "running-job", png(seed=2))
    await post(client, "ready-job", png(seed=3))
    ready = runner.book.get("ready-job")
    assert ready is not None
    await until(lambda: engine.active == 1 and ready.phase is Phase.READY)
    body = await (await client.delete("/v1/jobs/ready-job")).json()
    assert body["state"] == "cancelled" and body["started"] is None
    gate.set()  # the cancelled decode ends; its result is dropped
    engine.permits.release()
    await until(lambda: runner.book.done == 1)
    assert await runner.wait_idle(5.0)
    assert engine.runs == 1 and runner.book.get("running-job").state is JobState.DONE  # type: ignore[union-attr]
    blobs = app[keys.BLOBS]
    assert not any(blobs.pinned(sha(png(seed=n))) for n in (1, 2, 3)) and not blobs.pinned(sha(MASK))


async def test_a_bad_image_fails_before_taking_a_slot(aiohttp_client: Any) -> None:
    engine = GatedEngine()
    client = await aiohttp_client(gated_app(engine), middlewares=SIGNED)
    await post(client, "broken-img", b"not an image at all")
    runner: JobRunner = client.app[keys.RUNNER]
    await until(lambda: runner.book.failed == 1)
    body = await (await client.get("/v1/jobs/broken-img")).json()
    assert body["error_kind"] == "input" and body["started"] is None and "not an image" in body["error"]
    assert engine.runs == 0 and runner.free == 1 and await runner.wait_idle(1.0)


async def test_post_after_upload_never_409s_when_results_fill_the_cache(aiohttp_client: Any) -> None:
    """Results kept for retention once evicted every unpinned blob, a just-uploaded image included."""
    clock = Clock()
    image = png(seed=0)
    budget_mb = 1.6 * len(image) / (1 << 20)  # a bit more than one image: each job's result fills it
    app = make_app(clock=clock, blob_cache_mb=budget_mb)
    client = await aiohttp_client(app, middlewares=SIGNED)
    runner: JobRunner = app[keys.RUNNER]
    results = []
    for n in range(4):
        clock.now += 61  # past the grace period: the blobs of earlier jobs are fair game
        job_id = f"cached-job-{n}"
        await post(client, job_id, png(seed=n))  # a 409 fails here
        await until(lambda i=job_id: runner.book.get(i).state is JobState.DONE)  # type: ignore[misc, union-attr]
        results.append(runner.book.get(job_id).result)  # type: ignore[union-attr]
        resp = await client.get(f"/v1/jobs/{job_id}/result")
        assert resp.status == 200 and sha(await resp.read()) == results[-1].sha256
    resp = await client.get("/v1/jobs/cached-job-0/result")  # the oldest result made room
    assert resp.status == 404
    assert "evicted" in (await resp.json())["error"]["message"]


async def test_jobs_start_in_the_order_they_came_though_a_later_one_is_decoded_first(
    aiohttp_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decoding runs ahead in parallel, but a slot goes to the job that came first: the third job, decoded
    before the second (the test holds the second's decode), waits for it although a slot is free."""
    engine = GatedEngine()
    app = gated_app(engine, slots=2)
    client = await aiohttp_client(app, middlewares=SIGNED)
    runner: JobRunner = app[keys.RUNNER]
    assert runner.cpu_workers >= 2  # the third job decodes while the second's decode is held
    decode, gate = runner._decode, threading.Event()

    def held_decode(job: Any) -> Any:
        if job.id == "second-job":
            assert gate.wait(10), "the test never released the second job's decode"
        return decode(job)

    monkeypatch.setattr(runner, "_decode", held_decode)
    await post(client, "first-job", png(seed=1))
    first = runner.book.get("first-job")
    assert first is not None
    await until(lambda: first.phase is Phase.ENGINE)
    await post(client, "second-job", png(seed=2))
    await post(client, "third-job", png(seed=3))
    second, third = runner.book.get("second-job"), runner.book.get("third-job")
    assert second and third
    await until(lambda: third.phase in (Phase.READY, Phase.ENGINE))  # decoded before the second (held)
    assert third.phase is Phase.READY and third.started is None, "the third job took the second's slot"
    assert second.phase is Phase.PREPARING and runner.free == 1
    gate.set()
    await until(lambda: second.phase is Phase.ENGINE and engine.active == 2)
    assert third.state is JobState.QUEUED and third.phase is Phase.READY
    engine.permits.release(3)
    await until(lambda: third.state is JobState.DONE and second.state is JobState.DONE)
    assert first.started <= second.started <= third.started  # type: ignore[operator]
    assert await runner.wait_idle(5.0)
