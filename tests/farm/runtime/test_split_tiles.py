"""One big upscale as tiles across real `lanfarm node` processes and this PC (farm/runtime/splitting.py).

Nodes and this PC run the SIMULATED GPU upscaler (`sim-upscale`: a sleep per megapixel, then each pixel
repeated 4x4), so a tiled result must equal the untiled one exactly, whoever ran which tile.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from farm import EditSpec, default_registry
from farm.core.job import Job, JobState
from farm.core.spec import OutputSpec
from farm.runtime.dispatch import Dispatcher, FarmOptions, JobEvent
from farm.runtime.farm import BatchEnded, Farm, FarmSettings
from farm.runtime.planning import plan
from farm.runtime.splitting import staging_for
from tests.conftest import png_bytes, scene
from tests.node.helpers import TOKEN, node_env, start_node, stop_node


def upscale(seconds_per_mp: float) -> EditSpec:
    return EditSpec(
        op="upscale", engine="sim-upscale", params={"seconds_per_mp": seconds_per_mp}, output=OutputSpec("png")
    )


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    started: list[tuple[subprocess.Popen[bytes], str]] = []

    def launch(*args: str) -> tuple[subprocess.Popen[bytes], str]:
        home = tmp_path / f"node{len(started)}"
        env = node_env(home)
        env["LANFARM_TOKEN"] = TOKEN
        proc, url = start_node(
            home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate", *args, env=env
        )
        started.append((proc, url))
        return proc, url

    yield launch  # type: ignore[misc]
    for proc, _ in started:
        stop_node(proc)


def big_image(folder: Path, name: str = "big.png", w: int = 1200, h: int = 900) -> list:  # type: ignore[type-arg]
    src = folder / "in"
    src.mkdir(parents=True)
    (src / name).write_bytes(png_bytes(scene(w, h, seed=7)))
    out = folder / "out"
    out.mkdir()
    items, problems = plan([src / name], None, out, ".png")
    assert not problems
    return items


def decoded(path: Path) -> np.ndarray:
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


async def untiled_reference(tmp_path: Path) -> np.ndarray:
    items = big_image(tmp_path / "ref")
    async with Dispatcher(default_registry(simulate=True), options=FarmOptions(tiles="off")) as farm:
        (job,) = await farm.submit(items, upscale(0.0))
        await farm.wait()
    assert job.state is JobState.DONE, job.error
    return decoded(job.output)


def parts_of(farm: Dispatcher, parent: Job) -> list[Job]:
    return [j for j in farm.jobs.values() if j.parent == parent.id]


async def test_tiles_run_on_several_workers_and_stitch_to_the_untiled_result(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    urls = [nodes()[1] for _ in range(2)]
    items = big_image(tmp_path / "farm")
    progress: list[float] = []
    async with Dispatcher(default_registry(simulate=True), token=TOKEN, options=FarmOptions(tiles=8)) as farm:
        for url in urls:
            await farm.add_peer(url)
        farm.subscribe(lambda e: progress.append(e.progress) if isinstance(e, JobEvent) and e.progress else None)
        (job,) = await farm.submit(items, upscale(1.0))
        await asyncio.wait_for(farm.wait(), 60)
        parts = parts_of(farm, job)
    assert job.state is JobState.DONE, job.error
    assert len(parts) == 8 and all(p.state is JobState.DONE for p in parts)
    assert job.split == f"8 tiles on {len({p.worker for p in parts})} PCs" and job.worker is None  # on no one PC
    assert len({p.worker for p in parts}) >= 2, f"every tile ran on one worker: {[p.worker for p in parts]}"
    assert progress == sorted(progress) and progress[-1] == pytest.approx(1.0)  # the image's, tile by tile
    out = decoded(job.output)
    assert out.shape == (3600, 4800, 3)
    assert np.array_equal(out, await untiled_reference(tmp_path))
    assert sorted(p.name for p in job.output.parent.iterdir()) == ["big.png"]  # one output, no temp files
    assert not staging_for(job).exists()


async def test_a_node_killed_mid_image_still_gives_exactly_one_complete_output(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    victim, victim_url = nodes("--simulate-slowdown", "20")
    _, other_url = nodes()
    items = big_image(tmp_path / "farm")
    done_events = 0
    async with Dispatcher(default_registry(simulate=True), token=TOKEN, options=FarmOptions(tiles=6)) as farm:
        victim_id = await farm.add_peer(victim_url)
        await farm.add_peer(other_url)

        def on_event(e: object) -> None:
            nonlocal done_events
            if isinstance(e, JobEvent) and e.progress is None and e.state is JobState.DONE:
                done_events += 1
            running_there = [
                p for p in farm.jobs.values() if p.parent and p.worker == victim_id and p.state is JobState.RUNNING
            ]
            if running_there and victim.poll() is None:
                victim.send_signal(signal.SIGKILL)

        farm.subscribe(on_event)
        (job,) = await farm.submit(items, upscale(0.5))
        await asyncio.wait_for(farm.wait(), 90)
        parts = parts_of(farm, job)
    assert victim.poll() == -signal.SIGKILL, "the victim never ran a tile"
    assert job.state is JobState.DONE, job.error
    assert any(p.attempts > 1 for p in parts), "no tile was running on the killed node"
    assert done_events == 1  # the image, once; its tiles are not jobs of the farm's
    assert np.array_equal(decoded(job.output), await untiled_reference(tmp_path))
    assert sorted(p.name for p in job.output.parent.iterdir()) == ["big.png"]
    assert not staging_for(job).exists()


async def test_a_cancelled_image_leaves_nothing_behind_and_can_be_retried(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    _, url = nodes()
    items = big_image(tmp_path / "farm")
    async with Dispatcher(default_registry(simulate=True), token=TOKEN, options=FarmOptions(tiles=6)) as farm:
        await farm.add_peer(url)
        started = asyncio.Event()
        farm.subscribe(lambda e: started.set() if isinstance(e, JobEvent) and e.state is JobState.RUNNING else None)
        (job,) = await farm.submit(items, upscale(8.0))  # ~1.2 s a tile
        await asyncio.wait_for(started.wait(), 30)
        assert staging_for(job).is_dir()
        farm.cancel(job.id)
        await asyncio.wait_for(farm.wait(), 30)
        parts = parts_of(farm, job)
        assert job.state is JobState.CANCELLED
        assert all(p.state is JobState.CANCELLED for p in parts if p.state is not JobState.DONE)
        await asyncio.sleep(0.3)  # a save that was in flight ends and the staging folder goes after it
        assert not staging_for(job).exists()
        assert list(job.output.parent.iterdir()) == []
        farm.retry(job.id)
        await asyncio.wait_for(farm.wait(), 60)
    assert job.state is JobState.DONE, job.error
    assert decoded(job.output).shape == (3600, 4800, 3)
    assert not staging_for(job).exists()


async def test_an_unreadable_input_fails_the_image_by_name_and_leaves_nothing(tmp_path: Path) -> None:
    items = big_image(tmp_path / "farm")
    items[0].input.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    async with Dispatcher(default_registry(simulate=True), options=FarmOptions(tiles=4)) as farm:
        (job,) = await farm.submit(items, upscale(0.0))
        await asyncio.wait_for(farm.wait(), 30)
    assert job.state is JobState.FAILED and job.error
    assert not staging_for(job).exists() and list(job.output.parent.iterdir()) == []


async def test_auto_splits_one_big_image_but_not_a_batch_that_fills_the_farm(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    urls = [nodes()[1] for _ in range(2)]
    items = big_image(tmp_path / "one", w=2400, h=1800)  # 4.3 MP at the prior 1 s/MP: worth splitting
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        for url in urls:
            await farm.add_peer(url)
        (job,) = await farm.submit(items, upscale(0.2))
        await asyncio.wait_for(farm.wait(), 60)
        assert job.state is JobState.DONE, job.error
        assert len(parts_of(farm, job)) >= 3
    batch = []
    for i in range(3):
        batch += big_image(tmp_path / f"batch{i}", w=2400, h=1800)
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        for url in urls:
            await farm.add_peer(url)
        jobs = await farm.submit(batch, upscale(0.2))
        await asyncio.wait_for(farm.wait(), 60)
        assert all(j.state is JobState.DONE for j in jobs)
        assert not any(parts_of(farm, j) for j in jobs)


def spotted(folder: Path, spots: int = 3) -> list:  # type: ignore[type-arg]
    """A 1600x1200 photo with ``spots`` small blemishes far apart (each its own region of the mask)."""
    import cv2

    src = folder / "in"
    src.mkdir(parents=True)
    (src / "spots.png").write_bytes(png_bytes(scene(1600, 1200, seed=3)))
    mask = np.zeros((1200, 1600), np.uint8)
    for i in range(spots):
        x, y = 150 + i * 600, 150 + (i % 2) * 800
        cv2.circle(mask, (x, y), 40, 255, -1)
    (src / "spots_mask.png").write_bytes(png_bytes(mask))
    out = folder / "out"
    out.mkdir()
    items, problems = plan([src / "spots.png"], None, out, ".png")
    assert not problems and items[0].mask is not None
    return items


async def test_an_inpaint_with_separate_regions_spreads_them_and_pastes_them_into_one_output(
    tmp_path: Path,
    nodes,  # type: ignore[no-untyped-def]
) -> None:
    urls = [nodes()[1] for _ in range(2)]
    spec = EditSpec(engine="sim", params={"seconds_per_mp": 20.0}, output=OutputSpec("png"))  # ~0.9 s a region
    items = spotted(tmp_path / "farm")
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        for url in urls:
            await farm.add_peer(url)
        (job,) = await farm.submit(items, spec)
        await asyncio.wait_for(farm.wait(), 60)
        parts = parts_of(farm, job)
    assert job.state is JobState.DONE, job.error
    assert len(parts) == 3 and all(p.label.startswith("spots.png region") for p in parts)
    assert job.split == f"3 regions on {len({p.worker for p in parts})} PCs"
    assert len({p.worker for p in parts}) >= 2, [p.worker for p in parts]
    # each region at full size (one crop around all three would be resized to 1280 px): exactly the
    # SIMULATED engine's edit, the masked pixels inverted and every other pixel as it was
    source, mask = decoded(items[0].input), decoded(items[0].mask) > 0
    out = decoded(job.output)
    assert np.array_equal(out[~mask], source[~mask]) and np.array_equal(out[mask], 255 - source[mask])
    reference_items = spotted(tmp_path / "ref")
    async with Dispatcher(default_registry(simulate=True), options=FarmOptions(tiles=2)) as alone:
        (ref,) = await alone.submit(reference_items, spec)  # the same regions, all on this PC
        await alone.wait()
        assert len(parts_of(alone, ref)) == 3
    assert job.output.read_bytes() == ref.output.read_bytes()  # the same pixels, metadata and encoding
    assert not staging_for(job).exists()


async def test_one_region_or_the_fast_opencv_engine_runs_whole(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    _, url = nodes()
    one = spotted(tmp_path / "one", spots=1)
    cv2_items = spotted(tmp_path / "cv2")
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        await farm.add_peer(url)
        (single,) = await farm.submit(one, EditSpec(engine="sim", params={"seconds_per_mp": 0.0}))
        await farm.wait()
        (fast,) = await farm.submit(cv2_items, EditSpec(engine="cv2"))
        await farm.wait()
        assert single.state is JobState.DONE and fast.state is JobState.DONE
        assert not parts_of(farm, single) and not parts_of(farm, fast)


async def test_the_farm_shows_the_image_as_one_edit_and_each_worker_its_tile(tmp_path: Path) -> None:
    """Through the front door: the batch counts one edit, ``jobs`` holds no tile, the dashboard's worker
    snapshot names the tile it runs."""
    items = big_image(tmp_path / "farm")
    seen: set[str] = set()
    ended: list[BatchEnded] = []
    settings = FarmSettings(nodes=False, local_slots=2, tiles=4)
    async with Farm.open(settings, registry=default_registry(simulate=True)) as farm:

        def on_event(e: object) -> None:
            if isinstance(e, JobEvent):
                assert e.job.parent is None, "a tile reached the farm's listeners"
                seen.update(w.job for w in farm.workers() if w.job)
            elif isinstance(e, BatchEnded):
                ended.append(e)

        farm.subscribe(on_event)
        batch = await farm.submit_paths([items[0].input], None, upscale(2.0), items[0].output.parent)
        await asyncio.wait_for(farm.wait(), 60)
        assert list(farm.jobs) == [batch.jobs[0].id]
    assert [(b.batch.done, b.batch.total) for b in ended] == [(1, 1)]
    assert any(name.startswith("big.png tile ") and name.endswith("/4") for name in seen), seen
