"""What TLS costs the farm: transfer rate and per-job overhead of a node over https (pinned, the default)
against the same node with ``--no-tls``, both in this run, interleaved round by round.

Two ``lanfarm node --simulate --no-advertise`` subprocesses on 127.0.0.1 (one default, one ``--no-tls``),
driven through the farm's own client (farm.runtime.client.NodeClient with the farm's trust store, so
the https one proves the token and is pinned first). Measured:

- first contact: a new connection, ``/v1/health`` and the identity proof (TLS: a handshake and the pin);
- per-job overhead: a 64x64 SIMULATED job that takes no engine time, submitted, polled and fetched;
- transfer: a fresh ~24 MB upload, and the ~same-size result downloaded.

Prints medians and the TLS/plain ratios.

    python bench/tls_cost.py [--rounds 30] [--big-rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path

import aiohttp
import cv2
import numpy as np

from farm.core.spec import EditSpec
from farm.local.files import sha256_hex as sha
from farm.runtime.client import NodeClient
from farm.runtime.trust import Trust

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"
SPEC = EditSpec(engine="sim", params={"seconds_per_mp": 0.0})


def start_node(home: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANFARM_")}
    env.update(PYTHONPATH=str(REPO), LANFARM_HOME=str(home), LANFARM_TOKEN=TOKEN)
    cmd = [sys.executable, "-m", "farm.cli", "node", "--host", "127.0.0.1", "--port", "0", "--no-advertise"]
    proc = subprocess.Popen([*cmd, "--simulate", *extra], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"node did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def png_of(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    return buf.tobytes()


def mask_of(width: int, height: int) -> bytes:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : height // 2, width // 4 : width // 2] = 255
    return cv2.imencode(".png", mask)[1].tobytes()


async def run_job(client: NodeClient, job_id: str, image: str, mask: str) -> bytes:
    job = await client.submit(job_id, SPEC, image, mask, client="bench")
    while job["state"] not in ("done", "failed", "cancelled"):
        await asyncio.sleep(0.002)
        job = await client.job(job_id)
    assert job["state"] == "done", job
    return await client.result(job_id)


async def timed(step: Awaitable[object]) -> float:
    """Seconds ``step`` (a coroutine not yet started) takes to run."""
    t0 = time.perf_counter()
    await step
    return time.perf_counter() - t0


async def bench(urls: dict[str, str], pins: Path, rounds: int, big_rounds: int) -> None:
    trust = Trust(pins)
    small, small_mask = png_of(64, 64, 1), mask_of(64, 64)
    side = 2900  # about 24 MB of incompressible PNG
    big_mask = mask_of(side, side)
    results: dict[str, dict[str, list[float]]] = {m: {"contact": [], "job": [], "up": [], "down": []} for m in urls}
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        clients = {mode: NodeClient(session, url, TOKEN, trust=trust, timeout=timeout) for mode, url in urls.items()}
        for client in clients.values():  # warm-up: the TLS one proves the token and is pinned
            await client.identity()
            for data in (small, small_mask, big_mask):
                await client.put_blob(data)
        for i in range(rounds):
            for mode, url in urls.items():
                async with aiohttp.ClientSession() as fresh:  # a new connection: handshake, health, proof
                    first = NodeClient(fresh, url, TOKEN, trust=Trust(pins.with_name(f"contact-{mode}-{i}.json")))
                    results[mode]["contact"].append(await timed(first.identity()))
                client = clients[mode]
                job = f"tls-bench-{mode}-{i:04d}"
                results[mode]["job"].append(await timed(run_job(client, job, sha(small), sha(small_mask))))
        for i in range(big_rounds):
            for mode, client in clients.items():
                big = png_of(side, side, 100 + i * 2 + (mode == "tls"))  # fresh bytes: never "already stored"
                mb = len(big) / 1e6
                up = await timed(client.put_blob(big))
                job = f"tls-big-{mode}-{i:04d}"
                result = await client.submit(job, SPEC, sha(big), sha(big_mask), client="bench")
                while result["state"] not in ("done", "failed"):
                    await asyncio.sleep(0.01)
                    result = await client.job(job)
                out_mb = result["result"]["size"] / 1e6
                down = await timed(client.result(job))
                results[mode]["up"].append(mb / up)
                results[mode]["down"].append(out_mb / down)
    med = {m: {k: statistics.median(v) for k, v in r.items()} for m, r in results.items()}
    t, p = med["tls"], med["plain"]
    print(f"rounds: {rounds} tiny jobs and first contacts, {big_rounds} x ~24 MB up and down, per mode")
    print(f"{'':28}{'TLS (pinned)':>14}{'plain HTTP':>14}{'TLS / plain':>13}")
    for label, key, scale, digits in (
        ("first contact (ms)", "contact", 1e3, 1),
        ("per-job round trip (ms)", "job", 1e3, 1),
        ("upload (MB/s)", "up", 1.0, 0),
        ("download (MB/s)", "down", 1.0, 0),
    ):
        print(f"{label:28}{t[key] * scale:14.{digits}f}{p[key] * scale:14.{digits}f}{t[key] / p[key]:13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--big-rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        tls, tls_url = start_node(root / "tls")
        plain, plain_url = start_node(root / "plain", "--no-tls")
        try:
            asyncio.run(bench({"tls": tls_url, "plain": plain_url}, root / "pins.json", args.rounds, args.big_rounds))
        finally:
            for proc in (tls, plain):
                proc.terminate()
                proc.wait(30)


if __name__ == "__main__":
    main()
