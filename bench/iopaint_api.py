"""Issue 18: 16 concurrent IOPaint ``/api/v1/inpaint`` requests against ``lanfarm serve``.

``lanfarm serve --no-local`` with two ``lanfarm node`` processes against the same serve with one node
(one node's worth of capacity), all on 127.0.0.1, every request a 1024x768 PNG with a mask (Krita's
body). The throughput ratio is printed from one run (configurations interleaved, best of N). Two
engines: ``cv2`` (the issue's setting: real CPU work, so on a machine with few cores the two nodes
share them) and ``sim`` (the SIMULATED GPU: a sleep per megapixel, what a node with its own GPU looks
like). Per-request latency (one request at a time) is set beside a bare in-process baseline: base64
decode, PNG decode, the same cv2 inpaint (IOPaint's Crop strategy), PNG encode.

    PYTHONPATH=. python bench/iopaint_api.py            # about 1 min on 2 cores
    PYTHONPATH=. python bench/iopaint_api.py --rounds 3 --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np

TOKEN = "bench-farm-token-0123456789abcdef"
W, H = 1024, 768
RECT = (300, 200, 520, 420)  # the masked box; IOPaint's Crop strategy (1024 > 800) edits around it
# sim: 0.1 s/MP x 40 x 0.23 MP (Crop: the 220x220 box + 128 px margins) = 0.9 s per request on a node
SIM_SLOWDOWN = 40.0


def images(n: int) -> list[dict[str, str]]:
    """Krita plugin bodies (chayleaf/krita-iopaint): PNG data URLs of a layer and its selection."""
    rng = np.random.default_rng(18)
    mask = np.zeros((H, W), np.uint8)
    x0, y0, x1, y1 = RECT
    mask[y0:y1, x0:x1] = 255
    m = "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", mask)[1]).decode()
    out = []
    for _ in range(n):
        img = cv2.GaussianBlur(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), (0, 0), 2.0)
        out.append(
            {"image": "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", img)[1]).decode(), "mask": m}
        )
    return out


def env(home: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("LANFARM_")}
    repo = str(Path(__file__).resolve().parents[1])
    e.update(LANFARM_HOME=str(home), LANFARM_TOKEN=TOKEN, LANFARM_DISCOVERY="off", PYTHONPATH=repo)
    return e


def start(argv: list[str], home: Path, ready: str) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "farm.cli", *argv], env=env(home), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline().decode()
            if line.startswith(ready):
                return proc, line.strip().rsplit(" ", 1)[1]
            if not line:
                break
    proc.kill()
    raise RuntimeError(f"{argv[0]} did not start")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Farm:
    """``lanfarm serve --no-local`` with ``nodes`` nodes of one slot each."""

    def __init__(self, root: Path, nodes: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        peers = []
        for i in range(nodes):
            args = ["node", "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--no-tls", "--slots", "1"]
            args += ["--simulate", "--simulate-slowdown", str(SIM_SLOWDOWN), "--name", f"node{i}"]
            proc, url = start(args, root / f"node{i}", "lanfarm node listening on ")
            self.procs.append(proc)
            peers += ["--peer", url.removeprefix("http://")]
        serve = ["serve", "--port", "0", "--no-local", "--no-discovery", *peers, "--work-dir", str(root / "work")]
        proc, self.url = start(serve, root / f"serve{nodes}", "lanfarm serve listening on ")
        self.procs.append(proc)
        self.nodes = nodes

    async def ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            async with http.get(self.url + "/farm/v1/info") as r:
                if (await r.json())["workers"] == self.nodes:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError("the nodes were not found")

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by (the serve, the nodes), from /proc."""
        ticks = os.sysconf("SC_CLK_TCK")

        def used(proc: subprocess.Popen[bytes]) -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks

        return used(self.procs[-1]), sum(used(p) for p in self.procs[:-1])

    def close(self) -> None:
        for proc in reversed(self.procs):
            stop(proc)


async def post(http: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, str]:
    t = time.perf_counter()
    async with http.post(
        url + "/api/v1/inpaint", data=io.BytesIO(body), headers={"Content-Type": "application/json"}
    ) as r:
        await r.read()
        assert r.status == 200, r.status
        return time.perf_counter() - t, r.headers.get("X-Farm-Worker", "")


