"""Farm efficiency on loopback (issue 5): SIMULATED GPU nodes against a bare aiohttp dispatcher and Dask.

Everything runs on 127.0.0.1 in one process tree: ``lanfarm node --simulate`` processes (the ``sim``
engine: a SIMULATED GPU that sleeps ``seconds_per_mp`` x megapixels; no real GPU work), minimal aiohttp
echo servers (this file with ``--echo-server``: read 1 MB, sleep, send it back; the floor for HTTP
dispatch, 2 jobs in flight per server) and a Dask ``LocalCluster(host="127.0.0.1")`` (same sleeps, 1 MB
in and out). Every job carries its own 1 MB PNG of noise, so blobs are really uploaded.

Rows (each measured for ours, bare aiohttp and Dask, interleaved, best of ``--reps``):
- efficiency = ideal makespan / measured, ideal = jobs x service / nodes, for 1, 2, 4, 8 nodes and
  0.05 s, 0.2 s, 1 s jobs (the farm runs with ``use_local=False``);
- per-job overhead with a 0 s service time (the farm with the durable queue, ``QueueStore``);
- heterogeneous: 3 nodes plus one 3x slower, against the ideal for the combined speed (3 + 1/3);
- failover: SIGKILL a node while it runs a job -> the job running on another node;
- discovery: node start -> seen over mDNS (inside a private network namespace) and -> /v1/health;
- the pure scheduler's cost per decision with 200 nodes and 10,000 queued jobs.

The machine's cores are shared by every process here (see the header of the output): numbers are
noisy, so compare the ratios of one run, not absolute times across runs.

    PYTHONPATH=. python bench/farm_efficiency.py [--quick] [--reps N] [--only eff,overhead,...]
        [--json out.json] [--profile DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import pstats
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-farm-token-0123456789abcdef"
SIDE = 577  # 577 x 577 RGB noise: a 1.0 MB PNG, 0.333 megapixels
MP = SIDE * SIDE / 1e6
FAILURES: list[str] = []
SECTIONS = ("eff", "overhead", "hetero", "failover", "discovery", "sched", "paths")


# ----------------------------------------------------------------------------------- payloads
def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def noise_png(seed: int, side: int = SIDE) -> bytes:
    """A PNG of RGB noise (about 1 MB at 577 px; stored deflate: noise does not compress anyway)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, (side, side * 3 + 1), dtype=np.uint8)
    rows[:, 0] = 0  # filter type None on every row
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0))
        + _chunk(b"IEND", b"")
    )


