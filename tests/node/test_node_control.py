"""``lanfarm node pause|resume|status`` against real node processes of this PC (found by their run files)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from farm.local import runfiles
from farm.runtime.client import NodeClient
from tests.node.helpers import NODE_CMD, TOKEN, node_env, start_node, stop_node


def control(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*NODE_CMD, *args], env=node_env(home), capture_output=True, text=True, timeout=30)


def test_pause_status_resume_the_node_of_this_pc(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate", "--name", "desk")
    try:
        status = control(home, "status")
        assert status.returncode == 0, status.stderr
        assert "desk" in status.stdout and "state:  available" in status.stdout and url in status.stdout
        paused = control(home, "pause", "--for", "2h", "--reason", "gaming")
        assert paused.returncode == 0, paused.stderr
        assert paused.stdout.startswith("desk: paused: gaming until ") and "(in 1h 59m)" in paused.stdout
        status = control(home, "status")
        assert status.returncode == 3 and "state:  paused: gaming until" in status.stdout
        resumed = control(home, "resume")
        assert resumed.returncode == 0 and resumed.stdout.strip() == "desk: available"
        bad = control(home, "pause", "--for", "soon")
        assert bad.returncode == 2 and "'soon' is not a duration" in bad.stderr
    finally:
        code, err = stop_node(proc)
    assert code == 0, err
    gone = control(home, "status")
    assert gone.returncode == 1 and "no node runs on this PC" in gone.stderr
    assert not list((home / "data" / runfiles.FOLDER).glob("*.json"))  # its run file went with it


def test_two_nodes_of_one_home_are_picked_by_port(tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ("--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate")
    a, url_a = start_node(home, *args, "--name", "one")
    b, url_b = start_node(home, *args, "--name", "two")
    try:
        both = control(home, "pause")
        assert both.returncode == 1 and "2 nodes run on this PC" in both.stderr and "--port" in both.stderr
        port_b = url_b.rsplit(":", 1)[1]
        one = control(home, "pause", "--port", port_b)
        assert one.returncode == 0 and one.stdout.startswith("two: paused"), one.stderr
        port_a = url_a.rsplit(":", 1)[1]
        assert control(home, "status", "--port", port_a).returncode == 0  # the other one still takes jobs
    finally:
        for proc in (a, b):
            stop_node(proc)


def test_a_killed_nodes_run_file_is_not_believed(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, _url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate")
    proc.kill()
    stop_node(proc)  # reaps it and closes its pipes
    gone = control(home, "status")
    assert gone.returncode == 1 and "no node runs on this PC" in gone.stderr
    assert not list((home / "data" / runfiles.FOLDER).glob("*.json"))


def test_a_short_schedule_window_opens_and_closes_for_real(tmp_path: Path) -> None:
    """Once for real (the decision itself is tested on a fake clock): a window of a few seconds, in UTC."""

    def hms(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")

    opens = time.time() + 5
    window = f"daily {hms(opens)}-{hms(opens + 3)}"
    home = tmp_path / "home"
    proc, url = start_node(
        home,
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-advertise",
        "--simulate",
        "--schedule",
        window,
        "--timezone",
        "UTC",
    )

    async def watch() -> list[tuple[str, float | None]]:
        seen: list[tuple[str, float | None]] = []
        async with aiohttp.ClientSession() as http:
            node = NodeClient(http, url, TOKEN)
            async with asyncio.timeout(20):
                while len(seen) < 3:
                    a = (await node.info()).availability
                    if not seen or seen[-1][0] != a.state:
                        seen.append((str(a.state), a.until))
                    await asyncio.sleep(0.1)
        return seen

    try:
        seen = asyncio.run(watch())
    finally:
        stop_node(proc)
    assert [s for s, _ in seen] == ["schedule", "available", "schedule"]
    assert seen[0][1] == int(opens)  # closed, and it says until when
