"""The farm and a node's owner, across real `lanfarm node` processes on 127.0.0.1 (added by address).

A node paused mid-batch gets no new job and the batch finishes on the others; resumed, it takes jobs
again. A node that yields (its owner's setting) hands its running job back, which runs elsewhere at
once; every output is written once. Nodes run the SIMULATED GPU engine (`--simulate`).
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from farm import EditSpec, default_registry
from farm.core.availability import State
from farm.core.job import JobState
from farm.core.scheduler import Policy
from farm.runtime.client import NodeClient
from farm.runtime.dispatch import Dispatcher, FarmOptions, JobEvent
from farm.runtime.workers import RemoteWorker
from tests.farm.runtime.test_farm_nodes import _batch
from tests.node.helpers import TOKEN, node_env, start_node, stop_node
from tests.node.xvfb import touch, xvfb

LOCAL_OFF = FarmOptions(use_local=False)
# no straggler copies: a job moves only when its node hands it back
NO_BACKUPS = Policy(backup_ratio=1e9, waiting_backup_ratio=1e9)
SIM = EditSpec(engine="sim", params={"seconds_per_mp": 2.0})  # ~40 ms per 160x120 image (SIMULATED GPU)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Any]:
    started: list[tuple[subprocess.Popen[bytes], str]] = []

    def launch(*args: str) -> str:
        home = tmp_path / f"node{len(started)}"
        proc, url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate", *args)
        started.append((proc, url))
        return url

    yield launch
    for proc, _ in started:
        stop_node(proc)


def count_done(farm: Dispatcher) -> dict[str, int]:
    done: dict[str, int] = {}

    def on_event(e: object) -> None:
        if isinstance(e, JobEvent) and e.progress is None and e.state is JobState.DONE:
            done[e.job.id] = done.get(e.job.id, 0) + 1

    farm.subscribe(on_event)
    return done


async def test_paused_mid_batch_gets_no_new_job_and_resumed_takes_jobs_again(tmp_path: Path, nodes: Any) -> None:
    owned = nodes("--simulate-slowdown", "10")  # ~0.4 s a job: the pause lands mid-batch
    other = nodes("--simulate-slowdown", "10")  # as fast, so that the speed rules give it work again later
    items = _batch(tmp_path / "farm", 10)
    async with (
        Dispatcher(default_registry(simulate=True), token=TOKEN, options=LOCAL_OFF, policy=NO_BACKUPS) as farm,
        aiohttp.ClientSession() as http,
    ):
        owner = NodeClient(http, owned, TOKEN)
        owned_id = await farm.add_peer(owned)
        await farm.add_peer(other)
        done = count_done(farm)
        paused: dict[str, Any] = {}

        async def pause_when_busy() -> None:
            while not any(j.worker == owned_id and j.state is JobState.RUNNING for j in farm.jobs.values()):
                await asyncio.sleep(0.01)
            await owner.pause(reason="gaming")
            info = await owner.info()
            paused.update(done=info.jobs_done, busy=info.slots_total - info.slots_free + info.queue)

        pausing = asyncio.ensure_future(pause_when_busy())
        jobs = await farm.submit(items, SIM)
        await asyncio.wait_for(farm.wait(), 60)
        await pausing
        after = await owner.info()
        worker = farm.workers[owned_id]
        assert isinstance(worker, RemoteWorker) and worker.info.availability.state is State.PAUSED  # the farm knows
        assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
        assert sorted(done.values()) == [1] * 10  # each output written once
        assert paused["busy"] <= 1  # its queued job was handed back; at most its running one stayed
        assert after.jobs_done - paused["done"] <= paused["busy"]  # nothing new ran there after the pause

        await owner.resume()
        async with asyncio.timeout(10):  # its events tell the farm at once
            while not worker.info.availability.available:
                await asyncio.sleep(0.01)
        more = _batch(tmp_path / "again", 6)
        again = await farm.submit(more, SIM)
        await asyncio.wait_for(farm.wait(), 60)
    assert all(j.state is JobState.DONE for j in again)
    assert owned_id in {j.worker for j in again}, "the resumed node got no job"


async def test_a_node_that_yields_hands_its_running_job_back_and_it_runs_elsewhere(tmp_path: Path, nodes: Any) -> None:
    owned = nodes("--simulate-slowdown", "200", "--on-pause", "yield")  # ~8 s a job: it would not finish
    other = nodes()
    items = _batch(tmp_path / "farm", 4)
    async with (
        Dispatcher(default_registry(simulate=True), token=TOKEN, options=LOCAL_OFF, policy=NO_BACKUPS) as farm,
        aiohttp.ClientSession() as http,
    ):
        owner = NodeClient(http, owned, TOKEN)
        owned_id = await farm.add_peer(owned)
        other_id = await farm.add_peer(other)
        done = count_done(farm)
        yielded: list[str] = []

        async def yield_when_busy() -> None:
            while not (
                running := [j for j in farm.jobs.values() if j.worker == owned_id and j.state is JobState.RUNNING]
            ):
                await asyncio.sleep(0.01)
            yielded.append(running[0].id)
            await owner.pause(reason="its owner is back")

        pausing = asyncio.ensure_future(yield_when_busy())
        jobs = await farm.submit(items, SIM)
        await asyncio.wait_for(farm.wait(), 20)  # well before the yielded job could have finished there
        await pausing
        async with asyncio.timeout(5):  # the engine stops at its next step, long before its 8 s are up
            while (there := await owner.job(yielded[0]))["state"] == "running":
                await asyncio.sleep(0.05)
    assert there["state"] == "cancelled" and there["error"].startswith("handed back: this node is paused")
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert sorted(done.values()) == [1] * 4
    [moved] = [j for j in jobs if j.id == yielded[0]]
    assert moved.worker == other_id
    assert sorted(p.name for p in items[0].output.parent.iterdir()) == sorted(i.output.name for i in items)


async def test_nimby_the_pcs_user_comes_back_and_the_running_job_runs_elsewhere_at_once(tmp_path: Path) -> None:
    """A node watching a real X display (Xvfb); xdotool input is its user coming back (on_nimby = yield)."""
    with xvfb() as display:
        home = tmp_path / "desk"
        owned_proc, owned = start_node(
            home,
            *("--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate", "--simulate-slowdown", "200"),
            *("--nimby", "input", "--nimby-idle-minutes", "0.05"),  # offered again after 3 s without input
            env=node_env(home, DISPLAY=display),
        )
        other_proc, other = start_node(
            tmp_path / "other", "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate"
        )
        try:
            items = _batch(tmp_path / "farm", 4)
            async with (
                Dispatcher(default_registry(simulate=True), token=TOKEN, options=LOCAL_OFF, policy=NO_BACKUPS) as farm,
                aiohttp.ClientSession() as http,
            ):
                owner = NodeClient(http, owned, TOKEN)
                owned_id = await farm.add_peer(owned)
                other_id = await farm.add_peer(other)
                worker = farm.workers[owned_id]
                assert isinstance(worker, RemoteWorker)
                assert (await owner.info()).nimby == "watching input (x11)"
                async with asyncio.timeout(20):  # nobody touched the display for 3 s: it offers itself
                    while not worker.info.availability.available:
                        await asyncio.sleep(0.05)
                done = count_done(farm)
                touched: list[str] = []

                async def touch_when_busy() -> None:
                    while not (
                        running := [
                            j for j in farm.jobs.values() if j.worker == owned_id and j.state is JobState.RUNNING
                        ]
                    ):
                        await asyncio.sleep(0.01)
                    touched.append(running[0].id)
                    await asyncio.to_thread(touch, display)

                touching = asyncio.ensure_future(touch_when_busy())
                jobs = await farm.submit(items, SIM)
                await asyncio.wait_for(farm.wait(), 20)
                await touching
                async with asyncio.timeout(5):
                    while (there := await owner.job(touched[0]))["state"] == "running":
                        await asyncio.sleep(0.05)
        finally:
            stop_node(owned_proc)
            stop_node(other_proc)
    assert there["state"] == "cancelled" and there["error"] == "handed back: this node is nimby: its user is at the PC"
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert sorted(done.values()) == [1] * 4
    [moved] = [j for j in jobs if j.id == touched[0]]
    assert moved.worker == other_id