def mask_png(side: int = SIDE) -> bytes:
    mask = np.zeros((side, side), np.uint8)
    mask[side // 4 : side // 4 + 64, side // 4 : side // 4 + 64] = 255
    return cv2.imencode(".png", mask)[1].tobytes()


_seed = iter(range(1, 1 << 30))


def payloads(n: int) -> list[bytes]:
    """``n`` distinct images (never reused in this run, so no node has them cached)."""
    return [noise_png(next(_seed)) for _ in range(n)]


# ------------------------------------------------------------------------------- processes
def _env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANFARM_")}
    env.update(PYTHONPATH=str(REPO), LANFARM_TOKEN=TOKEN)
    if home is not None:
        env["LANFARM_HOME"] = str(home)
    return env


def _read_url(proc: subprocess.Popen[bytes], marker: bytes, timeout: float = 60.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    os.set_blocking(proc.stdout.fileno(), True)
    import select

    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(marker):
                return line.decode().strip().rsplit(" ", 1)[1]
            if not line:
                break
        if proc.poll() is not None:
            break
    proc.kill()
    raise SystemExit(f"{marker.decode()!r} never came: {proc.args}")


@dataclass
class Node:
    proc: subprocess.Popen[bytes]
    url: str
    slowdown: float


def start_nodes(root: Path, slowdowns: Sequence[float], *extra: str) -> list[Node]:
    """``lanfarm node --simulate`` processes on 127.0.0.1 (own LANFARM_HOME each), started in parallel."""
    procs = []
    for i, slow in enumerate(slowdowns):
        home = root / f"node-{next(_seed)}-{i}"
        args = [
            sys.executable,
            "-m",
            "farm.cli",
            "node",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-advertise",
            "--simulate",
            "--no-tls",  # plain HTTP like the baselines; what TLS costs: bench/tls_cost.py
            "--slots",
            "1",
            *extra,
        ]
        if slow != 1.0:
            args += ["--simulate-slowdown", str(slow)]
        procs.append((subprocess.Popen(args, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL), slow))
    return [Node(p, _read_url(p, b"lanfarm node listening on "), s) for p, s in procs]


def start_echo_servers(slowdowns: Sequence[float]) -> list[Node]:
    procs = [
        (
            subprocess.Popen(
                [sys.executable, __file__, "--echo-server", "--slowdown", str(s)], env=_env(), stdout=subprocess.PIPE
            ),
            s,
        )
        for s in slowdowns
    ]
    return [Node(p, _read_url(p, b"echo listening on "), s) for p, s in procs]


def stop(nodes: Sequence[Node]) -> None:
    for n in nodes:
        if n.proc.poll() is None:
            n.proc.send_signal(signal.SIGTERM)
    for n in nodes:
        try:
            n.proc.wait(20)
        except subprocess.TimeoutExpired:
            n.proc.kill()
            n.proc.wait()


# ----------------------------------------------------------------------- bare aiohttp baseline
def echo_app(slowdown: float) -> web.Application:
    """The floor for HTTP dispatch: read 1 MB, sleep the service time (one job at a time, like one
    GPU: a second job in flight waits), send the bytes back."""
    app = web.Application(client_max_size=64 << 20)
    gpu = asyncio.Lock()

    async def job(request: web.Request) -> web.Response:
        body = await request.read()
        async with gpu:
            await asyncio.sleep(float(request.query["s"]) * slowdown)
        return web.Response(body=body, content_type="image/png")

    app.router.add_post("/job", job)
    return app


def serve_echo(slowdown: float) -> None:
    async def serve() -> None:
        runner = web.AppRunner(echo_app(slowdown))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(f"echo listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


async def run_bare(urls: Sequence[str], data: Sequence[bytes], service: float, inflight: int = 2) -> float:
    """Makespan of ``data`` through the echo servers, ``inflight`` jobs per server (a shared queue)."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        for url in urls:  # open the connections first, as the farm does with add_peer
            async with http.post(f"{url}/job", params={"s": "0"}, data=b"x") as resp:
                await resp.read()
        for d in data:
            queue.put_nowait(d)

        async def pump(url: str) -> None:
            while not queue.empty():
                body = queue.get_nowait()
                async with http.post(f"{url}/job", params={"s": str(service)}, data=body) as resp:
                    out = await resp.read()
                    assert resp.status == 200 and len(out) == len(body)

        t0 = time.perf_counter()
        await asyncio.gather(*(pump(u) for u in urls for _ in range(inflight)))
        return time.perf_counter() - t0


# ------------------------------------------------------------------------------- Dask baseline
def dask_work(data: bytes, service: float, slow: frozenset[str]) -> bytes:
    """A Dask task: the same sleep (3x on a 'slow' worker), 1 MB in and out."""
    from distributed import get_worker

    time.sleep(service * (3.0 if get_worker().address in slow else 1.0))
    return data


class DaskBaseline:
    """A LocalCluster on 127.0.0.1, one single-threaded worker process per 'node'."""

    def __init__(self, workers: int) -> None:
        import logging
        import warnings

        import dask
        import distributed

        warnings.filterwarnings("ignore", module="distributed")
        logging.getLogger("distributed").setLevel(logging.ERROR)
        dask.config.set({"distributed.admin.large-graph-warning-threshold": "1GB"})
        self.version = distributed.__version__
        self.cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        self.client = distributed.Client(self.cluster)
        self.client.wait_for_workers(workers, timeout=120)
        self.addresses = sorted(self.client.scheduler_info()["workers"])

    def run(
        self, workers: Sequence[str], data: Sequence[bytes], service: float, slow: frozenset[str] = frozenset()
    ) -> float:
        from distributed import as_completed

        t0 = time.perf_counter()
        futures = [
            self.client.submit(
                dask_work, d, service, slow, pure=False, workers=list(workers), allow_other_workers=False
            )
            for d in data
        ]
        for fut in as_completed(futures):
            assert len(fut.result()) > 0
        elapsed = time.perf_counter() - t0
        self.client.cancel(futures)
        del futures
        return elapsed

    def close(self) -> None:
        self.client.close()
        self.cluster.close()


# -------------------------------------------------------------------------------------- ours
@dataclass
class Breakdown:
    """Where one job's time goes on the farm side (seconds, summed over jobs)."""

    calls: dict[str, list[float]] = field(default_factory=dict)
    node_exec: list[float] = field(default_factory=list)  # node: started -> finished
    node_queue: list[float] = field(default_factory=list)  # node: created -> started
    event_lag: list[float] = field(default_factory=list)  # node finished -> done event routed here

    def add(self, name: str, seconds: float) -> None:
        self.calls.setdefault(name, []).append(seconds)


@contextlib.contextmanager
def instrumented(bd: Breakdown) -> Iterator[None]:
    """Time NodeClient calls and event delivery in this process (bench-only monkeypatching)."""
    from farm.runtime import client as fc
    from farm.runtime import workers as fw

    originals: dict[tuple[Any, str], Any] = {}

    def wrap(owner: Any, name: str, label: str) -> None:
        fn = getattr(owner, name)
        originals[(owner, name)] = fn

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await fn(*args, **kwargs)
            finally:
                bd.add(label, time.perf_counter() - t0)

        setattr(owner, name, timed)

    wrap(fc.NodeClient, "has_blob", "HEAD blob")
    wrap(fc.NodeClient, "put_blob", "HEAD+PUT blob")
    wrap(fc.NodeClient, "submit", "POST job")
    wrap(fc.NodeClient, "job", "GET job (poll)")
    wrap(fc.NodeClient, "result", "GET result")
    wrap(fw.RemoteWorker, "_until_finished", "POST->done event")
    wrap(fw.RemoteWorker, "run", "attempt total")
    route = fw.RemoteWorker._route
    originals[(fw.RemoteWorker, "_route")] = route

    def routed(self: Any, msg: dict[str, Any]) -> None:
        job = msg.get("job") if msg.get("type") == "job" else None
        if job and job.get("state") == "done" and job.get("finished"):
            bd.event_lag.append(time.time() - job["finished"])
            bd.node_exec.append(job["finished"] - job["started"])
            bd.node_queue.append(job["started"] - job["created"])
        route(self, msg)

    fw.RemoteWorker._route = routed  # type: ignore[method-assign]
    try:
        yield
    finally:
        for (owner, name), fn in originals.items():
            setattr(owner, name, fn)


def _spec(service: float) -> Any:
    from farm.core.spec import EditSpec

    return EditSpec(engine="sim", params={"seconds_per_mp": service / MP})


def write_inputs(folder: Path, data: Sequence[bytes]) -> list[Any]:
    from farm.runtime.planning import Planned

    src, out = folder / "in", folder / "out"
    src.mkdir(parents=True)
    out.mkdir()
    mask = src / "mask.png"
    mask.write_bytes(mask_png())
    items = []
    for i, d in enumerate(data):
        p = src / f"img{i:04d}.png"
        p.write_bytes(d)
        items.append(Planned(p, mask, out / p.name))
    return items


async def run_ours(
    urls: Sequence[str],
    items: Sequence[Any],
    service: float,
    *,
    store_path: Path | None = None,
    profile: cProfile.Profile | None = None,
) -> float:
    """Makespan of ``items`` through the farm (no local worker): submit -> every job done."""
    from farm.core.job import JobState
    from farm.engines.installed import default_registry
    from farm.local.store import QueueStore, batch_key
    from farm.runtime.dispatch import Dispatcher, FarmOptions

    store = QueueStore(store_path) if store_path is not None else None
    try:
        async with Dispatcher(
            default_registry(simulate=True), token=TOKEN, store=store, options=FarmOptions(use_local=False)
        ) as farm:
            ids = [await farm.add_peer(u) for u in urls]
            deadline = time.monotonic() + 10
            while any(not farm.workers[i].last_load for i in ids) and time.monotonic() < deadline:  # type: ignore[attr-defined]
                await asyncio.sleep(0.01)  # every event stream is open
            batch = store.new_batch(batch_key(len(items), time.time())) if store is not None else None
            if profile is not None:
                profile.enable()
            t0 = time.perf_counter()
            jobs = await farm.submit(items, _spec(service), batch=batch)
            await farm.wait()
            elapsed = time.perf_counter() - t0
            if profile is not None:
                profile.disable()
        bad = [j for j in jobs if j.state is not JobState.DONE]
        if bad:  # reported, not fatal: the row's time then counts a failed run
            FAILURES.append(f"{len(bad)} of {len(jobs)} jobs failed ({len(urls)} nodes, {service:g} s): {bad[0].error}")
            print(f"  !! {FAILURES[-1]}", flush=True)
        return elapsed
    finally:
        if store is not None:
            store.close()


# ---------------------------------------------------------------------------------- the rows
@dataclass
class Row:
    label: str
    ideal: float  # seconds; 0 for the overhead rows
    jobs: int
    nodes: int
    ours: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    dask: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)

    @staticmethod
    def best(xs: Sequence[float]) -> float:
        return min(xs) if xs else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace, root: Path) -> None:
        self.args = args
        self.root = root
        self.rows: list[Row] = []
        self.nodes: list[Node] = []
        self.slow_node: Node | None = None
        self.echo: list[Node] = []
        self.slow_echo: Node | None = None
        self.dask: DaskBaseline | None = None
        self.breakdowns: dict[str, Breakdown] = {}
        self.results: dict[str, Any] = {}

    def say(self, text: str) -> None:
        print(text, flush=True)

    # -- setup ---------------------------------------------------------------------------------
    def start(self, need_hetero: bool) -> None:
        t0 = time.perf_counter()
        slows = [1.0] * 8 + ([3.0] if need_hetero else [])
        nodes = start_nodes(self.root, slows)
        self.nodes, self.slow_node = nodes[:8], (nodes[8] if need_hetero else None)
        echo = start_echo_servers(slows)
        self.echo, self.slow_echo = echo[:8], (echo[8] if need_hetero else None)
        self.say(
            f"started 8{'+1 slow' if need_hetero else ''} nodes and echo servers in {time.perf_counter() - t0:.1f} s"
        )
        if not self.args.no_dask:
            t0 = time.perf_counter()
            self.dask = DaskBaseline(len(slows))
            self.say(
                f"started Dask {self.dask.version} LocalCluster ({len(slows)} workers) in "
                f"{time.perf_counter() - t0:.1f} s"
            )

    def close(self) -> None:
        if self.dask is not None:
            self.dask.close()
            self.dask = None
        stop(self.nodes + self.echo + [n for n in (self.slow_node, self.slow_echo) if n])
        self.nodes, self.echo, self.slow_node, self.slow_echo = [], [], None, None

    # -- one measured row ------------------------------------------------------------------------
    def measure(
        self,
        row: Row,
        nodes: Sequence[Node],
        echo: Sequence[Node],
        dask_workers: Sequence[str],
        service: float,
        *,
        store: bool = False,
        slow: frozenset[str] = frozenset(),
        also_no_store: bool = False,
        breakdown: str | None = None,
    ) -> Row:
        systems = ["ours", "bare"] + ([] if self.dask is None else ["dask"])
        if also_no_store:
            systems.append("ours, no store")
        for rep in range(self.args.reps):
            data = payloads(row.jobs)
            order = systems[rep % len(systems) :] + systems[: rep % len(systems)]
            for system in order:
                gc.collect()
                if system.startswith("ours"):
                    folder = self.root / f"run-{next(_seed)}"
                    items = write_inputs(folder, data if system == "ours" else payloads(row.jobs))
                    bd = Breakdown() if breakdown and system == "ours" else None
                    with instrumented(bd) if bd else contextlib.nullcontext():
                        t = asyncio.run(
                            run_ours(
                                [n.url for n in nodes],
                                items,
                                service,
                                store_path=folder / "queue.sqlite3" if store and system == "ours" else None,
                            )
                        )
                    if bd is not None and breakdown is not None:
                        self.breakdowns.setdefault(breakdown, bd)
                    shutil.rmtree(folder, ignore_errors=True)
                    (row.ours if system == "ours" else row.extra.setdefault(system, [])).append(t)
                elif system == "bare":
                    row.bare.append(asyncio.run(run_bare([n.url for n in echo], data, service)))
                else:
                    assert self.dask is not None
                    row.dask.append(self.dask.run(dask_workers, data, service, slow))
        self.rows.append(row)
        self.print_row(row)
        return row

    def print_row(self, row: Row) -> None:
        b = Row.best
        if row.ideal:
            eff = [row.ideal / b(x) if x else float("nan") for x in (row.ours, row.bare, row.dask)]
            self.say(
                f"  {row.label:<34} eff ours {eff[0]:5.3f}  bare {eff[1]:5.3f}  dask {eff[2]:5.3f}   "
                f"(makespan {b(row.ours):6.2f} / {b(row.bare):6.2f} / {b(row.dask):6.2f} s, "
                f"ideal {row.ideal:.2f} s)"
            )
        else:
            per = [b(x) / row.jobs * 1e3 for x in (row.ours, row.bare, row.dask)]
            extra = "".join(f"  {k} {b(v) / row.jobs * 1e3:6.2f}" for k, v in row.extra.items())
            self.say(
                f"  {row.label:<34} ms/job ours {per[0]:6.2f}  bare {per[1]:6.2f}  dask {per[2]:6.2f}"
                f"   ours/bare {per[0] / per[1]:4.2f}x{extra}"
            )

    # -- sections --------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """One small run of each system on all 8, untimed (first requests, imports, caches)."""
        row = Row("warm-up", 0, 16, 8)
        reps, self.args.reps = self.args.reps, 1
        self.measure(row, self.nodes, self.echo, self.dask.addresses[:8] if self.dask else [], 0.0)
        self.args.reps = reps
        self.rows.remove(row)

    def efficiency(self) -> None:
        per_node = {1.0: 3, 0.2: 8, 0.05: 20} if self.args.quick else {1.0: 6, 0.2: 20, 0.05: 40}
        self.say(f"\nefficiency = ideal / makespan (ideal = jobs x service / nodes; best of {self.args.reps})")
        for service in (0.05, 0.2, 1.0):
            for k in (1, 2, 4, 8):
                jobs = per_node[service] * k
                self.measure(
                    Row(
                        f"{service:g} s jobs, {k} node{'s' if k > 1 else ''}, {jobs} jobs", jobs * service / k, jobs, k
                    ),
                    self.nodes[:k],
                    self.echo[:k],
                    self.dask.addresses[:k] if self.dask else [],
                    service,
                )

    def overhead(self) -> None:
        self.say("\nper-job dispatch overhead, 0 s service (makespan / jobs; ours with the durable queue)")
        n1, n4 = (40, 100) if self.args.quick else (100, 200)
        self.measure(
            Row(f"1 node, {n1} jobs", 0, n1, 1),
            self.nodes[:1],
            self.echo[:1],
            self.dask.addresses[:1] if self.dask else [],
            0.0,
            store=True,
            also_no_store=True,
            breakdown="0 s jobs, 1 node",
        )
        self.measure(
            Row(f"4 nodes, {n4} jobs", 0, n4, 4),
            self.nodes[:4],
            self.echo[:4],
            self.dask.addresses[:4] if self.dask else [],
            0.0,
            store=True,
            also_no_store=True,
        )
        # a breakdown of one 0.05 s row, for the report
        bd_row = Row("0.05 s jobs, 4 nodes (breakdown run)", 0.05 * 80 / 4, 80, 4)
        reps, self.args.reps = self.args.reps, 1
        self.measure(
            bd_row,
            self.nodes[:4],
            self.echo[:4],
            self.dask.addresses[:4] if self.dask else [],
            0.05,
            breakdown="0.05 s jobs, 4 nodes",
        )
        self.args.reps = reps

    def hetero(self) -> None:
        assert self.slow_node is not None and self.slow_echo is not None
        jobs = 10 if self.args.quick else 20
        service = 1.0
        ideal = jobs * service / (3 + 1 / 3)
        self.say(
            "\nheterogeneous: 3 nodes + 1 node 3x slower (--simulate-slowdown 3); ideal = jobs x service / (3 + 1/3)"
        )
        slow = frozenset(self.dask.addresses[8:9]) if self.dask else frozenset()
        row = self.measure(
            Row(f"1 s jobs, 3+1 slow nodes, {jobs} jobs", ideal, jobs, 4),
            [*self.nodes[:3], self.slow_node],
            [*self.echo[:3], self.slow_echo],
            [*self.dask.addresses[:3], *self.dask.addresses[8:9]] if self.dask else [],
            service,
            slow=slow,
        )
        self.results["hetero_over_ideal"] = Row.best(row.ours) / ideal - 1

    def failover(self) -> None:
        self.say("\nfailover: SIGKILL a node while it runs a job -> that job running on another node")
        times = [asyncio.run(self._failover_once()) for _ in range(1 if self.args.quick else 2)]
        for detect, running in times:
            self.say(f"  kill -> dispatched elsewhere {detect:5.2f} s   kill -> running elsewhere {running:5.2f} s")
        self.results["failover_s"] = [r for _, r in times]

    async def _failover_once(self) -> tuple[float, float]:
        from farm.core.job import JobState
        from farm.engines.installed import default_registry
        from farm.runtime.dispatch import Dispatcher, FarmOptions, JobEvent

        victim, survivor = await asyncio.to_thread(start_nodes, self.root, [1.0, 1.0])
        folder = self.root / f"fo-{next(_seed)}"
        items = write_inputs(folder, payloads(1))
        marks: dict[str, float] = {}
        try:
            async with Dispatcher(
                default_registry(simulate=True), token=TOKEN, options=FarmOptions(use_local=False)
            ) as farm:
                victim_id = await farm.add_peer(victim.url)
                running = asyncio.Event()
                elsewhere = asyncio.Event()

                def on_event(e: object) -> None:
                    if not isinstance(e, JobEvent) or e.progress is not None:
                        return
                    if e.state is JobState.RUNNING and e.job.worker == victim_id:
                        running.set()
                    elif "kill" in marks and e.job.worker != victim_id:
                        if e.state is JobState.DISPATCHED and "dispatched" not in marks:
                            marks["dispatched"] = time.perf_counter()
                        if e.state is JobState.RUNNING:
                            marks["running"] = time.perf_counter()
                            elsewhere.set()

                farm.subscribe(on_event)
                await farm.submit(items, _spec(4.0))
                await asyncio.wait_for(running.wait(), 20)
                await farm.add_peer(survivor.url)  # idle and known before the kill
                await asyncio.sleep(0.3)
                marks["kill"] = time.perf_counter()
                victim.proc.send_signal(signal.SIGKILL)
                await asyncio.wait_for(elsewhere.wait(), 30)
                await asyncio.wait_for(farm.wait(), 30)
        finally:
            await asyncio.to_thread(stop, [victim, survivor])
            shutil.rmtree(folder, ignore_errors=True)
        return marks["dispatched"] - marks["kill"], marks["running"] - marks["kill"]

    def discovery(self) -> None:
        has_discovery = (REPO / "farm" / "discovery.py").exists()
        self.say("\ndiscovery: node process start -> usable")
        health = [self._health_once() for _ in range(2 if self.args.quick else 3)]
        self.say(
            "  start -> /v1/health answers (HTTP poll every 5 ms): " + ", ".join(f"{t:.2f}" for t in health) + " s"
        )
        self.results["start_to_health_s"] = health
        if os.geteuid() != 0 or not shutil.which("unshare"):
            self.say("  mDNS: skipped (needs root and unshare for a private network namespace)")
            return
        proc = subprocess.run(
            [
                "unshare",
                "--net",
                "--",
                "sh",
                "-c",
                "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo "
                '&& exec "$0" "$1" --mdns-child "$2"',
                sys.executable,
                __file__,
                str(self.root / "mdns"),
            ],
            env=_env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
        if not lines:
            self.say(f"  mDNS: failed: {proc.stderr[-800:]}")
            return
        out = json.loads(lines[0][7:])
        how = (
            "farm.runtime.discovery (mDNS, then /v1/health + /v1/info answered: node up)"
            if out.get("via") == "farm.runtime.discovery"
            else "a bare zeroconf browser (farm/runtime/discovery.py is not on this branch)"
        )
        self.say(
            f"  start -> seen via {how}, in a private netns: "
            + ", ".join(f"{t:.2f}" for t in out["seen"])
            + " s  (start -> health in there: "
            + ", ".join(f"{t:.2f}" for t in out["health"])
            + " s)"
        )
        self.results["start_to_mdns_s"] = out["seen"]
        if not has_discovery:
            self.say("  (farm/runtime/discovery.py absent: the farm's own discovery path is not measured)")

    def _health_once(self) -> float:
        home = self.root / f"h-{next(_seed)}"
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "farm.cli",
                "node",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-advertise",
                "--simulate",
                "--no-tls",  # plain HTTP like the baselines; what TLS costs: bench/tls_cost.py
            ],
            env=_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        url = _read_url(proc, b"lanfarm node listening on ")
        t = asyncio.run(_poll_health(url, t0))
        stop([Node(proc, url, 1.0)])
        return t

    def paths(self) -> None:
        self.say("\nrequest paths: one 0 s job at a time on 1 node (median ms per job)")
        r = asyncio.run(request_paths(self.nodes[0].url, 20 if self.args.quick else 40))
        bare = asyncio.run(run_bare([self.echo[0].url], payloads(20), 0.0, inflight=1)) / 20 * 1e3
        for variant, v in r.items():
            self.say(
                f"  {variant:<36} wall {v['wall_ms']:6.2f}  node started->finished {v['node_exec_ms']:6.2f}"
                f"  outside the node's slot {v['outside_node_ms']:6.2f}"
            )
        self.say(f"  {'bare aiohttp, 1 in flight':<36} wall {bare:6.2f}")
        self.results["paths"] = {**r, "bare_1_inflight_ms": bare}

    def scheduler(self) -> None:
        self.say("\nscheduler (pure, no I/O): 200 nodes, 10,000 queued jobs")
        r = scheduler_cost(
            completions=2000 if self.args.quick else 5000, tail_completions=60 if self.args.quick else 100
        )
        self.results["scheduler"] = r
        self.say(
            f"  add_jobs(10,000) {r['add_jobs_ms']:.1f} ms ({r['add_jobs_us_per_job']:.1f} us/job, "
            f"{r['initial_dispatches']} dispatched at once)"
        )
        self.say(
            f"  succeeded()+committed() -> next dispatch, queue deep: {r['us_per_decision']:.1f} us/decision "
            f"(p99 {r['p99_us']:.0f} us, {r['completions']} completions)"
        )
        self.say(
            f"  tail of the queue (< 200 queued, tail rule active): {r['tail_us_per_decision']:.0f} us/decision "
            f"(max {r['tail_max_ms']:.1f} ms, {r['tail_completions']} completions)"
        )
        self.say(f"  tick() with 10,000 jobs, queue empty, 200 idle nodes: {r['tick_empty_ms']:.1f} ms")
        self.say(f"  unfinished() (Farm._apply calls it after every decision batch): {r['unfinished_us']:.0f} us")

    # -- report ----------------------------------------------------------------------------------
    def summary(self) -> None:
        b = Row.best
        self.say("\nsummary (best of each; ratios from one interleaved run)")
        self.say("| row | ours | bare aiohttp | Dask | ours/bare | ours/Dask |")
        self.say("|---|---|---|---|---|---|")
        table = []
        for row in self.rows:
            if row.ideal:
                vals = [row.ideal / b(x) if x else float("nan") for x in (row.ours, row.bare, row.dask)]
                fmt = "{:.3f}"
            else:
                vals = [b(x) / row.jobs * 1e3 if x else float("nan") for x in (row.ours, row.bare, row.dask)]
                fmt = "{:.2f} ms"
            self.say(
                f"| {row.label} | "
                + " | ".join(fmt.format(v) for v in vals)
                + f" | {vals[0] / vals[1]:.2f} | {vals[0] / vals[2]:.2f} |"
            )
            table.append(
                {
                    "row": row.label,
                    "ideal_s": row.ideal,
                    "jobs": row.jobs,
                    "nodes": row.nodes,
                    "ours_s": row.ours,
                    "bare_s": row.bare,
                    "dask_s": row.dask,
                    "extra_s": row.extra,
                }
            )
        self.results["rows"] = table
        self.results["failures"] = FAILURES
        if FAILURES:
            self.say(f"\n!! {len(FAILURES)} farm runs had failed jobs (see above)")
        self.targets()
        for name, bd in self.breakdowns.items():
            self.print_breakdown(name, bd)

    def targets(self) -> None:
        b = Row.best
        by = {r.label.split(",")[0] + "," + r.label.split(",")[1]: r for r in self.rows}
        checks = []
        r = by.get("1 s jobs, 8 nodes")
        if r:
            checks.append(("efficiency >= 0.97 at 8 nodes, 1 s jobs", r.ideal / b(r.ours), 0.97, ">="))
        r = by.get("0.05 s jobs, 4 nodes")
        if r:
            checks.append(("efficiency >= 0.90 at 4 nodes, 0.05 s jobs", r.ideal / b(r.ours), 0.90, ">="))
        for r in self.rows:
            if not r.ideal and r.bare:
                checks.append((f"overhead <= 1.25x bare aiohttp ({r.label})", b(r.ours) / b(r.bare), 1.25, "<="))
        if "hetero_over_ideal" in self.results:
            checks.append(
                ("heterogeneous makespan within 10 % of ideal", self.results["hetero_over_ideal"], 0.10, "<=")
            )
        if "failover_s" in self.results:
            checks.append(("failover (kill -> running elsewhere) < 3 s", max(self.results["failover_s"]), 3.0, "<="))
        if "scheduler" in self.results:
            checks.append(
                (
                    "scheduler <= 50 us per decision (deep queue)",
                    self.results["scheduler"]["us_per_decision"],
                    50.0,
                    "<=",
                )
            )
        self.say("\ntargets")
        out = []
        for name, value, limit, op in checks:
            ok = value >= limit if op == ">=" else value <= limit
            self.say(f"  [{'MET' if ok else 'MISSED'}] {name}: {value:.3f}")
            out.append({"target": name, "value": value, "met": ok})
        self.results["targets"] = out

    def print_breakdown(self, name: str, bd: Breakdown) -> None:
        med = lambda xs: float(np.median(xs)) * 1e3 if xs else float("nan")  # noqa: E731
        self.say(f"\nfarm-side breakdown, {name} (median ms per call; calls overlap, 2 in flight per node)")
        for label, xs in bd.calls.items():
            self.say(f"  {label:<20} {med(xs):7.2f} ms  x{len(xs)}")
        self.say(
            f"  node: created->started {med(bd.node_queue):7.2f} ms   "
            f"started->finished {med(bd.node_exec):7.2f} ms"
            f"   finished->done event here {med(bd.event_lag):6.2f} ms"
        )


async def _poll_health(url: str, t0: float) -> float:
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with http.get(f"{url}/v1/health") as resp:
                    if resp.status == 200:
                        return time.perf_counter() - t0
            await asyncio.sleep(0.005)


# ------------------------------------------------------------------- what-if: request paths
async def request_paths(url: str, rounds: int) -> dict[str, dict[str, float]]:
    """One 0 s job at a time on one node, two request sequences (raw aiohttp, one session): the older
    client (HEAD+PUT image, HEAD mask, POST, done event, GET result; aiohttp never reuses a connection
    after a HEAD) and the newer one (PUT with ``Expect: 100-continue``, mask known). Medians in ms: wall
    per job, the node's own started->finished, and the rest."""
    import hashlib

    from farm.runtime.client import signed_by

    mask = mask_png()
    mask_sha = hashlib.sha256(mask).hexdigest()
    out: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(url, middlewares=signed_by(TOKEN)) as http:
        async with http.put(f"/v1/blobs/{mask_sha}", data=mask) as resp:
            assert resp.status in (200, 201)
        async with http.ws_connect("/v1/events") as ws:

            async def one(data: bytes, variant: str) -> tuple[float, float]:
                t0 = time.perf_counter()
                sha = hashlib.sha256(data).hexdigest()
                if variant.startswith("HEAD"):
                    async with http.head(f"/v1/blobs/{sha}") as resp:
                        there = resp.status == 200
                    if not there:
                        async with http.put(f"/v1/blobs/{sha}", data=data) as resp:
                            assert resp.status == 201
                    async with http.head(f"/v1/blobs/{mask_sha}") as resp:
                        assert resp.status == 200
                else:
                    async with http.put(f"/v1/blobs/{sha}", data=data, expect100=True) as resp:
                        assert resp.status == 201, resp.status
                job_id = os.urandom(16).hex()
                body = {"id": job_id, "spec": _spec(0.0).to_dict(), "image": sha, "mask": mask_sha, "client": "bench"}
                async with http.post("/v1/jobs", json=body) as resp:
                    assert resp.status == 202
                while True:
                    msg = await ws.receive_json(timeout=30)
                    job = msg.get("job") if msg.get("type") == "job" else None
                    if job and job["id"] == job_id and job["state"] == "done":
                        break
                async with http.get(f"/v1/jobs/{job_id}/result") as resp:
                    result = await resp.read()
                hashlib.sha256(result).hexdigest()
                wall = time.perf_counter() - t0
                return wall, job["finished"] - job["started"]

            got: dict[str, list[tuple[float, float]]] = {
                "HEAD + PUT (client before cfefeb3)": [],
                "PUT Expect: 100-continue (cfefeb3)": [],
            }
            for i, data in enumerate(payloads(rounds * 2)):
                variant = list(got)[i % 2]
                got[variant].append(await one(data, variant))
    for variant, xs in got.items():
        out[variant] = {
            "wall_ms": float(np.median([w for w, _ in xs])) * 1e3,
            "node_exec_ms": float(np.median([e for _, e in xs])) * 1e3,
            "outside_node_ms": float(np.median([w - e for w, e in xs])) * 1e3,
        }
    return out


# ---------------------------------------------------------------------------- pure scheduler
def scheduler_cost(
    *, nodes: int = 200, jobs: int = 10_000, completions: int = 5000, tail_completions: int = 150
) -> dict[str, Any]:
    """Time the pure Scheduler: add 10k jobs, then completions each freeing a slot for the next dispatch."""
    from farm.core.scheduler import Dispatch, JobRequest, Scheduler, WorkerCaps

    rng = random.Random(5)
    s = Scheduler()
    now = 1000.0
    for i in range(nodes):
        s.worker_up(WorkerCaps(id=f"n{i:03d}", slots=1, engines=frozenset({"sim"})), now)
    reqs = [JobRequest(f"j{i:05d}", "sim", 0.333) for i in range(jobs)]
    gc.collect()
    t0 = time.perf_counter()
    decisions = s.add_jobs(reqs, now)
    add_ms = (time.perf_counter() - t0) * 1e3
    inflight: list[tuple[str, str]] = []

    def start(out: list[Any]) -> list[tuple[str, str]]:
        """Start the dispatched jobs (a start may dispatch more: a node not timed yet queues one ahead)."""
        new = [(d.job_id, d.worker_id) for d in out if isinstance(d, Dispatch)]
        for job_id, wid in list(new):
            new += start(s.started(job_id, wid, now))
        return new

    inflight += start(decisions)
    initial = len(inflight)

    def complete(n: int) -> tuple[list[float], int]:
        nonlocal now
        per: list[float] = []
        made = 0
        for _ in range(n):
            if not inflight:
                break
            job_id, wid = inflight.pop(rng.randrange(len(inflight)))
            now += 0.01
            t = time.perf_counter()
            _won, out = s.succeeded(job_id, wid, now)
            out += s.committed(job_id, now)
            elapsed = time.perf_counter() - t
            new = start(out)
            inflight.extend(new)
            made += len(new)
            per.append(elapsed / max(1, len(new)))
        return per, made

    deep, made = complete(completions)
    deep_total = sum(t * 1 for t in deep)
    # the tail: keep completing until the queue is below the farm's slot count, then time those
    while s.queued() > nodes and inflight:
        complete(1)
    tail, _ = complete(tail_completions)
    t = time.perf_counter()
    unfinished_n = 20
    for _ in range(unfinished_n):
        s.unfinished()
    unfinished_us = (time.perf_counter() - t) / unfinished_n * 1e6
    while inflight:
        complete(len(inflight))
    t = time.perf_counter()
    s.tick(now + 1)
    tick_ms = (time.perf_counter() - t) * 1e3
    return {
        "add_jobs_ms": add_ms,
        "add_jobs_us_per_job": add_ms * 1e3 / jobs,
        "initial_dispatches": initial,
        "us_per_decision": deep_total / max(1, len(deep)) * 1e6,
        "p99_us": float(np.percentile(deep, 99)) * 1e6,
        "completions": len(deep),
        "decisions": made,
        "tail_us_per_decision": float(np.mean(tail)) * 1e6 if tail else float("nan"),
        "tail_max_ms": max(tail) * 1e3 if tail else float("nan"),
        "tail_completions": len(tail),
        "tick_empty_ms": tick_ms,
        "unfinished_us": unfinished_us,
    }


# --------------------------------------------------------------------------- the mDNS child
def mdns_child(root: Path) -> None:
    """Inside a private network namespace: node start -> up in farm.runtime.discovery (mDNS, then health and
    info answered), or seen by a bare zeroconf browser where farm/runtime/discovery.py is absent."""
    from zeroconf import IPVersion, ServiceStateChange
    from zeroconf.asyncio import AsyncServiceBrowser, AsyncZeroconf

    from farm.core.protocol import SERVICE_TYPE

    use_farm = (REPO / "farm" / "discovery.py").exists()

    async def watch() -> tuple[Any, asyncio.Queue[float], Callable[[], Any]]:
        seen: asyncio.Queue[float] = asyncio.Queue()
        if use_farm:
            from farm.runtime.discovery import Discovery, NodeListener

            class Listener(NodeListener):
                def on_node_up(self, record: Any) -> None:
                    seen.put_nowait(time.perf_counter())

            disc = Discovery(TOKEN, interfaces=["127.0.0.1"], listeners=[Listener()])
            await disc.async_start()
            return disc, seen, disc.async_stop
        aiozc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)

        def on_change(zeroconf: Any, service_type: str, name: str, state_change: Any) -> None:
            if state_change is ServiceStateChange.Added:
                seen.put_nowait(time.perf_counter())

        browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE_TYPE], handlers=[on_change])

        async def close() -> None:
            await browser.async_cancel()
            await aiozc.async_close()

        return browser, seen, close

    async def once(i: int) -> tuple[float, float]:
        _, seen, close = await watch()
        await asyncio.sleep(0.5)  # the browser's first queries are out
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "farm.cli",
                "node",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--simulate",
                "--no-tls",  # plain HTTP like the baselines; what TLS costs: bench/tls_cost.py
                "--interface",
                "127.0.0.1",
                "--name",
                f"bench-{i}",
            ],
            env=_env(root / f"m{i}"),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = await asyncio.to_thread(_read_url, proc, b"lanfarm node listening on ")
            health = await _poll_health(url, t0)
            t_seen = await asyncio.wait_for(seen.get(), 20)
            return t_seen - t0, health
        finally:
            await asyncio.to_thread(stop, [Node(proc, "", 1.0)])
            await close()

    async def main() -> dict[str, Any]:
        got = [await once(i) for i in range(3)]
        return {
            "via": "farm.runtime.discovery" if use_farm else "zeroconf",
            "seen": [a for a, _ in got],
            "health": [b for _, b in got],
        }

    print("RESULT " + json.dumps(asyncio.run(main())), flush=True)


