"""A real ``lanfarm serve`` app on 127.0.0.1 over a real :class:`farm.Farm`, and images for it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import jsonschema
import numpy as np
import yaml
from aiohttp import web

from farm.api.access import Access
from farm.api.app import ServeConfig, create_app, make_runner
from farm.engines.installed import default_registry
from farm.engines.registry import Registry
from farm.runtime.farm import Farm, FarmSettings
from tests.node.helpers import TOKEN


@dataclass
class Served:
    url: str
    farm: Farm
    app: web.Application
    http: aiohttp.ClientSession


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path,
    settings: FarmSettings | None = None,
    *,
    registry: Registry | None = None,
    access: Access | None = None,
    model: str | None = None,
    max_body: int = 64 << 20,
) -> AsyncIterator[Served]:
    """``lanfarm serve``'s app for the ``async with``: a farm (this PC alone unless ``settings`` say
    otherwise), the app on 127.0.0.1 at a free port, and a client session."""
    settings = settings or FarmSettings(nodes=False, local_slots=2)
    config = ServeConfig(work_dir=tmp_path / "serve", access=access or Access(TOKEN), model=model, max_body=max_body)
    async with Farm.open(settings, registry=registry or default_registry(simulate=True)) as farm:
        app = create_app(farm, config)
        runner = make_runner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            async with aiohttp.ClientSession() as http:
                yield Served(f"http://127.0.0.1:{runner.addresses[0][1]}", farm, app, http)
        finally:
            await runner.cleanup()


def scene(width: int = 1024, height: int = 768, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), (0, 0), 1.5)


def box(width: int = 1024, height: int = 768, rect: tuple[int, int, int, int] = (300, 200, 500, 400)) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = rect
    mask[y0:y1, x0:x1] = 255
    return mask


def encode(arr: np.ndarray, ext: str = ".png") -> bytes:
    ok, buf = cv2.imencode(ext, arr)
    assert ok
    return buf.tobytes()


def decode(data: bytes) -> np.ndarray:
    out = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out is not None, "not an image"
    return out


FARM_API = Path(__file__).resolve().parents[3] / "docs" / "farm-api.yaml"


def check_schema(name: str, instance: Any) -> None:
    """Validate ``instance`` against ``#/components/schemas/<name>`` of docs/farm-api.yaml."""
    doc = yaml.safe_load(FARM_API.read_text(encoding="utf-8"))
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)
