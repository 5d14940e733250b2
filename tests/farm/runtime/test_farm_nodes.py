"""The farm across real `lanfarm node` processes on 127.0.0.1 (added by address) plus this PC.

Nodes run the SIMULATED GPU engine (`--simulate`: a sleep per megapixel, then a deterministic edit), so
runs are quick and every worker gets work; outputs must equal a local-only run byte for byte.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm import EditSpec, default_registry
from farm.core.job import JobState
from farm.runtime.client import NodeUnauthorised
from farm.runtime.dispatch import Dispatcher, JobEvent
from farm.runtime.planning import plan
from tests.conftest import box_mask, png_bytes, scene
from tests.node.helpers import TOKEN, node_env, start_node, stop_node

SIM = EditSpec(engine="sim", params={"seconds_per_mp": 2.0})  # ~40 ms per 160x120 image (SIMULATED GPU)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    started: list[tuple[subprocess.Popen[bytes], str]] = []

    def launch(*args: str, token: str = TOKEN) -> tuple[subprocess.Popen[bytes], str]:
        home = tmp_path / f"node{len(started)}"
        env = node_env(home)
        env["LANFARM_TOKEN"] = token
        proc, url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", *args, env=env)
        started.append((proc, url))
        return proc, url

    yield launch  # type: ignore[misc]
    for proc, _ in started:
        stop_node(proc)


def _batch(folder: Path, n: int) -> list:  # type: ignore[type-arg]
    src = folder / "in"
    src.mkdir(parents=True)
    for i in range(n):
        (src / f"img{i:02d}.png").write_bytes(png_bytes(scene(seed=i)))
        (src / f"img{i:02d}_mask.png").write_bytes(png_bytes(box_mask()))
    out = folder / "out"
    out.mkdir()
    items, problems = plan([src], None, out, ".png")
    assert not problems
    return items


async def _local_reference(tmp_path: Path, n: int, spec: EditSpec) -> dict[str, bytes]:
    items = _batch(tmp_path / "ref", n)
    async with Dispatcher(default_registry(simulate=True)) as farm:
        await farm.submit(items, spec)
        await farm.wait()
    return {i.output.name: i.output.read_bytes() for i in items}


async def test_jobs_split_across_nodes_and_local_with_identical_outputs(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    urls = [nodes("--simulate")[1] for _ in range(2)]
    items = _batch(tmp_path / "farm", 24)
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        ids = [await farm.add_peer(u) for u in urls]
        jobs = await farm.submit(items, SIM)
        await farm.wait()
        stats = dict(farm.stats)
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    workers = {j.worker for j in jobs}
    assert workers == {"local", *ids}, f"not every worker got work: {workers}"
    assert sum(s.done for s in stats.values()) == 24
    reference = await _local_reference(tmp_path, 24, SIM)
    assert {i.output.name: i.output.read_bytes() for i in items} == reference


async def test_a_node_killed_mid_job_loses_nothing_and_writes_each_output_once(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    victim, victim_url = nodes("--simulate", "--simulate-slowdown", "10")
    _, other_url = nodes("--simulate")
    items = _batch(tmp_path / "farm", 16)
    finished: dict[str, int] = {}
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        victim_id = await farm.add_peer(victim_url)
        await farm.add_peer(other_url)

        def on_event(e: object) -> None:
            if isinstance(e, JobEvent) and e.progress is None and e.state is JobState.DONE:
                finished[e.job.id] = finished.get(e.job.id, 0) + 1
            if (
                isinstance(e, JobEvent)
                and e.state is JobState.RUNNING
                and e.job.worker == victim_id
                and victim.poll() is None
            ):
                victim.send_signal(signal.SIGKILL)

        farm.subscribe(on_event)
        jobs = await farm.submit(items, SIM)
        await asyncio.wait_for(farm.wait(), 60)
    assert victim.poll() == -signal.SIGKILL
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert sorted(finished.values()) == [1] * 16
    assert any(j.attempts > 1 for j in jobs), "no job was running on the killed node"
    out = items[0].output.parent
    assert sorted(p.name for p in out.iterdir()) == sorted(i.output.name for i in items)  # no .part files


async def test_engine_routing_and_wrong_token(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    _, plain_url = nodes()  # OpenCV only: no simulated GPU here
    _, stranger_url = nodes("--simulate", token="some-other-farm")
    items = _batch(tmp_path / "farm", 8)
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        plain_id = await farm.add_peer(plain_url)
        with pytest.raises(NodeUnauthorised, match="missing or wrong farm token"):
            await farm.add_peer(stranger_url)
        jobs = await farm.submit(items, SIM)
        await farm.wait()
    assert all(j.state is JobState.DONE and j.worker == "local" for j in jobs)
    assert plain_id not in {j.worker for j in jobs}


async def test_all_nodes_gone_everything_finishes_locally(tmp_path: Path, nodes) -> None:  # type: ignore[no-untyped-def]
    procs = [nodes("--simulate", "--simulate-slowdown", "5") for _ in range(2)]
    items = _batch(tmp_path / "farm", 10)
    async with Dispatcher(default_registry(simulate=True), token=TOKEN) as farm:
        for _, url in procs:
            await farm.add_peer(url)
        jobs = await farm.submit(items, SIM)
        await asyncio.sleep(0.3)
        for proc, _ in procs:
            proc.kill()
        await asyncio.wait_for(farm.wait(), 60)
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert {j.worker for j in jobs if j.attempts > 1} <= {"local"}
