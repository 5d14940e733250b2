"""The farm runtime with only this PC as a worker: real files, real threads, no sockets."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from farm import EditSpec, default_registry, execute
from farm.core.job import JobState
from farm.engines import EngineEntry, Registry, simulated
from farm.engines.simulated import SimulatedEngine
from farm.runtime.dispatch import Dispatcher, FarmOptions, JobEvent
from farm.runtime.planning import plan
from tests.conftest import box_mask, png_bytes, scene


def _inputs(folder: Path, n: int) -> None:
    for i in range(n):
        (folder / f"img{i}.png").write_bytes(png_bytes(scene(seed=i)))
        (folder / f"img{i}_mask.png").write_bytes(png_bytes(box_mask()))


async def test_local_farm_writes_every_output_once_identical_to_the_pipeline(tmp_path: Path) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    out.mkdir()
    _inputs(src, 6)
    (src / "broken.png").write_bytes(b"\x89PNG broken")
    items, problems = plan([src], None, out, ".png")
    assert problems == []
    registry = default_registry()
    events: list[JobEvent] = []
    async with Dispatcher(registry, options=FarmOptions(local_slots=2)) as farm:
        farm.subscribe(lambda e: events.append(e) if isinstance(e, JobEvent) else None)
        jobs = await farm.submit(items, EditSpec())
        await farm.wait()
    by_name = {j.input.name: j for j in jobs}
    assert by_name["broken.png"].state is JobState.FAILED
    assert "not an image" in (by_name["broken.png"].error or "")
    for name, job in by_name.items():
        if name == "broken.png":
            continue
        assert job.state is JobState.DONE and job.worker == "local" and job.attempts == 1
        expected = execute(job.input.read_bytes(), job.mask.read_bytes() if job.mask else None, EditSpec(), registry)
        assert job.output.read_bytes() == expected
    assert sorted(p.name for p in out.iterdir()) == sorted(f"img{i}.png" for i in range(6))
    states = [e.state for e in events if e.job.input.name == "img0.png" and e.progress is None]
    assert states[0] is JobState.QUEUED and states[-1] is JobState.DONE and JobState.RUNNING in states


async def test_without_any_worker_jobs_fail_with_a_reason(tmp_path: Path) -> None:
    _inputs(tmp_path, 1)
    items, _ = plan([tmp_path / "img0.png"], None, tmp_path / "out", ".png")
    async with Dispatcher(default_registry(), options=FarmOptions(use_local=False)) as farm:
        jobs = await farm.submit(items, EditSpec())
        farm.fail_unrunnable()
        await farm.wait()
    assert jobs[0].state is JobState.FAILED
    assert "no worker of the farm can run engine cv2" in (jobs[0].error or "")


async def test_cancel_and_retry(tmp_path: Path) -> None:
    _inputs(tmp_path, 3)
    items, _ = plan(sorted(tmp_path.glob("img?.png")), None, tmp_path / "out", ".png")
    (tmp_path / "out").mkdir()
    spec = EditSpec(engine="sim", params={"seconds_per_mp": 5.0})  # SIMULATED slow engine
    async with Dispatcher(default_registry(simulate=True), options=FarmOptions(local_slots=1)) as farm:
        farm.pause()
        jobs = await farm.submit(items, spec)
        for job in jobs:
            farm.cancel(job.id)
        await farm.wait()
        assert all(j.state is JobState.CANCELLED for j in jobs)
        assert list((tmp_path / "out").iterdir()) == []
        farm.resume()
        fast = EditSpec(engine="sim", params={"seconds_per_mp": 0.0})
        for job in jobs:
            job.spec = fast
        farm._specs.update({j.id: fast for j in jobs})  # retried with a quicker simulated GPU
        farm.retry(jobs[0].id)
        await farm.wait()
        assert jobs[0].state is JobState.DONE and jobs[0].output.exists()


class CountingEngine(SimulatedEngine):
    """The SIMULATED engine, counting how many copies run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.now = self.peak = 0

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return super().run(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize("slots", [1, 3])
async def test_slots_bound_local_concurrency(tmp_path: Path, slots: int) -> None:
    _inputs(tmp_path, 5)
    items, _ = plan(sorted(tmp_path.glob("img?.png")), None, tmp_path / "out", ".png")
    (tmp_path / "out").mkdir()
    engine = CountingEngine()
    registry = Registry([EngineEntry(simulated.DESCRIPTOR, lambda _m: engine)])
    async with Dispatcher(registry, options=FarmOptions(local_slots=slots)) as farm:
        jobs = await farm.submit(items, EditSpec(engine="sim", params={"seconds_per_mp": 0.5}))
        await farm.wait()
    assert engine.peak == slots
    assert all(j.state is JobState.DONE for j in jobs)


async def test_local_worker_switched_and_resized_while_running(tmp_path: Path) -> None:
    _inputs(tmp_path, 4)
    items, _ = plan(sorted(tmp_path.glob("img?.png")), None, tmp_path / "out", ".png")
    (tmp_path / "out").mkdir()
    engine = CountingEngine()
    registry = Registry([EngineEntry(simulated.DESCRIPTOR, lambda _m: engine)])
    spec = EditSpec(engine="sim", params={"seconds_per_mp": 2.0})
    async with Dispatcher(registry, options=FarmOptions(local_slots=1)) as farm:
        farm.set_local(False, 1)
        assert "local" not in farm.workers
        jobs = await farm.submit(items, spec)
        assert farm.scheduler.queued() == 4  # nobody can take them now
        farm.set_local(True, 3)
        await farm.wait()
    assert all(j.state is JobState.DONE for j in jobs)
    assert engine.peak == 3


class BuggyWorker:
    """A worker whose code crashes (a stand-in for a bug or a malformed node answer)."""

    id = name = "buggy"

    def caps(self):  # type: ignore[no-untyped-def]
        from farm.core.scheduler import WorkerCaps

        return WorkerCaps("buggy", slots=1, engines=frozenset({"cv2"}), prefetch=0)

    async def run(self, task, progress, started, computed=None):  # type: ignore[no-untyped-def]
        raise KeyError("state")

    async def close(self) -> None:
        pass


async def test_a_crashing_worker_never_loses_a_job(tmp_path: Path) -> None:
    _inputs(tmp_path, 3)
    items, _ = plan(sorted(tmp_path.glob("img?.png")), None, tmp_path / "out", ".png")
    (tmp_path / "out").mkdir()
    async with Dispatcher(default_registry(), options=FarmOptions(use_local=False)) as farm:
        farm._add_worker(BuggyWorker())  # type: ignore[arg-type]
        jobs = await farm.submit(items, EditSpec())
        await asyncio.wait_for(farm.wait(), 10)  # failed everywhere it could run: ended, not hung
        assert all(j.state is JobState.FAILED and "KeyError" in (j.error or "") for j in jobs)
        farm.set_local(True, 1)
        for job in jobs:
            farm.retry(job.id)
        await asyncio.wait_for(farm.wait(), 10)
    assert all(j.state is JobState.DONE for j in jobs)
