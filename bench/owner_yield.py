"""Issue 13: how soon a job is back in the owner's hands' wake, yield against finish, side by side in one run.

Two real `lanfarm node` processes on 127.0.0.1 (SIMULATED GPU engine), no local worker, backups off.
One job of about ``--job`` seconds starts on the node its owner then pauses; we time pause -> the
job done (elsewhere with ``on_pause=yield``; there with ``finish``, the baseline) and pause -> the
farm knowing the node is held (its events, against the 10 s /v1/info refresh it would wait for
without them). Prints the figures and the ratios.

    PYTHONPATH=. python bench/owner_yield.py [--job 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from farm import EditSpec, default_registry
from farm.core.job import JobState
from farm.core.nodetable import NodeTable
from farm.core.scheduler import Policy
from farm.runtime.client import NodeClient
from farm.runtime.dispatch import Dispatcher, FarmOptions
from farm.runtime.workers import RemoteWorker
from tests.farm.runtime.test_farm_nodes import _batch
from tests.node.helpers import TOKEN, start_node, stop_node

SPEC = EditSpec(engine="sim", params={"seconds_per_mp": 2.0})  # 160x120: ~0.04 s x slowdown


async def one(tmp: Path, on_pause: str, job_s: float) -> tuple[float, float]:
    slowdown = str(job_s / 0.0384)
    owned_proc, owned = start_node(
        tmp / f"{on_pause}-owned",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-advertise",
        "--simulate",
        "--simulate-slowdown",
        slowdown,
        "--on-pause",
        on_pause,
    )
    other_proc, other = start_node(
        tmp / f"{on_pause}-other", "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate"
    )
    try:
        items = _batch(tmp / f"{on_pause}-farm", 1)
        options = FarmOptions(use_local=False)
        no_copies = Policy(backup_ratio=1e9, waiting_backup_ratio=1e9)
        async with (
            Dispatcher(default_registry(simulate=True), token=TOKEN, options=options, policy=no_copies) as farm,
            aiohttp.ClientSession() as http,
        ):
            owned_id = await farm.add_peer(owned)
            other_id = await farm.add_peer(other)
            farm.set_worker_paused(other_id, True)  # the job starts on the owned node
            [job] = await farm.submit(items, SPEC)
            while job.state is not JobState.RUNNING:
                await asyncio.sleep(0.005)
            farm.set_worker_paused(other_id, False)
            worker = farm.workers[owned_id]
            assert isinstance(worker, RemoteWorker)
            t0 = time.perf_counter()
            await NodeClient(http, owned, TOKEN).pause()
            while worker.info.availability.available:
                await asyncio.sleep(0.001)
            known = time.perf_counter() - t0
            await farm.wait()
            done = time.perf_counter() - t0
            assert job.state is JobState.DONE
            assert job.worker == (other_id if on_pause == "yield" else owned_id)
        return done, known
    finally:
        stop_node(owned_proc)
        stop_node(other_proc)


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job", type=float, default=4.0, help="seconds the job takes on the owned node")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, float]]] = {"yield": [], "finish": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in ("yield", "finish"):  # interleaved, so both see the same machine load
                rows[mode].append(await one(Path(tmp) / f"r{r}", mode, args.job))
    y = statistics.median(d for d, _ in rows["yield"])
    f = statistics.median(d for d, _ in rows["finish"])
    known = statistics.median(k for mode in rows.values() for _, k in mode)
    poll = NodeTable().info_interval
    print(f"job of {args.job:g} s, paused just after it started ({args.rounds} rounds, medians):")
    print(f"  pause -> job done: yield {y:.3f} s, finish (baseline) {f:.3f} s; ratio finish/yield {f / y:.1f}x")
    print(
        f"  pause -> farm knows: {known * 1000:.1f} ms by the node's events; without them up to {poll:g} s "
        f"(its /v1/info refresh): {poll / known:.0f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
