"""Who a node is: one id per running node of a home (kept across restarts); no silent farm of one."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from pathlib import Path

from tests.node.helpers import NODE_CMD, node_env, start_node, stop_node, unverified_context


def node_id(url: str) -> str:
    with urllib.request.urlopen(f"{url}/v1/health", timeout=10, context=unverified_context()) as resp:
        return str(json.loads(resp.read())["id"])


def test_two_nodes_from_one_home_get_two_ids_and_a_restart_keeps_its_own(tmp_path: Path) -> None:
    home = tmp_path / "home"
    args = ("--host", "127.0.0.1", "--port", "0", "--no-advertise")
    first, url1 = start_node(home, *args)
    second, url2 = start_node(home, *args)
    try:
        id1, id2 = node_id(url1), node_id(url2)
    finally:
        for proc in (second, first):
            code, err = stop_node(proc)
            assert code == 0, err[-2000:]
    assert id1 != id2, "two running nodes of one home shared an id: the farm would see only one"
    again, url = start_node(home, *args)
    try:
        assert node_id(url) == id1, "a restarted node did not keep its id"
    finally:
        stop_node(again)


def test_a_node_without_a_farm_token_refuses_to_start_and_says_how_to_get_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in node_env(home).items() if k != "LANFARM_TOKEN"}
    args = [*NODE_CMD, "--host", "127.0.0.1", "--port", "0", "--no-advertise"]
    refused = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2
    assert "no farm token" in refused.stderr and "lanfarm token" in refused.stderr and "--new-farm" in refused.stderr
    assert not list(home.rglob("farm-token")), "a token was made anyway"
    proc, url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--new-farm", env=env)
    try:
        assert node_id(url)
    finally:
        stop_node(proc)
    [token_file] = list(home.rglob("farm-token"))
    assert token_file.read_text().strip()
