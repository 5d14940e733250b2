"""A private X display (Xvfb) and input on it (xdotool) for the NIMBY tests; skipped where either is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


@contextmanager
def xvfb() -> Iterator[str]:
    """Start Xvfb on a free display (``-displayfd``); yield ``:N``; stop it after."""
    if not shutil.which("Xvfb") or not shutil.which("xdotool"):
        pytest.skip("needs Xvfb and xdotool (apt-get install xvfb xdotool libxss1)")
    read, write = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "640x480x24", "-nolisten", "tcp"],
        pass_fds=(write,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()
        if not number:
            pytest.fail("Xvfb did not start")
        yield f":{number}"
    finally:
        proc.terminate()
        proc.wait(10)


def touch(display: str) -> None:
    """Input on ``display``, as a person would: move the mouse a little."""
    env = {**os.environ, "DISPLAY": display}
    subprocess.run(["xdotool", "mousemove_relative", "--", "5", "5"], env=env, check=True, timeout=10)
