"""Run Python code inside a fresh, private network namespace (``unshare --net``) with multicast on ``lo``.

Nothing in it can reach the real interfaces: the namespace has only its own loopback, and it
disappears with the process. Needs root (CI runs as root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

SETUP = "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo"


def require_netns() -> None:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("network namespaces need root, unshare and ip")


def run_in_netns(code: str, *, env: dict[str, str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a new network namespace whose ``lo`` carries multicast (224.0.0.0/4)."""
    cmd = ["unshare", "--net", "--", "sh", "-c", f'{SETUP} && exec "$0" -c "$1"', sys.executable, code]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