# -------------------------------------------------------------------------------------- main
def _py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def summarise_collapsed(path: Path, top: int = 14) -> list[str]:
    """Top functions by own samples, and by samples below them, from py-spy's collapsed stacks."""
    own: dict[str, int] = {}
    below: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].rsplit(":", 1)[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")
        ]
        own[frames[-1]] = own.get(frames[-1], 0) + n
        for f in set(frames):
            below[f] = below.get(f, 0) + n
    lines = [f"    {total} samples; own time:"]
    lines += [f"      {n / total:6.1%}  {f}" for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]]
    lines.append("    inclusive (selected):")
    keys = (
        "execute",
        "encode_image",
        "decode_image",
        "decode_mask",
        "_work",
        "receive",
        "_close_synced",
        "_write_hashed",
        "read_blob",
        "write_blob",
        "get_result",
        "put_blob",
        "run (simulated",
        "sha256_hex",
        "_payload",
        "write_atomic",
        "_megapixels",
        "update (store",
        "_apply",
        "_fill",
        "result (client",
        "send_json",
        "_route",
        "json",
    )
    for f, n in sorted(below.items(), key=lambda kv: -kv[1]):
        if any(k in f for k in keys) and n / total >= 0.01:
            lines.append(f"      {n / total:6.1%}  {f}")
    return lines


