"""Shared helpers for the node tests: small images, OpenAPI validation, job bodies."""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import select
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import cv2
import jsonschema
import numpy as np
import yaml

from farm.core import signing
from farm.runtime.client import connector, signed_by

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "node" / "openapi.yaml"
TOKEN = "test-farm-token-0123456789abcdef"


def auth_header(method: str, path: str, body: bytes | str = b"", token: str = TOKEN) -> str:
    """A signed ``Authorization`` value (protocol 2) for one request; ``body`` may be a blob's sha."""
    digest = body if isinstance(body, str) else signing.body_digest(body)  # a str: a blob's name
    return signing.authorization(token, method, path, digest, now=time.time(), nonce=secrets.token_hex(16))


SIGNED = signed_by(TOKEN)  # ClientSession(..., middlewares=SIGNED): every request signed as the farm does


def unverified() -> aiohttp.TCPConnector:
    """``ClientSession(connector=unverified())``: takes a node's self-signed certificate unchecked, for
    tests of its API (the farm pins it instead: tests/farm/runtime/test_trust.py)."""
    return connector(ssl=False)  # the farm's connector: TLS connections closed mid-request closed for good


def unverified_context() -> ssl.SSLContext:
    """For ``urllib.request.urlopen(..., context=...)`` to a node's self-signed https (certificate unchecked)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def raw_connection(url: str, timeout: float = 5.0) -> socket.socket:
    """A socket to the node at ``url`` for hand-written HTTP: TLS-wrapped (certificate unchecked) for https."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    if parts.scheme != "https":
        return sock
    return unverified_context().wrap_socket(sock)


def png(width: int = 64, height: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    ok, buf = cv2.imencode(".png", rng.integers(0, 255, (height, width, 3), dtype=np.uint8))
    assert ok
    return buf.tobytes()


def mask_png(width: int = 64, height: int = 64) -> bytes:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : height // 2, width // 4 : width // 2] = 255
    ok, buf = cv2.imencode(".png", mask)
    assert ok
    return buf.tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def spec(engine: str = "sim", **params: Any) -> dict[str, Any]:
    return {"schema": 1, "op": "inpaint", "engine": engine, "params": params}


def job_body(
    job_id: str,
    image: bytes,
    mask: bytes | None,
    *,
    engine: str = "sim",
    client: str = "c1",
    priority: int = 0,
    **params: Any,
) -> dict[str, Any]:
    return {
        "id": job_id,
        "spec": spec(engine, **params),
        "image": sha(image),
        "mask": sha(mask) if mask is not None else None,
        "client": client,
        "priority": priority,
    }


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


def start_node(
    home: Path, *args: str, env: dict[str, str] | None = None, verbose: bool = False, timeout: float = 20.0
) -> tuple[subprocess.Popen[bytes], str]:
    """Start ``lanfarm node ARGS`` and wait for its ``listening on`` line; return it and its base URL."""
    cmd = [*NODE_CMD[:-1], "-v", NODE_CMD[-1]] if verbose else NODE_CMD
    proc = subprocess.Popen([*cmd, *args], env=env or node_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            if line.startswith(b"lanfarm node listening on ") or not line:
                break
        if proc.poll() is not None:
            break
    if not line.startswith(b"lanfarm node listening on "):
        stop_node(proc)
        raise AssertionError(f"node did not start: {line!r}")
    return proc, line.decode().strip().rsplit(" ", 1)[1]


def stop_node(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> tuple[int, str]:
    """SIGTERM the node and wait; return its exit code and stderr."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate()
    return proc.returncode, err.decode(errors="replace")
