"""This PC's worker in stages: the next input is decoded while the engine runs, the job ahead is not running.

Only this PC works (no sockets). A gated engine (the test lets each run finish; it stands in for a GPU) makes
every check event-driven: no wall-clock timings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from farm import EditSpec
from farm.core.job import Job, JobState
from farm.engines import EngineEntry, Registry, simulated
from farm.runtime.dispatch import Dispatcher, FarmOptions
from farm.runtime.planning import plan
from tests.conftest import box_mask, png_bytes, scene
from tests.node.test_node_pipeline import GatedEngine

SPEC = EditSpec(engine="sim")


async def until(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "condition never came true"
        await asyncio.sleep(0.005)


def inputs(folder: Path, names: list[str], broken: str | None = None) -> list[Path]:
    folder.mkdir()
    (folder.parent / "out").mkdir()
    for i, name in enumerate(names):
        data = b"\x89PNG broken" if name == broken else png_bytes(scene(seed=i))
        (folder / name).write_bytes(data)
        (folder / name.replace(".png", "_mask.png")).write_bytes(png_bytes(box_mask()))
    return [folder / n for n in names]


def gated() -> tuple[GatedEngine, Registry]:
    engine = GatedEngine()
    return engine, Registry([EngineEntry(simulated.DESCRIPTOR, lambda _m: engine)])


def states(jobs: list[Job], state: JobState) -> list[Job]:
    return [j for j in jobs if j.state is state]


async def test_the_next_input_is_decoded_while_the_engine_runs(tmp_path: Path) -> None:
    """A broken photo fails while the engine still holds the other: it was taken ahead and decoded."""
    engine, registry = gated()
    paths = inputs(tmp_path / "in", ["a.png", "b.png"], broken="b.png")
    items, _ = plan(paths, None, tmp_path / "out", ".png")
    async with Dispatcher(registry, options=FarmOptions(local_slots=1)) as farm:
        good, broken = await farm.submit(items, SPEC)
        await until(lambda: engine.active == 1 and good.state is JobState.RUNNING and broken.state is JobState.FAILED)
        assert "not an image" in (broken.error or "")
        assert good.state is JobState.RUNNING and engine.runs == 1  # its engine still runs
        engine.permits.release()
        await farm.wait()
    assert good.state is JobState.DONE and engine.runs == 1
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.png"]


async def test_one_job_ahead_of_the_slots_and_running_only_once_its_engine_starts(tmp_path: Path) -> None:
    engine, registry = gated()
    paths = inputs(tmp_path / "in", ["a.png", "b.png", "c.png", "d.png"])
    items, _ = plan(paths, None, tmp_path / "out", ".png")
    async with Dispatcher(registry, options=FarmOptions(local_slots=1)) as farm:
        jobs = await farm.submit(items, SPEC)
        await until(lambda: engine.active == 1 and len(states(jobs, JobState.RUNNING)) == 1)
        await until(lambda: len(states(jobs, JobState.DISPATCHED)) == 1)
        await asyncio.sleep(0.05)  # room for a wrong dispatch or start to show
        # one engine runs; one job waits here decoded, not running; the rest stay queued
        assert len(states(jobs, JobState.RUNNING)) == 1 and len(states(jobs, JobState.DISPATCHED)) == 1
        assert len(states(jobs, JobState.QUEUED)) == 2
        (ahead,) = states(jobs, JobState.DISPATCHED)
        engine.permits.release()
        # the job ahead runs at once; the next is taken ahead in its place
        await until(lambda: engine.active == 1 and engine.runs == 2 and ahead.state is JobState.RUNNING)
        await until(lambda: len(states(jobs, JobState.DISPATCHED)) == 1 and len(states(jobs, JobState.DONE)) == 1)
        assert len(states(jobs, JobState.QUEUED)) == 1 and ahead.state is JobState.RUNNING
        engine.permits.release(3)
        await farm.wait()
    assert all(j.state is JobState.DONE for j in jobs) and engine.peak == 1 and engine.runs == 4


async def test_a_job_cancelled_while_it_waits_ahead_never_reaches_the_engine(tmp_path: Path) -> None:
    engine, registry = gated()
    paths = inputs(tmp_path / "in", ["a.png", "b.png", "c.png"])
    items, _ = plan(paths, None, tmp_path / "out", ".png")
    async with Dispatcher(registry, options=FarmOptions(local_slots=1)) as farm:
        jobs = await farm.submit(items, SPEC)
        await until(lambda: engine.active == 1 and len(states(jobs, JobState.DISPATCHED)) == 1)
        (ahead,) = states(jobs, JobState.DISPATCHED)
        attempt = farm._attempts[(ahead.id, "local")]
        farm.cancel(ahead.id)
        await until(lambda: ahead.state is JobState.CANCELLED and attempt.done())  # the cancel reached this PC
        engine.permits.release(3)
        await farm.wait()
    assert len(states(jobs, JobState.DONE)) == 2 and engine.runs == 2
    assert len(list((tmp_path / "out").iterdir())) == 2 and not (tmp_path / "out" / ahead.input.name).exists()
