"""Shared fixtures: generated images and masks, an isolated LANFARM_HOME."""

from __future__ import annotations

import os
import struct
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def lanfarm_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config/data/cache folders, never the user's."""
    home = tmp_path_factory.mktemp("lanfarm-home")
    monkeypatch.setenv("LANFARM_HOME", str(home))
    monkeypatch.delenv("LANFARM_TOKEN", raising=False)
    # Network rule: no test may start mDNS on this machine's real interfaces. Commands that discover
    # by default (lanfarm run, nodes, app) are switched off here; the lab's hosts turn it back on.
    monkeypatch.setenv("LANFARM_DISCOVERY", "off")
    return home


def scene(width: int = 160, height: int = 120, seed: int = 0) -> np.ndarray:
    """A textured BGR test image."""
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return cv2.GaussianBlur(img, (0, 0), 2.0)


def box_mask(width: int = 160, height: int = 120, box: tuple[int, int, int, int] = (40, 30, 80, 70)) -> np.ndarray:
    mask = np.zeros((height, width), np.uint8)
    x0, y0, x1, y1 = box
    mask[y0:y1, x0:x1] = 255
    return mask


def png_bytes(arr: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", arr)
    assert ok
    return buf.tobytes()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height but carries one tiny IDAT (a decompression bomb probe)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
    )


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for `python -m farm.cli` subprocesses that import this checkout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra)
    return env


LANFARM = [sys.executable, "-m", "farm.cli"]
