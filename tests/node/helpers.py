"""Shared helpers for the node tests: small images, OpenAPI validation, job bodies."""

from __future__ import annotations

import functools
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import jsonschema
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "node" / "openapi.yaml"
TOKEN = "test-farm-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def png(width: int = 64, height: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".png", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def mask_png(width: int = 64, height: int = 64) -> bytes:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4: height // 2, width // 4: width // 2] = 255
    ok, buf = cv2.imencode(".png", mask)
    assert ok
    return buf.tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec(engine: str = "sim", **params: Any) -> dict[str, Any]:
    return {"schema": 1, "op": "inpaint", "engine": engine, "params": params}


def job_body(job_id: str, image: bytes, mask: bytes | None, *, engine: str = "sim", client: str = "c1",
             priority: int = 0, **params: Any) -> dict[str, Any]:
    return {"id": job_id, "spec": spec(engine, **params), "image": sha(image),
            "mask": sha(mask) if mask is not None else None, "client": client, "priority": priority}


@functools.cache
def _openapi() -> dict[str, Any]:
    return yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))


def check_schema(name: str, instance: Any) -> None:
    """Validate ``instance`` against ``#/components/schemas/<name>`` of node/openapi.yaml."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": _openapi()["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def node_env(home: Path, **extra: str) -> dict[str, str]:
    """Environment for a ``lanfarm node`` subprocess importing this tree, with its own LANFARM_HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANFARM_")}
    env.update(PYTHONPATH=str(REPO), LANFARM_HOME=str(home), LANFARM_TOKEN=TOKEN, **extra)
    return env


NODE_CMD = [sys.executable, "-m", "farm.cli", "node"]
