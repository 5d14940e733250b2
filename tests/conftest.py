"""Shared fixtures: generated images and masks, an isolated LANFARM_HOME, a check for leaked threads."""

from __future__ import annotations

import os
import struct
import sys
import threading
import time
import traceback
import weakref
import zlib
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFTEST = Path(__file__).resolve()

# --- every test ends the threads it starts -------------------------------------------------------

THREAD_GRACE_S = 2.0  # how long a test's threads may take to finish after it (an executor's shutdown)
# Threads a test may leave running, by exact name, each with the reason. Empty: no test needs one.
ALLOWED_THREADS: dict[str, str] = {}
_started_at: weakref.WeakKeyDictionary[threading.Thread, traceback.StackSummary] = weakref.WeakKeyDictionary()
_thread_start = threading.Thread.start
_OUR_FOLDERS = {"farm", "node", "gui", "tests"}


def _recording_start(self: threading.Thread) -> None:
    """Thread.start, remembering where it was called from (for the leak report)."""
    _started_at[self] = traceback.extract_stack(sys._getframe(1), limit=40)
    _thread_start(self)


def _running(thread: threading.Thread) -> bool:
    """Whether ``thread`` still runs. A thread that Python did not start (a QThread of qasync's
    executor, a C library's) shows up as a _DummyThread once it runs Python code and, on Python 3.11,
    stays listed as alive after it has ended; on Linux its OS thread says whether it really runs."""
    if not thread.is_alive():
        return False
    if isinstance(thread, threading._DummyThread) and sys.platform.startswith("linux"):
        return os.path.exists(f"/proc/self/task/{thread.native_id}")
    return True


def leaked_threads(before: set[threading.Thread], grace: float) -> list[threading.Thread]:
    """Threads running now that were not in ``before`` (nor allowed), once ``grace`` seconds have let
    finishing ones end; returns as soon as there are none."""
    deadline = time.monotonic() + grace
    while True:
        leaked = [t for t in threading.enumerate() if t not in before and t.name not in ALLOWED_THREADS and _running(t)]
        if not leaked or time.monotonic() >= deadline:
            return leaked
        time.sleep(0.05)


def describe_thread(thread: threading.Thread) -> str:
    """Name, target and where it was started: the frames in farm/, node/, gui/ and tests/."""
    target = getattr(thread, "_target", None)
    what = getattr(target, "__qualname__", None) or type(thread).__qualname__
    line = f"{thread.name!r} ({what}{', daemon' if thread.daemon else ''})"
    stack = _started_at.get(thread)
    if stack is None:
        return line + ", not started by Python's threading (a Qt or C library thread that ran Python code)"

    def ours(frame: traceback.FrameSummary) -> bool:
        path = Path(frame.filename).resolve()
        return path.is_relative_to(REPO) and path.relative_to(REPO).parts[0] in _OUR_FOLDERS and path != CONFTEST

    frames = [f for f in stack if ours(f)][-6:] or list(stack)[-3:]
    at = "\n".join(
        f"      {Path(f.filename).resolve().relative_to(REPO) if ours(f) else f.filename}:{f.lineno} "
        f"in {f.name}: {f.line}"
        for f in frames
    )
    return f"{line}, started at:\n{at}"


def threads_ended() -> Iterator[None]:
    """The body of :func:`verify_threads_ended`, as a plain generator (tests drive it to see it fail)."""
    before = set(threading.enumerate())
    previous, threading.Thread.start = threading.Thread.start, _recording_start  # type: ignore[method-assign]
    try:
        yield
        leaked = leaked_threads(before, THREAD_GRACE_S)
        if leaked:
            listed = "\n".join(f"  {describe_thread(t)}" for t in leaked)
            pytest.fail(
                f"the test left {len(leaked)} thread(s) running {THREAD_GRACE_S:g} s after it ended:\n{listed}",
                pytrace=False,
            )
    finally:
        threading.Thread.start = previous  # type: ignore[method-assign]


# python-zeroconf's fixture of this name, with a grace period for threads that are finishing. First of
# the autouse fixtures, so that it is torn down last, after every other fixture of the test stopped
# what it started. Threads that ran before the test (session and module fixtures') are not its own.
verify_threads_ended = pytest.fixture(autouse=True, name="verify_threads_ended")(threads_ended)


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
