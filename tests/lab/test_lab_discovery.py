"""mDNS discovery between lab hosts: real ``lanfarm node`` processes seen by ``Discovery`` in another host.

Host 1 and 3 run nodes (3 with another farm's token), host 2 runs ``tests.lab.watch`` (Discovery on
its 10.77 address, heartbeats every 0.5 s, 3 misses). A clean stop is an mDNS goodbye: the node is
gone at once. A SIGKILL sends no goodbye and zeroconf keeps the records: only the missed heartbeats
take the node down.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.lab.netlab import Host, Lab, Lines
from tests.node.helpers import TOKEN, node_env

pytestmark = pytest.mark.lab

PORT = "7788"


def start_node(host: Host, home: Path, token: str, name: str) -> tuple[subprocess.Popen[str], Lines]:
    token_file = home / "token"
    home.mkdir(parents=True, exist_ok=True)
    token_file.write_text(token)
    proc = host.popen(
        [
            sys.executable,
            "-m",
            "farm.cli",
            "node",
            "--host",
            host.ip,
            "--port",
            PORT,
            "--interface",
            host.ip,
            "--token-file",
            str(token_file),
            "--name",
            name,
        ],
        env=node_env(home),
        stderr=subprocess.STDOUT,
    )
    lines = Lines(proc.stdout)
    lines.expect(lambda line: line.startswith("lanfarm node listening on"), timeout=30)
    return proc, lines


def event(kind: str, **want: Any) -> Any:
    def match(e: dict[str, Any]) -> bool:
        node = e.get("node", {})
        return e["event"] == kind and all(e.get(k, node.get(k)) == v for k, v in want.items())

    return match


def test_nodes_found_over_mdns_then_goodbye_and_kill(tmp_path: Path) -> None:
    with Lab(3) as lab:
        h1, watcher_host, h3 = lab.hosts
        node1, _ = start_node(h1, tmp_path / "n1", TOKEN, "pc-one")
        start_node(h3, tmp_path / "n3", "another-farm", "pc-three")
        watch = watcher_host.popen(
            [
                sys.executable,
                "-m",
                "tests.lab.watch",
                "--interface",
                watcher_host.ip,
                "--token",
                TOKEN,
                "--interval",
                "0.5",
            ],
            env=node_env(tmp_path / "watch", PYTHONUNBUFFERED="1"),
            stderr=subprocess.STDOUT,
        )
        events = Lines(watch.stdout)
        events.expect_json(event("ready"), timeout=20)
        one = events.expect_json(event("up", name="pc-one"), timeout=10)["node"]
        assert (one["address"], one["source"], one["state"]) == (f"{h1.ip}:{PORT}", "mdns", "online")
        assert one["info"]["name"] == "pc-one" and "cv2" in one["engines"]
        # another farm's node: kept and shown, its name from the advert since /v1/info said 401
        events.expect_json(event("up", name="pc-three", state="unauthorised"), timeout=10)

        # `lanfarm nodes` in the watcher's host sees both through mDNS
        token_file = tmp_path / "n1" / "token"
        listing = watcher_host.run(
            [
                sys.executable,
                "-m",
                "farm.cli",
                "nodes",
                "--json",
                "--wait",
                "2",
                "--interface",
                watcher_host.ip,
                "--token-file",
                str(token_file),
            ],
            env=node_env(tmp_path / "cli"),
            timeout=30,
        )
        found = {n["name"]: n["state"] for n in json.loads(listing.stdout)["nodes"]}
        assert found == {"pc-one": "online", "pc-three": "unauthorised"}

        node1.send_signal(signal.SIGTERM)  # clean stop: mDNS goodbye
        t0 = time.monotonic()
        gone = events.expect_json(event("down", id=one["id"]), timeout=10)
        assert gone["reason"] == "goodbye" and time.monotonic() - t0 < 5  # before 3 misses could add up
        assert node1.wait(timeout=15) == 0

        node1, _ = start_node(h1, tmp_path / "n1", TOKEN, "pc-one")  # same home: same node id
        events.expect_json(event("up", id=one["id"]), timeout=15)
        node1.send_signal(signal.SIGKILL)  # no goodbye: only the heartbeats notice
        t0 = time.monotonic()
        gone = events.expect_json(event("down", id=one["id"]), timeout=15)
        took = time.monotonic() - t0
        assert gone["reason"] == "timeout" and 0.5 < took < 8, took
        watch.send_signal(signal.SIGTERM)
        events.expect_json(event("stopped"), timeout=10)
        assert watch.wait(timeout=10) == 0


NO_INTERFACE = """
import asyncio
from farm.runtime.discovery import Discovery

async def main():
    async with Discovery("t", interfaces=["10.99.9.9"], peers=["127.0.0.1:9"]) as d:
        assert await d.async_wait_probed(5)
        print("unreached", [str(u.address) for u in d.unreached()])

asyncio.run(main())
"""


def test_without_a_usable_interface_discovery_keeps_to_peers() -> None:
    with Lab(1) as lab:
        proc = lab.hosts[0].python(NO_INTERFACE)
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert out.strip() == "unreached ['127.0.0.1:9']"
        assert "no mDNS discovery (add nodes by address)" in err
