"""Node API overhead on loopback: a tiny job's round trip and 24 MB upload/download, against bare aiohttp.

Both servers run as subprocesses on 127.0.0.1 in the same run: ``lanfarm node --simulate --no-advertise``
and a bare aiohttp echo server (this file with ``--echo-server``). Prints medians and node/bare ratios.

    python bench/node_api.py [--rounds 30] [--big-rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import cv2
import numpy as np
from aiohttp import web

from farm.runtime.client import signed_by

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-token-0123456789"


def echo_app() -> web.Application:
    """The baseline: the least an aiohttp server can do for the same requests."""
    app = web.Application(client_max_size=1 << 30)
    store: dict[str, bytes] = {}

    async def job(request: web.Request) -> web.Response:
        return web.json_response(await request.json(), status=202)

    async def put(request: web.Request) -> web.Response:
        data = await request.read()
        store["blob"] = data
        return web.json_response({"size": len(data)}, status=201)

    async def get(request: web.Request) -> web.Response:
        return web.Response(body=store.get("blob", b""), content_type="image/png")

    app.router.add_post("/job", job)
    app.router.add_put("/blob", put)
    app.router.add_get("/blob", get)
    return app


def start(cmd: list[str], env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def png_of(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(
        ".png", rng.integers(0, 255, (height, width, 3), dtype=np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 1]
    )
    assert ok
    return buf.tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec() -> dict[str, object]:
    return {"schema": 1, "op": "inpaint", "engine": "sim", "params": {"seconds_per_mp": 0.0}}


async def run_job(
    http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse, job_id: str, image: str, mask: str
) -> bytes:
    body = {"id": job_id, "spec": spec(), "image": image, "mask": mask, "client": "bench"}
    async with http.post("/v1/jobs", json=body) as resp:
        assert resp.status == 202, await resp.text()
    while True:
        msg = await ws.receive_json(timeout=60)
        if msg["type"] == "job" and msg["job"]["id"] == job_id and msg["job"]["state"] in ("done", "failed"):
            assert msg["job"]["state"] == "done", msg
            break
    async with http.get(f"/v1/jobs/{job_id}/result") as resp:
        return await resp.read()


async def bench(node: str, echo: str, rounds: int, big_rounds: int) -> None:
    small, mask = png_of(64, 64, 1), np.zeros((64, 64), np.uint8)
    mask[8:24, 8:24] = 255
    mask_png = cv2.imencode(".png", mask)[1].tobytes()
    big = png_of(2900, 2900, 2)  # about 24 MB of incompressible PNG
    mb = len(big) / 1e6
    timeout = aiohttp.ClientTimeout(total=300)
    async with (
        aiohttp.ClientSession(node, middlewares=signed_by(TOKEN), timeout=timeout) as http,
        aiohttp.ClientSession(echo, timeout=timeout) as bare,
    ):
        for data in (small, mask_png):
            async with http.put(f"/v1/blobs/{sha(data)}", data=data) as resp:
                assert resp.status in (200, 201)
        async with http.ws_connect("/v1/events") as ws:
            node_rtt, bare_rtt = [], []
            for i in range(rounds):
                t0 = time.perf_counter()
                await run_job(http, ws, f"bench-tiny-{i:04d}", sha(small), sha(mask_png))
                node_rtt.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                async with bare.post("/job", json={"id": i, "spec": spec()}) as resp:
                    await resp.read()
                async with bare.get("/blob") as resp:
                    await resp.read()
                bare_rtt.append(time.perf_counter() - t0)

            node_up, bare_up, node_down, bare_down = [], [], [], []
            for i in range(big_rounds):
                blob = i.to_bytes(8, "big") + big[8:] if i else big  # a new blob each round
                name = sha(blob)
                t0 = time.perf_counter()
                async with http.put(f"/v1/blobs/{name}", data=blob) as resp:
                    assert resp.status == 201, await resp.text()
                node_up.append(mb / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                async with bare.put("/blob", data=blob) as resp:
                    await resp.read()
                bare_up.append(mb / (time.perf_counter() - t0))
            big_mask = np.zeros((2900, 2900), np.uint8)
            big_mask[:16, :16] = 255
            big_mask_png = cv2.imencode(".png", big_mask)[1].tobytes()
            async with http.put(f"/v1/blobs/{sha(big_mask_png)}", data=big_mask_png) as resp:
                assert resp.status in (200, 201)
            result = await run_job(http, ws, "bench-big-0001", sha(big), sha(big_mask_png))
            for _ in range(big_rounds):
                t0 = time.perf_counter()
                async with http.get("/v1/jobs/bench-big-0001/result") as resp:
                    data = await resp.read()
                node_down.append(len(data) / 1e6 / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                async with bare.get("/blob") as resp:
                    data = await resp.read()
                bare_down.append(len(data) / 1e6 / (time.perf_counter() - t0))

    med = statistics.median
    print(f"tiny job round trip (POST job, events until done, GET result; {rounds} rounds)")
    print(
        f"  node {med(node_rtt) * 1e3:7.2f} ms   bare aiohttp {med(bare_rtt) * 1e3:7.2f} ms   "
        f"ratio {med(node_rtt) / med(bare_rtt):5.2f}x"
    )
    print(f"upload {mb:.1f} MB ({big_rounds} rounds; node hashes and renames it, no fsync)")
    print(
        f"  node {med(node_up):7.0f} MB/s   bare aiohttp {med(bare_up):7.0f} MB/s   "
        f"ratio {med(bare_up) / med(node_up):5.2f}x slower"
    )
    print(f"download {len(result) / 1e6:.1f} MB result ({big_rounds} rounds)")
    print(
        f"  node {med(node_down):7.0f} MB/s   bare aiohttp {med(bare_down):7.0f} MB/s   "
        f"ratio {med(bare_down) / med(node_down):5.2f}x slower"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--big-rounds", type=int, default=5)
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:

        async def serve() -> None:
            runner = web.AppRunner(echo_app())
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            print(f"echo listening on http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
            await asyncio.Event().wait()

        asyncio.run(serve())
        return 0
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PYTHONPATH": str(REPO), "LANFARM_HOME": home, "LANFARM_TOKEN": TOKEN}
        node, node_url = start(
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
                "--no-tls",  # plain HTTP like the bare baseline; what TLS costs: bench/tls_cost.py
                "--simulate",
                "--max-upload-mb",
                "64",
            ],
            env,
        )
        echo, echo_url = start([sys.executable, __file__, "--echo-server"], env)
        try:
            asyncio.run(bench(node_url, echo_url, args.rounds, args.big_rounds))
        finally:
            for proc in (node, echo):
                proc.terminate()
                proc.wait(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
