"""``lanfarm demo``: a whole farm on this PC — nodes on 127.0.0.1 added by address, plus the local
worker — running the sample edits. Nothing is sent onto the network (no discovery, loopback only)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.table import Table

from farm.core.address import Address
from farm.core.job import JobState
from farm.core.spec import EditSpec
from farm.engines.installed import default_registry
from farm.errors import FarmError
from farm.local.token import load_or_create_token
from farm.runtime.farm import Farm, FarmSettings

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
LISTENING = "lanfarm node listening on "
NODE_WAIT = 10.0  # seconds the demo nodes have to answer


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=2, help="nodes to start on 127.0.0.1 (default 2)")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default ./out)")
    parser.add_argument("--samples", type=Path, default=SAMPLES, help="folder of images with masks/ inside")
    parser.set_defaults(handler=handle)


@contextlib.contextmanager
def demo_nodes(count: int, token: str) -> Iterator[list[str]]:
    """Start ``count`` `lanfarm node` processes on 127.0.0.1 (own homes, no mDNS); yield their URLs."""
    procs: list[subprocess.Popen[str]] = []
    with tempfile.TemporaryDirectory(prefix="lanfarm-demo-") as tmp:
        try:
            urls = []
            for i in range(count):
                env = {k: v for k, v in os.environ.items() if not k.startswith("LANFARM_")}
                env.update(
                    LANFARM_HOME=str(Path(tmp) / f"node{i + 1}"),
                    LANFARM_TOKEN=token,
                    PYTHONPATH=os.pathsep.join(p for p in (str(SAMPLES.parents[1]), os.environ.get("PYTHONPATH")) if p),
                )
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
                        "--name",
                        f"demo-node-{i + 1}",
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL,
                    text=True,
                )
                procs.append(proc)
            for proc in procs:
                urls.append(_wait_listening(proc))
            yield urls
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                if proc.stdout:
                    proc.stdout.close()


def _wait_listening(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith(LISTENING):
            return line[len(LISTENING) :].strip()
        if not line and proc.poll() is not None:
            break
    raise FarmError("a demo node did not start (run `lanfarm node --host 127.0.0.1 --no-advertise -v` to see why)")


def handle(args: argparse.Namespace) -> int:
    console = Console()
    out: Path = args.out
    if out.exists() and not out.is_dir():
        console.print(f"[red]error:[/red] output folder {out} is a file")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    token = load_or_create_token()
    console.print(
        f"Starting a farm on this PC: {args.nodes} nodes on 127.0.0.1 + the local worker "
        "(no discovery, nothing leaves this machine)"
    )
    try:
        with demo_nodes(args.nodes, token) as urls:
            return asyncio.run(_run(args.samples, urls, token, console, out))
    except FarmError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2


async def _run(samples: Path, urls: list[str], token: str, console: Console, out: Path) -> int:
    peers = tuple(Address.parse(url) for url in urls)
    settings = FarmSettings(token=token, local_slots=1, mdns=False, peers=peers)
    async with Farm.open(settings, registry=default_registry()) as farm:
        await farm.wait_for_nodes(NODE_WAIT)
        for miss in farm.unreached():
            raise FarmError(f"demo node at {miss.address} did not answer: {miss.error}")
        for node in farm.nodes():
            console.print(f"  node {node.name} at {node.address.url}")
        started = time.perf_counter()
        batch = await farm.submit_paths([samples], samples / "masks", EditSpec(), out)
        problems = [p for p in batch.problems if not p.skipped]  # generate.py beside them is no image
        if problems or not batch.jobs:
            raise FarmError(f"no usable samples in {samples}: {[str(p) for p in problems]}")
        await farm.wait()
        elapsed = time.perf_counter() - started
        jobs = batch.jobs
        table = Table(title=f"{len(jobs)} sample edits in {elapsed:.2f} s")
        for col in ("worker", "done", "failed attempts", "edits"):
            table.add_column(col)
        for worker_id, stats in farm.stats().items():
            names = ", ".join(j.input.name for j in jobs if j.worker == worker_id and j.state is JobState.DONE)
            table.add_row(stats.name, str(stats.done), str(stats.failed), names)
        console.print(table)
    failed = [j for j in jobs if j.state is not JobState.DONE]
    for job in failed:
        console.print(f"[red]failed[/red] {job.input.name}: {job.error}")
    console.print(f"Outputs in {out.resolve()}")
    return 1 if failed else 0
