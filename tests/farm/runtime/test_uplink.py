"""Uploads share this PC's link: to two real nodes at once, the inputs go one after another (the first
node starts on its input instead of both waiting for halves of theirs), and a node whose measured link
is clearly the slower one does not wait for the others."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from farm import EditSpec, default_registry
from farm.core.job import JobState
from farm.core.scheduler import WorkerCaps
from farm.core.spec import OutputSpec
from farm.runtime.client import NodeClient
from farm.runtime.dispatch import Dispatcher, FarmOptions
from farm.runtime.planning import plan
from tests.node.helpers import TOKEN, node_env, start_node, stop_node


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[list[str]]:
    procs: list[subprocess.Popen[bytes]] = []
    urls = []
    for name in ("a", "b"):
        home = tmp_path / f"node-{name}"
        proc, url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", env=node_env(home))
        procs.append(proc)
        urls.append(url)
    yield urls
    for proc in procs:
        stop_node(proc)


def _photos(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(n):
        cv2.imwrite(str(folder / f"p{i}.png"), rng.integers(0, 256, (600, 800, 3), np.uint8))
        mask = np.zeros((600, 800), np.uint8)
        mask[100:160, 200:300] = 255
        cv2.imwrite(str(folder / f"p{i}_mask.png"), mask)
    return folder


async def test_the_first_uploads_to_two_nodes_go_one_after_another(
    tmp_path: Path, two_nodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    sends: dict[str, list[tuple[float, float]]] = {}
    real = NodeClient.send_blob

    async def watched(self: NodeClient, data: bytes, sha: str) -> bool:
        began = time.monotonic()
        await asyncio.sleep(0.1)  # long enough that two uploads started together would overlap
        sent = await real(self, data, sha)
        sends.setdefault(self.base_url, []).append((began, time.monotonic()))
        return sent

    monkeypatch.setattr(NodeClient, "send_blob", watched)
    arrivals: list[tuple[str, str]] = []  # what the scheduler's line of uploads hears, as the nodes' workers tell it
    told = Dispatcher.uploaded

    def heard(self: Dispatcher, worker_id: str, job_id: str) -> None:
        arrivals.append((worker_id, job_id))
        told(self, worker_id, job_id)

    monkeypatch.setattr(Dispatcher, "uploaded", heard)
    src = _photos(tmp_path / "in", 4)
    out = tmp_path / "out"
    out.mkdir()
    items, problems = plan([src], None, out, OutputSpec("keep"))
    assert not problems
    options = FarmOptions(use_local=False, shipping="whole")
    async with Dispatcher(default_registry(), token=TOKEN, options=options) as farm:
        for url in two_nodes:
            await farm.add_peer(url)
        jobs = await farm.submit(items, EditSpec(engine="cv2", output=OutputSpec("keep")))
        await farm.wait()
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs]
    assert len(sends) == 2, "both nodes should have had inputs"
    (a_start, a_end), (b_start, b_end) = (uploads[0] for uploads in sends.values())
    assert a_end <= b_start or b_end <= a_start, "the first inputs to the two nodes were uploaded at once"
    assert {job for _, job in arrivals} == {j.id for j in jobs}, "an upload's arrival was not told"
    assert len(farm.scheduler._uplink) == 0, "uploads left in the line after the batch"


def test_a_node_on_a_clearly_slower_link_does_not_wait_for_the_others() -> None:
    farm = Dispatcher(default_registry(), token=TOKEN, options=FarmOptions(use_local=False))
    for node in ("fast", "slow", "new"):
        farm.scheduler.worker_up(WorkerCaps(node, engines=frozenset({"cv2"})), 0.0)
    farm.scheduler.link_measured("fast", 100_000_000, 1.0)
    farm.scheduler.link_measured("slow", 20_000_000, 1.0)  # a fifth of the fast one: its own link is the limit
    assert farm.shares_uplink("fast") and farm.shares_uplink("new")  # unmeasured: shares
    assert not farm.shares_uplink("slow")
    farm.scheduler.link_measured("slow", 300_000_000, 1.0)  # now about as fast as the other
    assert farm.shares_uplink("slow")
