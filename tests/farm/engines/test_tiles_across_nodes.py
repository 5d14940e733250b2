"""A real upscaler's tiles across real ``lanfarm node`` processes and this PC, stitched without seams.

Random-weight spandrel models with the real architectures (Real-ESRGAN Compact x4, RRDBNet x2), loaded
through the same path as users' files. The farm's stitched result must equal a single-worker run of
the same tiles (within float noise), whoever ran which tile.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from farm.core.job import Job, JobState
from farm.core.scheduler import Policy
from farm.core.spec import EditSpec, OutputSpec
from farm.engines.installed import default_registry
from farm.runtime.dispatch import Dispatcher, FarmOptions
from farm.runtime.planning import plan
from tests.conftest import png_bytes, scene
from tests.node.helpers import TOKEN, node_env, start_node, stop_node


@pytest.fixture
def upscalers(model_folders, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    """A models folder holding the two upscalers only (the x2 one first: the default model is x2)."""
    folder = tmp_path / "models"
    folder.mkdir()
    shutil.copy(model_folders.good / "esrgan-x2.pth", folder / "a-esrgan-x2.pth")
    shutil.copy(model_folders.good / "compact-x4.safetensors", folder / "compact-x4.safetensors")
    return folder


@pytest.fixture
def ai_nodes(upscalers: Path, tmp_path: Path) -> Iterator[list[str]]:
    procs, urls = [], []
    for i in range(2):
        home = tmp_path / f"node{i}"
        env = node_env(home, LANFARM_DEVICE="cpu")
        env["LANFARM_TOKEN"] = TOKEN
        args = ("--host", "127.0.0.1", "--port", "0", "--no-advertise", "--slots", "1", "--models-dir", str(upscalers))
        proc, url = start_node(home, *args, env=env, timeout=60)
        procs.append(proc)
        urls.append(url)
    yield urls
    for proc in procs:
        stop_node(proc, timeout=60)


def photo(folder: Path) -> list:  # type: ignore[type-arg]
    src = folder / "in"
    src.mkdir(parents=True)
    img = cv2.GaussianBlur(scene(800, 560, seed=5), (0, 0), 3)  # smooth, so a seam would stand out
    (src / "photo.png").write_bytes(png_bytes(img))
    out = folder / "out"
    out.mkdir()
    items, problems = plan([src / "photo.png"], None, out, ".png")
    assert not problems
    return items


async def upscaled(folder: Path, registry, spec: EditSpec, tiles: int, urls: list[str]) -> tuple[Job, list[Job]]:  # type: ignore[no-untyped-def]
    # no backup copies: on this 2-core box this PC would win every race, and the point is tiles from other PCs
    no_backups = Policy(backup_ratio=float("inf"), waiting_backup_ratio=float("inf"))
    async with Dispatcher(registry, token=TOKEN, options=FarmOptions(tiles=tiles), policy=no_backups) as farm:
        for url in urls:
            await farm.add_peer(url)
        (job,) = await farm.submit(photo(folder), spec)
        await asyncio.wait_for(farm.wait(), 240)
        parts = [j for j in farm.jobs.values() if j.parent == job.id]
    assert job.state is JobState.DONE, job.error
    return job, parts


async def test_a_real_upscalers_tiles_across_nodes_equal_one_workers_tiles(
    upscalers: Path, ai_nodes: list[str], tmp_path: Path
) -> None:
    """An x2 model while the engine's descriptor says 4 (its default scale): the stitch reads the scale
    from the first tile's result."""
    model, scale = "a-esrgan-x2.pth", 2
    registry = default_registry(upscalers, device="cpu")
    spec = EditSpec(op="upscale", engine="upscale", model=model, params={"overlap": 16}, output=OutputSpec("png"))
    farm_job, parts = await upscaled(tmp_path / "farm", registry, spec, 4, ai_nodes)
    alone_job, alone_parts = await upscaled(tmp_path / "alone", registry, spec, 4, [])
    assert len(parts) == len(alone_parts) == 4
    assert len({p.worker for p in parts}) >= 2, [p.worker for p in parts]
    assert {p.worker for p in alone_parts} == {"local"}
    farm_out = cv2.imread(str(farm_job.output), cv2.IMREAD_UNCHANGED)
    alone_out = cv2.imread(str(alone_job.output), cv2.IMREAD_UNCHANGED)
    assert farm_out.shape == (560 * scale, 800 * scale, 3)
    diff = np.abs(farm_out.astype(int) - alone_out.astype(int))
    assert diff.max() <= 2, f"tiles from other PCs differ by up to {diff.max()}"
    # no seam: across the middle row and column (where the 2x2 tiles meet) the picture changes no more
    # than it does anywhere else along those directions
    out = farm_out.astype(float).mean(axis=2)
    step_y, step_x = np.abs(np.diff(out, axis=0)), np.abs(np.diff(out, axis=1))
    mid_y, mid_x = out.shape[0] // 2, out.shape[1] // 2
    seam_y = step_y[mid_y - 8 * scale : mid_y + 8 * scale].mean(axis=1).max()
    seam_x = step_x[:, mid_x - 8 * scale : mid_x + 8 * scale].mean(axis=0).max()
    assert seam_y <= 2 * np.percentile(step_y.mean(axis=1), 99)
    assert seam_x <= 2 * np.percentile(step_x.mean(axis=0), 99)
