"""Models follow the work, end to end with real processes on 127.0.0.1: ``lanfarm run --no-local`` sends
this PC's model to the nodes that lack it (once), a push survives its node being killed and restarted,
and a node whose file of the same name is other content never runs the jobs."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import pytest

from farm.runtime.client import NodeClient, NodeRejected
from farm.runtime.model_push import package, push_model
from tests.conftest import LANFARM, png_bytes, scene, subprocess_env
from tests.node.helpers import TOKEN, node_env, start_node, stop_node

MODEL = "compact-x4.safetensors"
IMAGES = 12
W, H = 384, 256  # x4 on the CPU: 12 jobs take one node longer than the other needs to verify its push under load


class Nodes:
    """Real ``lanfarm node`` processes with their own homes and models folders."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.urls: dict[str, str] = {}

    def models(self, name: str) -> Path:
        folder = self.root / name / "models"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def start(self, name: str, port: int = 0) -> str:
        home = self.root / name / "home"
        args = ("--host", "127.0.0.1", "--port", str(port), "--no-advertise", "--name", name, "--slots", "1")
        proc, url = start_node(
            home, *args, "--models-dir", str(self.models(name)), env=node_env(home, LANFARM_DEVICE="cpu"), timeout=90
        )
        self.procs[name], self.urls[name] = proc, url
        return url

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.kill()
        proc.communicate(timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            stop_node(proc, timeout=60)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    farm_nodes = Nodes(tmp_path / "nodes")
    try:
        yield farm_nodes
    finally:
        farm_nodes.stop_all()


def _inputs(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for i in range(IMAGES):
        (folder / f"img{i:02d}.png").write_bytes(png_bytes(scene(W, H, seed=i)))
    return folder


def _run(tmp_path: Path, models: Path, out: Path, *peers: str) -> subprocess.CompletedProcess[str]:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    args = ["run", str(tmp_path / "in"), "--out", str(out), "--engine", "upscale", "--model", MODEL, "--no-local"]
    for url in peers:
        args += ["--peer", url.removeprefix("http://")]
    args += ["--token-file", str(token), "--no-discovery", "--wait", "120"]
    env = subprocess_env(LANFARM_MODELS_DIR=str(models), LANFARM_DEVICE="cpu")
    return subprocess.run([*LANFARM, *args], capture_output=True, text=True, timeout=300, env=env, check=False)


async def _info(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        return await NodeClient(session, url, TOKEN).call("GET", "/v1/info")


def _done(url: str) -> int:
    return int(asyncio.run(_info(url))["jobs"]["done"])


def _widths(out: Path) -> set[int]:
    return {int(cv2.imread(str(p)).shape[1]) for p in out.iterdir()}


def test_run_sends_the_model_to_both_nodes_once(nodes: Nodes, model_folders: Any, tmp_path: Path) -> None:
    mine = tmp_path / "pc-models"
    mine.mkdir()
    shutil.copy(model_folders.good / MODEL, mine / MODEL)
    _inputs(tmp_path / "in")
    a, b = nodes.start("box-a"), nodes.start("box-b")
    first = _run(tmp_path, mine, tmp_path / "out", a, b)
    assert first.returncode == 0, first.stderr
    assert f"sent model {MODEL} to box-a" in first.stderr and f"sent model {MODEL} to box-b" in first.stderr
    assert len(list((tmp_path / "out").iterdir())) == IMAGES and _widths(tmp_path / "out") == {W * 4}
    for name in ("box-a", "box-b"):
        assert (nodes.models(name) / MODEL).read_bytes() == (mine / MODEL).read_bytes()
    done_a, done_b = _done(a), _done(b)
    assert done_a > 0 and done_b > 0 and done_a + done_b == IMAGES  # both nodes did jobs
    second = _run(tmp_path, mine, tmp_path / "out2", a, b)
    assert second.returncode == 0, second.stderr
    assert "sent model" not in second.stderr  # the second run sends nothing
    assert _done(a) + _done(b) == 2 * IMAGES


def test_same_name_other_content_never_runs_the_jobs(nodes: Nodes, model_folders: Any, tmp_path: Path) -> None:
    mine = tmp_path / "pc-models"
    mine.mkdir()
    shutil.copy(model_folders.good / MODEL, mine / MODEL)
    shutil.copy(model_folders.good / "esrgan-x2.pth", nodes.models("box-b") / MODEL)  # a 2x upscaler, same name
    _inputs(tmp_path / "in")
    a, b = nodes.start("box-a"), nodes.start("box-b")
    result = _run(tmp_path, mine, tmp_path / "out", a, b)
    assert result.returncode == 0, result.stderr
    assert f"sent model {MODEL} to box-a" in result.stderr
    assert "box-b did not take model" in result.stderr and "different model named" in result.stderr
    assert _widths(tmp_path / "out") == {W * 4}  # all made by this PC's model, none by box-b's
    assert _done(b) == 0 and _done(a) == IMAGES


def test_a_push_survives_its_node_killed_and_restarted(nodes: Nodes, model_folders: Any) -> None:
    url = nodes.start("box-k")
    port = int(url.rsplit(":", 1)[1])
    pkg = package(model_folders.good / "lama.pth")  # 200 MB in 16 MiB chunks: more than the sockets buffer
    restarted = threading.Event()

    def kill_and_restart() -> None:
        nodes.kill("box-k")  # SIGKILL: no clean shutdown, the chunk log is all it keeps
        nodes.start("box-k", port)

    def on_chunk(_file: int, index: int) -> None:
        if index == 4 and not restarted.is_set():
            restarted.set()
            threading.Timer(0.02, kill_and_restart).start()  # while the next chunk is on its way

    async def main() -> Any:
        async with aiohttp.ClientSession() as session:
            client = NodeClient(session, url, TOKEN)
            result = await push_model(client, pkg, on_chunk=on_chunk, retry_for=90)
            data = pkg.files[0].path.read_bytes()[: 64 << 10]
            corrupt = bytes([data[0] ^ 1]) + data[1:]
            other = await client.call("POST", "/v1/models/uploads", json=package_for_bytes(corrupt, "c.pth"))
            with pytest.raises(NodeRejected) as refused:
                await client.call("PUT", f"/v1/models/uploads/{other['id']}/0/0/{_sha(data)}", data=corrupt)
            return result, refused.value

    result, refused = asyncio.run(main())
    assert restarted.is_set() and result.restarts >= 1
    # the node kept what it had written of the chunk under way: sent again is only what was still in the
    # sockets' and TLS buffers and the node's unwritten piece when it died, under one chunk (16 MiB)
    assert 1 <= result.resent <= 2 < result.chunks and result.sent == result.chunks + result.resent
    assert 0 <= result.bytes_sent - pkg.size < pkg.chunk_size
    assert (nodes.models("box-k") / "lama.pth").read_bytes() == pkg.files[0].path.read_bytes()
    info = asyncio.run(_info(url))
    assert [m["id"] for m in info["models"]] == [pkg.id]
    assert refused.status == 422 and refused.code == "hash_mismatch"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_for_bytes(data: bytes, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "id": _sha(data),
        "chunk_size": 64 << 10,
        "files": [{"path": name, "size": len(data), "sha256": _sha(data)}],
    }


def _cli(*args: str, models: Path, token: Path) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(LANFARM_MODELS_DIR=str(models), COLUMNS="120")
    cmd = [*LANFARM, "models", "push", *args, "--token-file", str(token), "--no-discovery"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, check=False)


def test_models_push_command(nodes: Nodes, model_folders: Any, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    url = nodes.start("box-c").split("://", 1)[1]  # HOST:PORT (TLS, the default)
    good = model_folders.good
    pushed = _cli(MODEL, "--peer", url, models=good, token=token)  # a name in the models folder
    assert pushed.returncode == 0, pushed.stderr
    assert f"{url}: {MODEL} installed (id {package(good / MODEL).id[:12]}" in pushed.stdout
    assert f"{MODEL} -> {url}" in pushed.stdout  # its progress bar
    again = _cli(str(good / MODEL), "--node", "box-c", "--peer", url, models=tmp_path, token=token)  # by path, by name
    assert again.returncode == 0, again.stderr
    assert f"box-c: already has {MODEL}" in again.stdout
    refused = _cli(str(model_folders.bad / "random.pth"), "--peer", url, models=good, token=token)
    assert refused.returncode == 1
    assert "refused by" in refused.stderr and "random.pth failed the load check" in refused.stderr
    missing = _cli(MODEL, "--node", "nope", "--peer", url, models=good, token=token)
    assert missing.returncode == 1 and "no node named 'nope' answered" in missing.stderr
    assert sorted(p.name for p in nodes.models("box-c").iterdir() if not p.name.startswith(".")) == [MODEL]
