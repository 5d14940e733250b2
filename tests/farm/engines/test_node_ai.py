"""A real ``lanfarm node`` on 127.0.0.1 with AI models: it offers them, and their jobs run through it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest

from farm.cli import main
from tests.conftest import box_mask, png_bytes, scene
from tests.node.helpers import SIGNED, TOKEN, node_env, sha, start_node, stop_node, unverified

IMG, MASK = scene(64, 48, seed=21), box_mask(64, 48, (16, 12, 40, 30))
IMG_PNG, MASK_PNG = png_bytes(IMG), png_bytes(MASK)


@pytest.fixture(scope="module")
def ai_node(model_folders, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    home = tmp_path_factory.mktemp("ai-node-home")
    proc, url = start_node(
        home,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-advertise",
        "--slots",
        "1",
        "--models-dir",
        str(model_folders.good),
        env=node_env(home, LANFARM_DEVICE="cpu"),
        timeout=60,
    )
    yield url
    code, err = stop_node(proc, timeout=60)
    assert code == 0, err


@pytest.fixture
async def http(ai_node: str) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(ai_node, connector=unverified(), middlewares=SIGNED) as session:
        yield session


async def run_job(http: aiohttp.ClientSession, job_id: str, spec: dict[str, Any], mask: bool) -> bytes:
    for data in (IMG_PNG, MASK_PNG):
        async with http.put(f"/v1/blobs/{sha(data)}", data=data) as resp:
            assert resp.status in (200, 201)
    body = {
        "id": job_id,
        "spec": {"schema": 1, **spec},
        "image": sha(IMG_PNG),
        "mask": sha(MASK_PNG) if mask else None,
        "client": "c1",
        "priority": 0,
    }
    async with http.post("/v1/jobs", json=body) as resp:
        assert resp.status == 202, await resp.text()
    deadline = time.monotonic() + 90
    while True:
        async with http.get(f"/v1/jobs/{job_id}") as resp:
            job = await resp.json()
        if job["state"] in ("done", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.1)
    assert job["state"] == "done", job
    async with http.get(f"/v1/jobs/{job_id}/result") as resp:
        assert resp.status == 200
        return await resp.read()


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


async def test_node_offers_its_ai_engines_and_models(http: aiohttp.ClientSession) -> None:
    async with http.get("/v1/info") as resp:
        info = await resp.json()
    engines = {e["id"]: e for e in info["engines"]}
    assert engines["lama"]["available"] and "lama.safetensors" in engines["lama"]["models"]
    assert engines["upscale"]["models"] == ["compact-x4.safetensors", "esrgan-x2.pth"]
    assert engines["sd-inpaint"]["models"] == ["sd-tiny"]
    assert engines["lama"]["memory_mb"] > 190 and engines["sd-inpaint"]["params"][0]["multiline"]


async def test_ai_jobs_run_on_the_node(http: aiohttp.ClientSession) -> None:
    out = decode(
        await run_job(http, "ai-lama-01", {"op": "inpaint", "engine": "lama", "model": "lama.safetensors"}, mask=True)
    )
    assert out.shape == IMG.shape and np.array_equal(out[MASK == 0], IMG[MASK == 0])
    up = decode(
        await run_job(
            http, "ai-upscale-1", {"op": "upscale", "engine": "upscale", "model": "esrgan-x2.pth"}, mask=False
        )
    )
    assert up.shape == (96, 128, 3)
    sd = decode(
        await run_job(
            http, "ai-sdinp-1", {"op": "inpaint", "engine": "sd-inpaint", "params": {"steps": 2, "seed": 5}}, mask=True
        )
    )
    assert np.array_equal(sd[MASK == 0], IMG[MASK == 0])


def test_node_advert_lists_only_engines_with_models(model_folders, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.installed import default_registry
    from farm.local.hardware import Hardware
    from node.advertiser import node_advert
    from node.app import create_app
    from node.config import NodeConfig

    def advert_engines(models: Path) -> tuple[str, ...]:
        app = create_app(
            NodeConfig(advertise=False, models_dir=models),
            registry=default_registry(models),
            token=TOKEN,
            node_id="ainode0001",
            hardware=Hardware(cpu="Test CPU", cpu_count=2, ram_total=1 << 33),
        )
        return node_advert(app).engines

    assert advert_engines(model_folders.good) == ("cv2", "lama", "upscale", "sd-inpaint")
    assert advert_engines(tmp_path / "no-models") == ("cv2",)


def test_lanfarm_run_sends_a_lama_job_to_the_node(ai_node: str, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in"
    src.mkdir()
    (src / "photo.png").write_bytes(IMG_PNG)
    (src / "photo_mask.png").write_bytes(MASK_PNG)
    token = tmp_path / "token"
    token.write_text(TOKEN)
    code = main(
        [
            "run",
            str(src / "photo.png"),
            "--out",
            str(tmp_path / "out"),
            "--engine",
            "lama",
            "--model",
            "lama.pth",
            "--peer",
            ai_node,
            "--no-local",
            "--token-file",
            str(token),
        ]
    )
    assert code == 0, capsys.readouterr()
    out = cv2.imread(str(tmp_path / "out" / "photo.png"))
    assert np.array_equal(out[MASK == 0], IMG[MASK == 0]) and not np.array_equal(out, IMG)
