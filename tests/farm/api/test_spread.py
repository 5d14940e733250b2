"""IOPaint requests spread over real ``lanfarm node`` processes on 127.0.0.1, and survive one dying.

The nodes run the SIMULATED GPU engine (``--simulate``: a sleep per megapixel, then the masked
pixels inverted), so every answer can be checked pixel for pixel whichever worker made it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from farm.core.address import Address
from farm.runtime.farm import FarmSettings
from tests.farm.api import clients
from tests.farm.api.helpers import Served, box, decode, encode, scene, serving
from tests.node.helpers import TOKEN, start_node, stop_node

pytestmark = pytest.mark.slow
W, H = 640, 480


@contextlib.contextmanager
def nodes(tmp_path: Path, *names: str, slowdown: float) -> Iterator[list[tuple[subprocess.Popen[bytes], str]]]:
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for name in names:
            args = ["--host", "127.0.0.1", "--port", "0", "--no-advertise", "--name", name, "--slots", "1"]
            args += ["--simulate", "--simulate-slowdown", str(slowdown)]
            started.append(start_node(tmp_path / name, *args))
        yield started
    finally:
        for proc, _url in started:
            stop_node(proc)


def farm_of(urls: list[str]) -> FarmSettings:
    peers = tuple(Address.parse(url.removeprefix("http://")) for url in urls)
    return FarmSettings(token=TOKEN, use_local=False, mdns=False, peers=peers, heartbeat_interval=0.2)


async def inpaint(s: Served, seed: int) -> tuple[int, str, np.ndarray, np.ndarray]:
    img, mask = scene(W, H, seed), box(W, H, (100, 80, 300, 260))
    body = io.BytesIO(json.dumps(clients.krita_inpaint(encode(img), encode(mask))).encode())
    async with s.http.post(s.url + "/api/v1/inpaint", data=body, headers={"Content-Type": "application/json"}) as r:
        data = await r.read()
        assert r.status == 200, data[:500]
        expected = img.copy()
        expected[mask > 0] = 255 - expected[mask > 0]
        return r.status, r.headers["X-Farm-Worker"], decode(data), expected


async def test_concurrent_requests_land_on_several_workers(tmp_path: Path) -> None:
    with nodes(tmp_path, "alpha", "beta", slowdown=10.0) as started:
        async with serving(tmp_path, farm_of([url for _, url in started]), model="sim") as s:
            await s.farm.wait_for_nodes(10.0)
            assert len(s.farm.worker_ids) == 2
            answers = await asyncio.gather(*(inpaint(s, i) for i in range(8)))
    for _status, _worker, out, expected in answers:
        assert np.array_equal(out, expected)
    workers = [worker for _, worker, _, _ in answers]
    assert set(workers) == {"alpha", "beta"}, workers  # both nodes made results


async def test_a_node_dying_mid_request_still_answers_the_request(tmp_path: Path) -> None:
    with nodes(tmp_path, "alpha", "beta", slowdown=60.0) as started:  # ~1.8 s per request on a node
        async with serving(tmp_path, farm_of([url for _, url in started]), model="sim") as s:
            await s.farm.wait_for_nodes(10.0)
            requests = [asyncio.ensure_future(inpaint(s, i)) for i in range(4)]
            async with asyncio.timeout(30):  # until both nodes are running one
                while not all(w.status and w.status.running for w in s.farm.workers()) or len(s.farm.workers()) < 2:
                    await asyncio.sleep(0.05)
            victim = next(w for w in s.farm.workers() if w.name == "alpha")
            assert victim.status is not None and victim.status.running
            started[0][0].send_signal(signal.SIGKILL)  # alpha dies with a request on its GPU
            answers = await asyncio.gather(*requests)
            retried = [j for j in s.farm.jobs.values() if j.attempts > 1]
    for status, _worker, out, expected in answers:
        assert status == 200 and np.array_equal(out, expected)
    assert retried, "the request alpha was running ran again elsewhere"
    assert "alpha" not in {w for _, w, _, _ in answers}  # alpha died on its first request: beta made them all