def profile_farm(bench: Bench, out: Path) -> None:
    """cProfile of the farm process and py-spy of one node over a 0 s row and a 0.05 s row on 4 nodes."""
    out.mkdir(parents=True, exist_ok=True)
    spy = _py_spy()
    for name, service, jobs in (("zero", 0.0, 200), ("p05", 0.05, 80)):
        prof = cProfile.Profile()
        folder = bench.root / f"prof-{next(_seed)}"
        items = write_inputs(folder, payloads(jobs))
        samplers = []
        if spy:
            for who, pid in (("node", bench.nodes[0].proc.pid), ("farm", os.getpid())):
                dest = out / f"{who}-{name}.collapsed"
                samplers.append(
                    (
                        who,
                        dest,
                        subprocess.Popen(
                            [
                                spy,
                                "record",
                                "--pid",
                                str(pid),
                                "--format",
                                "raw",
                                "--rate",
                                "250",
                                "--nonblocking",
                                "--output",
                                str(dest),
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        ),
                    )
                )
            time.sleep(1.0)  # py-spy attaches
        t = asyncio.run(
            run_ours([n.url for n in bench.nodes[:4]], items, service, profile=prof, store_path=folder / "q.sqlite3")
        )
        for _who, _dest, sampler in samplers:
            sampler.send_signal(signal.SIGINT)
            sampler.wait(30)
        shutil.rmtree(folder, ignore_errors=True)
        path = out / f"farm-{name}.pstats"
        prof.dump_stats(path)
        bench.say(f"\nprofile: {jobs} x {service:g} s jobs on 4 nodes ({t:.2f} s); cProfile of the farm -> {path}")
        stats = pstats.Stats(str(path))
        stats.sort_stats("tottime").print_stats(15)
        for who, dest, _ in samplers:
            if dest.exists():
                bench.say(f"  py-spy of the {who} process (includes the idle seconds around the run) -> {dest}")
                for line in summarise_collapsed(dest):
                    bench.say(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer jobs per row, one rep (about 3 min)")
    parser.add_argument("--reps", type=int, help="runs per row and system, best kept (default 2; quick 1)")
    parser.add_argument("--only", help=f"comma-separated sections: {','.join(SECTIONS)}")
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--profile", type=Path, help="also cProfile the farm process; pstats go here")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--slowdown", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--mdns-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        serve_echo(args.slowdown)
        return 0
    if args.mdns_child:
        mdns_child(args.mdns_child)
        return 0
    args.reps = args.reps or (1 if args.quick else 2)
    only = set((args.only or ",".join(SECTIONS)).split(","))
    if unknown := only - set(SECTIONS):
        parser.error(f"unknown sections {unknown}")
    print(
        f"LAN Farm efficiency benchmark: SIMULATED GPU nodes (engine 'sim' sleeps; no real GPU work), "
        f"all on 127.0.0.1.\nmachine: {os.cpu_count()} CPU cores shared by the farm, every node, the echo "
        f"servers and Dask (and anything else running): expect noise; compare ratios.\n"
        f"payload: a distinct {len(noise_png(0)) / 1e6:.2f} MB PNG of noise per job ({SIDE}x{SIDE}, "
        f"{MP:.3f} MP), one shared mask; results about 1 MB. reps {args.reps}"
        f"{', quick' if args.quick else ''}.",
        flush=True,
    )
    t_start = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="lanfarm-bench-"))
    bench = Bench(args, root)
    try:
        if only & {"eff", "overhead", "hetero", "paths"} or args.profile:
            bench.start(need_hetero="hetero" in only)
            bench.warm_up()
        if "paths" in only:
            bench.paths()
        if "overhead" in only:
            bench.overhead()
        if "eff" in only:
            bench.efficiency()
        if "hetero" in only:
            bench.hetero()
        if args.profile:
            profile_farm(bench, args.profile)
        bench.close()
        if "failover" in only:
            bench.failover()
        if "discovery" in only:
            bench.discovery()
        if "sched" in only:
            bench.scheduler()
        bench.summary()
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)
    bench.results["wall_s"] = time.perf_counter() - t_start
    print(f"\ntotal {bench.results['wall_s']:.0f} s", flush=True)
    if args.json:
        args.json.write_text(json.dumps(bench.results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
