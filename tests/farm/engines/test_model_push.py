"""Model identity and pushes against a real node app on 127.0.0.1 (aiohttp test server, real HTTP),
with random-weight models of the real architectures: ids in /v1/info, chunked pushes, the load check,
every bad input refused by name, and nothing half-written ever listed as a model."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from farm.engines import catalogue
from farm.engines.installed import default_registry
from farm.engines.model_ids import ModelIds, manifest_id
from farm.runtime.client import NodeClient, NodeRejected, NodeUnavailable
from farm.runtime.model_push import PushError, package, push_model
from node.app import create_app
from node.config import NodeConfig
from node.model_staging import STALE_SECONDS
from tests.node.conftest import FAKE_HW
from tests.node.helpers import TOKEN, check_schema, png

CHUNK = 64 << 10  # small chunks, so that test models go in several


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("LANFARM_TOKEN", "LANFARM_MODELS_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("LANFARM_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


class Node:
    """A node app served on 127.0.0.1 with its own models folder; ``restart`` keeps the folder."""

    def __init__(self, models: Path, **settings: Any) -> None:
        self.models = models
        self.settings = settings
        self.server: TestServer | None = None
        self.session: aiohttp.ClientSession | None = None
        self.port = 0

    def app(self) -> web.Application:
        config = NodeConfig(advertise=False, slots=1, models_dir=self.models, device="cpu", **self.settings)
        registry = default_registry(self.models, device="cpu")
        return create_app(config, registry=registry, token=TOKEN, node_id="pushnode0001", hardware=FAKE_HW)

    async def start(self) -> NodeClient:
        self.server = TestServer(self.app(), host="127.0.0.1", port=self.port)
        await self.server.start_server()
        self.port = self.server.port or 0
        self.session = self.session or aiohttp.ClientSession()
        return NodeClient(self.session, str(self.server.make_url("")), TOKEN)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    async def close(self) -> None:
        await self.stop()
        if self.session is not None:
            await self.session.close()


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    nodes: list[Node] = []

    async def make(models: Path | None = None, **settings: Any) -> tuple[Node, NodeClient]:
        folder = models or tmp_path / f"node-models-{len(nodes)}"
        folder.mkdir(parents=True, exist_ok=True)
        n = Node(folder, **settings)
        nodes.append(n)
        return n, await n.start()

    yield make
    for n in nodes:
        await n.close()


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# --- identity -------------------------------------------------------------------------------------


def test_folder_id_is_the_manifest_of_its_files(model_folders: Any) -> None:
    folder = model_folders.good / "sd-tiny"
    files = [(p.relative_to(folder).as_posix(), catalogue.sha256_of(p)) for p in folder.rglob("*") if p.is_file()]
    assert manifest_id(files) == catalogue.sha256_of(folder) == package(folder).id


async def test_info_lists_models_with_ids_and_hashes_once(
    node: Any, model_folders: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "own"
    shutil.copytree(model_folders.good, models)
    _n, client = await node(models)
    info = await client.call("GET", "/v1/info")
    for entry in info["models"]:
        check_schema("Model", entry)
    by_name = {m["name"]: m for m in info["models"]}
    assert set(by_name) >= {"compact-x4.safetensors", "esrgan-x2.pth", "lama.pth", "sd-tiny"}  # the folder too
    assert by_name["sd-tiny"]["kind"] == "sd-inpaint" and by_name["sd-tiny"]["architecture"] == "SD 1.x inpaint"
    assert by_name["sd-tiny"]["id"] == catalogue.sha256_of(models / "sd-tiny")
    assert by_name["esrgan-x2.pth"]["id"] == hashlib.sha256((models / "esrgan-x2.pth").read_bytes()).hexdigest()
    assert by_name["esrgan-x2.pth"]["size"] == (models / "esrgan-x2.pth").stat().st_size
    hashed: list[Path] = []
    real = catalogue.sha256_of
    monkeypatch.setattr(catalogue, "sha256_of", lambda p: hashed.append(p) or real(p))
    await client.call("GET", "/v1/info")
    assert hashed == []  # cached by (path, size, mtime)
    os.utime(models / "esrgan-x2.pth", ns=(1, 1))
    again = await client.call("GET", "/v1/info")
    assert hashed == [(models / "esrgan-x2.pth").resolve()] or hashed == [models / "esrgan-x2.pth"]
    assert {m["name"]: m["id"] for m in again["models"]} == {m["name"]: m["id"] for m in info["models"]}


# --- pushes ---------------------------------------------------------------------------------------


async def test_push_installs_after_the_load_check_and_jobs_run_on_it(node: Any, model_folders: Any) -> None:
    n, client = await node()
    source = model_folders.good / "compact-x4.safetensors"
    pkg = package(source)
    seen: list[tuple[int, int]] = []
    result = await push_model(client, pkg, chunk_size=CHUNK, progress=lambda have, total: seen.append((have, total)))
    assert not result.already and result.chunks == result.sent > 1 and result.resent == 0
    assert seen[-1] == (pkg.size, pkg.size) and [h for h, _ in seen] == sorted(h for h, _ in seen)
    assert (n.models / source.name).read_bytes() == source.read_bytes()
    assert visible(n.models) == [source.name]
    info = await client.call("GET", "/v1/info")
    [entry] = info["models"]
    assert entry["id"] == pkg.id and entry["architecture"] == "RealESRGAN Compact" and entry["scale"] == 4
    engines = {e["id"]: e for e in info["engines"]}
    assert engines["upscale"]["available"] and engines["upscale"]["models"] == [source.name]  # offered at once
    # a job naming it by id runs on it
    image = png(32, 24, seed=3)
    await client.put_blob(image)
    from farm.core.spec import EditSpec

    spec = EditSpec(op="upscale", engine="upscale", model=source.name, model_id=pkg.id)
    await client.submit("pushjob00001", spec, hashlib.sha256(image).hexdigest(), None, client="c1")
    for _ in range(600):
        job = await client.job("pushjob00001")
        if job["state"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    assert job["state"] == "done", job
    again = await push_model(client, pkg, chunk_size=CHUNK)
    assert again.already and again.sent == 0  # the second push sends nothing


async def test_push_of_a_diffusers_folder(node: Any, model_folders: Any) -> None:
    n, client = await node()
    pkg = package(model_folders.good / "sd-tiny")
    assert len(pkg.files) > 5
    result = await push_model(client, pkg, chunk_size=CHUNK)
    assert not result.already
    assert catalogue.sha256_of(n.models / "sd-tiny") == pkg.id
    info = await client.call("GET", "/v1/info")
    assert [(m["name"], m["id"]) for m in info["models"]] == [("sd-tiny", pkg.id)]


async def test_a_corrupted_chunk_is_refused_and_asked_for_again(node: Any, model_folders: Any) -> None:
    n, client = await node()
    pkg = package(model_folders.good / "esrgan-x2.pth")
    state = await client.call("POST", "/v1/models/uploads", json=pkg.manifest(CHUNK))
    check_schema("UploadState", state)
    data = pkg.files[0].path.read_bytes()[:CHUNK]
    good = hashlib.sha256(data).hexdigest()
    broken = bytes([data[0] ^ 0xFF]) + data[1:]
    with pytest.raises(NodeRejected) as refused:
        await client.call("PUT", f"/v1/models/uploads/{pkg.id}/0/0/{good}", data=broken)
    assert refused.value.status == 422 and refused.value.code == "hash_mismatch"
    assert "chunk 0/0" in str(refused.value)
    with pytest.raises(NodeRejected) as short:
        await client.call("PUT", f"/v1/models/uploads/{pkg.id}/0/0/{good}", data=data[:-10])
    assert short.value.status == 422 and "0/0" in str(short.value)
    with pytest.raises(NodeRejected) as early:
        await client.call("POST", f"/v1/models/uploads/{pkg.id}/finish")
    assert early.value.status == 409 and early.value.code == "incomplete"
    state = await client.call("GET", f"/v1/models/uploads/{pkg.id}")
    assert [0, 0] in state["missing"]  # nothing of the bad chunk was recorded
    assert visible(n.models) == []
    result = await push_model(client, pkg, chunk_size=CHUNK)  # the push completes it
    assert (n.models / "esrgan-x2.pth").read_bytes() == pkg.files[0].path.read_bytes() and result.model


async def test_a_wrong_whole_file_hash_installs_nothing(node: Any, model_folders: Any, tmp_path: Path) -> None:
    n, client = await node()
    real = package(model_folders.good / "esrgan-x2.pth")
    lie = "0" * 64  # the announced file hash (and so the id) is not what the bytes make
    manifest = {**real.manifest(CHUNK), "id": lie, "files": [{**real.manifest(CHUNK)["files"][0], "sha256": lie}]}  # type: ignore[dict-item]
    await client.call("POST", "/v1/models/uploads", json=manifest)
    data = real.files[0].path.read_bytes()
    for i in range(0, len(data), CHUNK):
        piece = data[i : i + CHUNK]
        await client.call(
            "PUT", f"/v1/models/uploads/{lie}/0/{i // CHUNK}/{hashlib.sha256(piece).hexdigest()}", data=piece
        )
    with pytest.raises(NodeRejected) as refused:
        await client.call("POST", f"/v1/models/uploads/{lie}/finish")
    assert refused.value.code == "hash_mismatch" and "esrgan-x2.pth" in str(refused.value)
    assert visible(n.models) == [] and not (n.models / ".incoming" / lie).exists()


async def test_not_a_model_is_refused_by_name(node: Any, model_folders: Any, tmp_path: Path) -> None:
    n, client = await node()
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    sha = hashlib.sha256(notes.read_bytes()).hexdigest()
    body = {
        "name": "notes.txt",
        "id": sha,
        "chunk_size": CHUNK,
        "files": [{"path": "notes.txt", "size": 11, "sha256": sha}],
    }
    with pytest.raises(NodeRejected) as refused:
        await client.call("POST", "/v1/models/uploads", json=body)
    assert refused.value.code == "not_a_model" and "notes.txt is not a model file" in str(refused.value)
    with pytest.raises(PushError) as failed:  # a .pth that is no architecture LAN Farm knows: fails the load check
        await push_model(client, package_unchecked(model_folders.bad / "random.pth"), chunk_size=CHUNK)
    assert failed.value.code == "not_a_model" and "random.pth failed the load check" in str(failed.value)
    assert visible(n.models) == [] and list((n.models / ".incoming").iterdir()) == []
    info = await client.call("GET", "/v1/info")
    assert info["models"] == []


def package_unchecked(path: Path) -> Any:
    """A package of a file whatever it holds (the sender's own classify would refuse some)."""
    from farm.runtime.model_push import ModelPackage, PushFile

    sha = catalogue.sha256_of(path)
    return ModelPackage(path.name, sha, "upscale", (PushFile(path.name, path, path.stat().st_size, sha),))


async def test_full_disk_and_budget_are_refused_by_name(node: Any, model_folders: Any) -> None:
    n, client = await node()
    huge = {
        "name": "huge.safetensors",
        "id": "a" * 64,
        "files": [{"path": "huge.safetensors", "size": 1 << 60, "sha256": "a" * 64}],
    }
    with pytest.raises(NodeRejected) as full:
        await client.call("POST", "/v1/models/uploads", json=huge)
    assert full.value.status == 507 and full.value.code == "disk_full" and "free" in str(full.value)
    _n2, small = await node(models_budget_mb=0.01)
    with pytest.raises(PushError) as over:
        await push_model(small, package(model_folders.good / "compact-x4.safetensors"), chunk_size=CHUNK)
    assert over.value.code == "over_budget" and "model budget" in str(over.value)
    assert visible(n.models) == [] and not (n.models / ".incoming").exists()


async def test_same_name_other_content_is_refused(node: Any, model_folders: Any, tmp_path: Path) -> None:
    models = tmp_path / "has-other"
    models.mkdir()
    shutil.copy(model_folders.good / "esrgan-x2.pth", models / "compact-x4.safetensors")  # other bytes, same name
    _n, client = await node(models)
    with pytest.raises(PushError) as taken:
        await push_model(client, package(model_folders.good / "compact-x4.safetensors"), chunk_size=CHUNK)
    assert taken.value.code == "name_taken" and "different model named compact-x4.safetensors" in str(taken.value)


async def test_jobs_name_the_model_by_id(node: Any, model_folders: Any, tmp_path: Path) -> None:
    """A node whose file of that name is other content refuses the job; one holding the id under another
    name runs it on that file."""
    from farm.core.spec import EditSpec

    models = tmp_path / "mixed"
    models.mkdir()
    shutil.copy(model_folders.good / "esrgan-x2.pth", models / "compact-x4.safetensors")  # the wrong content
    shutil.copy(model_folders.good / "compact-x4.safetensors", models / "renamed.safetensors")
    _n, client = await node(models)
    image = png(16, 16, seed=1)
    await client.put_blob(image)
    right = package(model_folders.good / "compact-x4.safetensors").id
    other = package(model_folders.good / "sd-tiny").id
    spec = EditSpec(op="upscale", engine="upscale", model="compact-x4.safetensors", model_id=other)
    with pytest.raises(NodeRejected) as refused:
        await client.submit("idjob0000001", spec, hashlib.sha256(image).hexdigest(), None, client="c1")
    assert refused.value.code == "model_missing" and "is other content" in str(refused.value)
    spec = EditSpec(op="upscale", engine="upscale", model="compact-x4.safetensors", model_id=right)
    job = await client.submit("idjob0000002", spec, hashlib.sha256(image).hexdigest(), None, client="c1")
    assert job["state"] in ("queued", "running", "done")


async def test_an_upload_resumes_after_a_restart(node: Any, model_folders: Any) -> None:
    n, client = await node()
    pkg = package(model_folders.good / "esrgan-x2.pth", chunk_size=CHUNK)
    state = await client.call("POST", "/v1/models/uploads", json=pkg.manifest())
    data = pkg.files[0].path.read_bytes()
    for i in range(3):  # three chunks arrive, then the node goes down
        piece = data[i * CHUNK : (i + 1) * CHUNK]
        await client.call("PUT", f"/v1/models/uploads/{pkg.id}/0/{i}/{hashlib.sha256(piece).hexdigest()}", data=piece)
    await n.stop()
    client = await n.start()  # a new app on the same folder: it knows nothing but the disk
    state = await client.call("GET", f"/v1/models/uploads/{pkg.id}")
    assert state["missing"] == [[0, i] for i in range(3, state["chunks"])]
    assert visible(n.models) == []  # nothing half-written is a model
    result = await push_model(client, pkg)
    assert result.sent == state["chunks"] - 3 and result.resent == 0  # only what was missing
    assert (n.models / pkg.name).read_bytes() == data


async def test_a_cut_push_resumes_where_it_stopped(node: Any, model_folders: Any) -> None:
    n, client = await node()
    pkg = package(model_folders.good / "esrgan-x2.pth", chunk_size=CHUNK)

    class Cut(Exception):
        pass

    def on_chunk(_f: int, i: int) -> None:
        if i == 2:
            raise Cut("the connection is cut after this chunk left")

    with pytest.raises(NodeUnavailable):  # no waiting for the node (retry_for < 0)
        await push_model(client, pkg, on_chunk=on_chunk, retry_for=-1)
    state = await client.call("GET", f"/v1/models/uploads/{pkg.id}")
    kept = state["chunks"] - len(state["missing"])
    assert state["missing"] == [[0, i] for i in range(kept, state["chunks"])] and kept <= 3
    result = await push_model(client, pkg)
    # only the missing ones (the node may still have been storing the cut stream's last chunk when asked)
    assert result.sent <= len(state["missing"]) and result.resent <= 1
    assert (n.models / pkg.name).read_bytes() == pkg.files[0].path.read_bytes()


async def test_pushed_models_are_evicted_for_room_but_never_one_in_use(
    node: Any, model_folders: Any, tmp_path: Path
) -> None:
    models = tmp_path / "budget"
    models.mkdir()
    shutil.copy(model_folders.good / "lama.pth", models / "mine.pth")  # a person's file: never evicted
    first, second = (
        package(model_folders.good / "compact-x4.safetensors"),
        package(model_folders.good / "esrgan-x2.pth"),
    )
    budget_mb = (max(first.size, second.size) + 1024) / (1 << 20)  # room for one pushed model
    n, client = await node(models, models_budget_mb=budget_mb)
    await push_model(client, first, chunk_size=CHUNK)
    library = n.server.app[__import__("node.keys", fromlist=["MODELS"]).MODELS]  # type: ignore[union-attr]
    library.in_use = lambda: {first.name}
    with pytest.raises(PushError) as busy:
        await push_model(client, second, chunk_size=CHUNK)
    assert busy.value.code == "over_budget" and "in use" in str(busy.value)
    library.in_use = set
    await push_model(client, second, chunk_size=CHUNK)
    assert visible(models) == ["esrgan-x2.pth", "mine.pth"]
    pushed = json.loads((models / ".lanfarm-pushed.json").read_text())
    assert set(pushed) == {"esrgan-x2.pth"}


def test_stale_staging_is_cleaned(tmp_path: Path) -> None:
    from node.model_staging import clean_stale

    old = tmp_path / ("b" * 64)
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    os.utime(old, (1, 1))
    os.utime(old / "manifest.json", (1, 1))
    fresh = tmp_path / ("c" * 64)
    fresh.mkdir()
    assert clean_stale(tmp_path, now=1 + STALE_SECONDS + 10) == ["b" * 64]
    assert fresh.exists()


def test_model_ids_cards_skip_unusable(model_folders: Any) -> None:
    cards = ModelIds(model_folders.bad).cards()
    assert {c.name for c in cards} <= {"broken-lama.safetensors", "random.pth"}


def test_every_model_route_is_in_the_openapi_file(tmp_path: Path) -> None:
    import re

    from tests.node.helpers import _openapi

    def shape(path: str) -> str:
        return re.sub(r"\{[^}]+\}", "{}", path)

    documented = {(shape(p), m.upper()) for p, ops in _openapi()["paths"].items() for m in ops if m != "parameters"}
    app = Node(tmp_path / "m").app()
    routes = {(shape(r.resource.canonical), r.method) for r in app.router.routes() if r.resource is not None}
    model_routes = {r for r in routes if r[0].startswith("/v1/models/")}
    assert len(model_routes) == 6 and model_routes <= documented


async def test_a_stream_answer_matches_its_schema(node: Any, model_folders: Any) -> None:
    _n, client = await node()
    pkg = package(model_folders.good / "esrgan-x2.pth", chunk_size=CHUNK)
    await client.call("POST", "/v1/models/uploads", json=pkg.manifest())
    data = pkg.files[0].path.read_bytes()
    answer = await client.call("PUT", f"/v1/models/uploads/{pkg.id}/stream/0/0", data=io.BytesIO(data))
    check_schema("StreamStored", answer)
    assert answer == {"stored": -(-len(data) // CHUNK), "missing": 0}
    bad = bytearray(data)
    bad[CHUNK + 5] ^= 0xFF  # the second chunk corrupted on the way: the first is kept
    _n2, other = await node()
    await other.call("POST", "/v1/models/uploads", json=pkg.manifest())
    with pytest.raises(NodeRejected) as refused:
        await other.call("PUT", f"/v1/models/uploads/{pkg.id}/stream/0/0", data=io.BytesIO(bytes(bad)))
    assert refused.value.code == "hash_mismatch" and "chunk 0/1" in str(refused.value)
    state = await other.call("GET", f"/v1/models/uploads/{pkg.id}")
    assert [0, 0] not in state["missing"] and [0, 1] in state["missing"]


async def test_a_model_its_engine_cannot_use_is_refused(node: Any, tmp_path: Path) -> None:
    """Loadable, but not by its engine (a 1x Compact is no upscaler): the same check as `models add`."""
    from tests.farm.engines import builders

    path = builders.save_safetensors(builders.compact_state_dict(scale=1), tmp_path / "compact-x1.safetensors")
    n, client = await node()
    with pytest.raises(PushError) as refused:
        await push_model(client, package(path))
    assert refused.value.code == "not_a_model" and "not an upscaler" in str(refused.value)
    assert visible(n.models) == []


@pytest.mark.parametrize("mode", ["auto", "ask-yes", "ask-no", "off"])
async def test_the_farm_sends_models_as_set(node: Any, model_folders: Any, tmp_path: Path, mode: str) -> None:
    """Farm(send_models=...): auto sends, ask sends what the callback allows, off never (the jobs then
    end unrunnable); the node that got the model runs them."""
    from farm.core.address import Address
    from farm.core.job import JobState
    from farm.core.spec import EditSpec
    from farm.runtime.farm import Farm, FarmSettings
    from tests.conftest import png_bytes, scene

    mine = tmp_path / "pc-models"
    mine.mkdir()
    shutil.copy(model_folders.good / "compact-x4.safetensors", mine / "compact-x4.safetensors")
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        (inputs / f"i{i}.png").write_bytes(png_bytes(scene(16, 12, seed=i)))
    n, client = await node(name="box-t")
    asked: list[tuple[str, tuple[str, ...]]] = []

    async def ask(question: Any) -> bool:
        asked.append((question.model, question.nodes))
        assert question.size == (mine / "compact-x4.safetensors").stat().st_size and question.jobs == 3
        assert question.seconds > 0 and not question.measured  # nothing sent to it yet: an assumed link rate
        return mode == "ask-yes"

    settings = FarmSettings(
        token=TOKEN,
        use_local=False,
        mdns=False,
        peers=(Address.parse(client.base_url),),  # http://: the in-process node serves plain HTTP
        models_dir=mine,
        send_models="ask" if mode.startswith("ask") else mode,  # type: ignore[arg-type]
        ask_send_models=ask,
        unrunnable_after=1.5,
    )
    async with Farm.open(settings, registry=default_registry(mine, device="cpu")) as farm:
        await farm.wait_for_nodes(10, mdns_grace=0)
        spec = EditSpec(op="upscale", engine="upscale", model="compact-x4.safetensors")
        batch = await farm.submit_paths([inputs], None, spec, tmp_path / "out")
        assert {j.spec.model_id for j in batch.jobs} == {package(mine / "compact-x4.safetensors").id}
        await asyncio.wait_for(farm.wait(), 120)
        states = {j.state for j in batch.jobs}
        sent = [d for d in farm.models.done if d.result is not None]
    if mode in ("auto", "ask-yes"):
        assert states == {JobState.DONE} and len(sent) == 1 and visible(n.models) == ["compact-x4.safetensors"]
    else:
        assert states == {JobState.FAILED} and sent == [] and visible(n.models) == []
    assert asked == ([("compact-x4.safetensors", ("box-t",))] if mode.startswith("ask") else [])  # asked once


async def test_a_node_without_ai_engines_refuses_pushes_by_name(
    node: Any, model_folders: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from farm.engines import installed

    monkeypatch.setattr(installed, "ai_entries", lambda *_a, **_k: [])  # as where the ai extra is missing
    _n, client = await node()
    with pytest.raises(PushError) as refused:
        await push_model(client, package(model_folders.good / "compact-x4.safetensors"))
    assert refused.value.code == "no_engine" and "install the ai extra" in str(refused.value)


@pytest.mark.parametrize("change", ["backoff", "restart"])
async def test_a_node_that_refused_a_model_is_asked_again_once_that_can_have_changed(
    node: Any, model_folders: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """The node refuses the first push (its disk full); nothing changes: it is not asked again. Then the
    backoff passes (a clock passed in) or the node restarts: it is asked again, takes it, runs the jobs."""
    from farm.core.address import Address
    from farm.core.job import JobState
    from farm.core.model_plan import RETRY_FIRST, plan_transfers
    from farm.core.spec import EditSpec
    from farm.runtime import model_sync
    from farm.runtime.farm import Farm, FarmSettings
    from tests.conftest import png_bytes, scene

    mine = tmp_path / "pc-models"
    mine.mkdir()
    shutil.copy(model_folders.good / "compact-x4.safetensors", mine / "compact-x4.safetensors")
    model_id = package(mine / "compact-x4.safetensors").id
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(2):
        (inputs / f"i{i}.png").write_bytes(png_bytes(scene(16, 12, seed=i)))
    n, client = await node(name="box-r")
    real, pushes = model_sync.push_model, []

    async def full_disk_once(*args: Any, **kwargs: Any) -> Any:
        pushes.append(args[1].id)
        if len(pushes) == 1:
            raise PushError("this node's disk is full: compact-x4.safetensors not stored", "disk_full")
        return await real(*args, **kwargs)

    monkeypatch.setattr(model_sync, "push_model", full_disk_once)
    now = [1000.0]
    settings = FarmSettings(
        token=TOKEN,
        use_local=False,
        mdns=False,
        peers=(Address.parse(client.base_url),),
        models_dir=mine,
        unrunnable_after=600,  # the jobs wait for the node rather than end unrunnable
    )
    async with Farm.open(settings, registry=default_registry(mine, device="cpu")) as farm:
        farm.models.clock = lambda: now[0]
        ended = asyncio.Event()
        farm.models.listeners.append(lambda _done: ended.set())
        await farm.wait_for_nodes(10, mdns_grace=0)
        spec = EditSpec(op="upscale", engine="upscale", model="compact-x4.safetensors")
        batch = await farm.submit_paths([inputs], None, spec, tmp_path / "out")
        await asyncio.wait_for(ended.wait(), 60)
        assert [d.error for d in farm.models.done] == ["this node's disk is full: compact-x4.safetensors not stored"]
        # nothing changed: the refusal stands, no transfer is planned
        assert farm.models.candidates()[0].refused == {model_id}
        assert plan_transfers(farm.models.needs(), farm.models.candidates()) == []
        if change == "backoff":
            now[0] += RETRY_FIRST
        else:
            await n.stop()
            now[0] += 30  # the new process starts later than the old one (on the farm's clock)
            await n.start()
        farm.models.wake()
        await asyncio.wait_for(farm.wait(), 120)
        assert {j.state for j in batch.jobs} == {JobState.DONE}
    assert pushes == [model_id, model_id] and visible(n.models) == ["compact-x4.safetensors"]


# --- a chunk cut short resumes at the byte the node kept ------------------------------------------

RESUME_CHUNK = 256 << 10


async def _cut_stream(client: NodeClient, pkg: Any, cut: int, piece: int) -> dict[str, Any]:
    """Stream the file from its start and drop the connection after ``cut`` bytes (mid-chunk), once the
    node has written what it read (all but the last piece it had not written yet); its state then."""
    data = pkg.files[0].path.read_bytes()
    seen: list[dict[str, Any]] = []

    async def body() -> AsyncIterator[bytes]:
        for at in range(0, cut, 16 << 10):
            yield data[at : min(cut, at + (16 << 10))]
        seen.append(await _kept(client, pkg, cut, piece))
        raise ConnectionResetError("the link went down mid-chunk")

    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    with pytest.raises(NodeUnavailable):
        await client.call("PUT", f"/v1/models/uploads/{pkg.id}/stream/0/0", data=body(), headers=headers)
    return seen[0]


async def _kept(client: NodeClient, pkg: Any, cut: int, piece: int) -> dict[str, Any]:
    chunk, within = divmod(cut, RESUME_CHUNK)
    for _ in range(500):
        state = await client.call("GET", f"/v1/models/uploads/{pkg.id}")
        if any(f == 0 and i == chunk and n > within - piece for f, i, n in state["partial"]):
            return state
        await asyncio.sleep(0.02)
    raise AssertionError(f"the node did not keep what it read of chunk {chunk}: {state}")


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> int:
    """The node writes (and keeps) what arrives in 32 KiB pieces, so a 256 KiB chunk has several."""
    import node.model_uploads

    monkeypatch.setattr(node.model_uploads, "WRITE_PIECE", 32 << 10)
    return 32 << 10


async def test_a_chunk_cut_short_resumes_at_the_byte_the_node_kept(
    node: Any, model_folders: Any, small_pieces: int
) -> None:
    n, client = await node()
    pkg = package(model_folders.good / "esrgan-x2.pth", chunk_size=RESUME_CHUNK)
    state = await client.call("POST", "/v1/models/uploads", json=pkg.manifest())
    cut = 2 * RESUME_CHUNK + RESUME_CHUNK // 2 + 5000  # mid-way into chunk 2
    before = await _cut_stream(client, pkg, cut, small_pieces)
    await n.stop()
    client = await n.start()  # a new app on the same folder: it knows only what is on disk
    state = await client.call("GET", f"/v1/models/uploads/{pkg.id}")
    assert state == before
    check_schema("UploadState", state)
    [[file, chunk, kept]] = state["partial"]
    assert (file, chunk) == (0, 2) and cut - 2 * RESUME_CHUNK - small_pieces < kept <= cut - 2 * RESUME_CHUNK
    result = await push_model(client, pkg)
    # only the rest of chunk 2 and what follows went again: the bytes sent twice are under one chunk
    assert result.bytes_sent == pkg.size - 2 * RESUME_CHUNK - kept
    assert cut + result.bytes_sent - pkg.size < RESUME_CHUNK
    assert result.sent == state["chunks"] - 2 and result.model
    assert (n.models / pkg.name).read_bytes() == pkg.files[0].path.read_bytes()


async def test_a_corrupt_rest_of_a_kept_chunk_is_refused_and_the_chunk_sent_whole(
    node: Any, model_folders: Any, small_pieces: int
) -> None:
    n, client = await node()
    pkg = package(model_folders.good / "esrgan-x2.pth", chunk_size=RESUME_CHUNK)
    await client.call("POST", "/v1/models/uploads", json=pkg.manifest())
    state = await _cut_stream(client, pkg, RESUME_CHUNK + RESUME_CHUNK // 2, small_pieces)
    [[_f, _c, kept]] = state["partial"]
    data = bytearray(pkg.files[0].path.read_bytes())
    data[RESUME_CHUNK + kept + 7] ^= 0xFF  # the rest of chunk 1 corrupted on the way
    path = f"/v1/models/uploads/{pkg.id}/stream/0/1"
    with pytest.raises(NodeRejected) as refused:
        await client.call("PUT", f"{path}?offset={kept}", data=io.BytesIO(bytes(data[RESUME_CHUNK + kept :])))
    assert refused.value.code == "hash_mismatch" and "chunk 0/1" in str(refused.value)
    state = await client.call("GET", f"/v1/models/uploads/{pkg.id}")
    assert [0, 1] in state["missing"] and state["partial"] == []  # nothing of it is kept any more
    with pytest.raises(NodeRejected) as beyond:  # the node holds none of chunk 1 now
        await client.call("PUT", f"{path}?offset={kept}", data=io.BytesIO(bytes(data[RESUME_CHUNK + kept :])))
    assert beyond.value.status == 409 and beyond.value.code == "offset_mismatch"
    result = await push_model(client, pkg)
    assert result.bytes_sent == pkg.size - RESUME_CHUNK  # chunk 1 whole, and the rest
    assert (n.models / pkg.name).read_bytes() == pkg.files[0].path.read_bytes()


def test_a_torn_last_line_of_the_partial_log_is_ignored(tmp_path: Path) -> None:
    from node.model_manifest import parse_manifest
    from node.model_staging import PARTIAL, open_staged

    data = os.urandom(3 * CHUNK)
    sha = hashlib.sha256(data).hexdigest()
    chunks = [hashlib.sha256(data[i : i + CHUNK]).hexdigest() for i in range(0, len(data), CHUNK)]
    manifest = parse_manifest(
        {
            "name": "m.pth",
            "id": sha,
            "chunk_size": CHUNK,
            "files": [{"path": "m.pth", "size": len(data), "sha256": sha, "chunks": chunks}],
        }
    )
    staged = open_staged(tmp_path, manifest)
    (staged.folder / PARTIAL).write_text("0 1 4096\n0 1 8192\n0 1 12")  # the process died writing 12288
    assert open_staged(tmp_path, manifest).partial == {(0, 1): 8192}