async def burst(http: aiohttp.ClientSession, farm: Farm, bodies: list[bytes]) -> tuple[float, dict[str, int]]:
    t = time.perf_counter()
    answers = await asyncio.gather(*(post(http, farm.url, b) for b in bodies))
    per: dict[str, int] = {}
    for _, worker in answers:
        per[worker] = per.get(worker, 0) + 1
    return time.perf_counter() - t, per


def bare(bodies: list[dict[str, str]]) -> list[float]:
    """One process, no HTTP: what an IOPaint-like server must do at least per cv2 request."""
    from farm.core.spec import EditSpec, HdStrategy
    from farm.engines.installed import default_registry
    from farm.imaging.pipeline import execute

    registry = default_registry()
    spec = EditSpec(hd=HdStrategy("crop", 800, 128, 1280), params={"method": "ns", "radius": 4})
    out = []
    for body in bodies:
        t = time.perf_counter()
        image = base64.b64decode(body["image"].split(",", 1)[1])
        mask = base64.b64decode(body["mask"].split(",", 1)[1])
        execute(image, mask, spec, registry)
        out.append(time.perf_counter() - t)
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    raw = images(args.requests)
    results: dict[str, Any] = {"requests": args.requests, "size": f"{W}x{H}", "rounds": args.rounds}
    with tempfile.TemporaryDirectory(prefix="lf-bench-") as tmp:
        root = Path(tmp)
        farms = {n: Farm(root / f"f{n}", n) for n in (1, 2)}
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
                for farm in farms.values():
                    await farm.ready(http)
                for engine in ("cv2", "sim"):
                    bodies = [json.dumps(b).encode() for b in raw]
                    for farm in farms.values():
                        async with http.post(farm.url + "/api/v1/model", json={"name": engine}) as r:
                            assert r.status == 200, await r.text()
                        await burst(http, farm, bodies[:2])  # warm: connections, first decode
                    best: dict[int, float] = {}
                    spread: dict[int, dict[str, int]] = {}
                    cpu: dict[int, tuple[float, float]] = {}
                    for _ in range(args.rounds):
                        for n, farm in farms.items():  # interleaved
                            before = farm.cpu()
                            took, per = await burst(http, farm, bodies)
                            after = farm.cpu()
                            if took < best.get(n, float("inf")):
                                best[n], spread[n] = took, per
                                cpu[n] = (after[0] - before[0], after[1] - before[1])
                    lat = [(await post(http, farms[2].url, bodies[i % len(bodies)]))[0] for i in range(args.latency)]
                    results[engine] = {
                        "one_node_s": round(best[1], 3),
                        "two_nodes_s": round(best[2], 3),
                        "throughput_ratio": round(best[1] / best[2], 3),
                        "per_worker_two_nodes": spread[2],
                        "serve_cpu_ms_per_request": round(cpu[1][0] / len(bodies) * 1000, 1),
                        "nodes_cpu_ms_per_request": round(cpu[1][1] / len(bodies) * 1000, 1),
                        "latency_ms_median": round(statistics.median(lat) * 1000, 1),
                        "latency_ms_p95": round(sorted(lat)[int(0.95 * (len(lat) - 1))] * 1000, 1),
                    }
        finally:
            for farm in farms.values():
                farm.close()
    base = bare(raw[: args.latency])
    results["bare_cv2_ms_median"] = round(statistics.median(base) * 1000, 1)
    results["cores"] = os.cpu_count()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2, help="bursts per configuration (best is kept)")
    parser.add_argument("--latency", type=int, default=8, help="sequential requests for the latency figures")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    results = asyncio.run(main_async(args))
    print(f"{args.requests} concurrent /api/v1/inpaint, {W}x{H}, lanfarm serve --no-local ({os.cpu_count()} cores)")
    for engine in ("cv2", "sim"):
        r = results[engine]
        print(
            f"  {engine:4s} one node {r['one_node_s']:.2f} s, two nodes {r['two_nodes_s']:.2f} s: "
            f"throughput x{r['throughput_ratio']:.2f} (ideal x2.00); spread {r['per_worker_two_nodes']}; "
            f"latency median {r['latency_ms_median']:.0f} ms, p95 {r['latency_ms_p95']:.0f} ms; CPU per request: "
            f"serve {r['serve_cpu_ms_per_request']:.0f} ms, node {r['nodes_cpu_ms_per_request']:.0f} ms"
        )
    print(f"  bare in-process cv2 request (decode, inpaint, encode): {results['bare_cv2_ms_median']:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
