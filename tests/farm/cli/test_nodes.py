"""``lanfarm nodes``: saved peers, and a listing of a real ``lanfarm node`` added by address."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from farm.cli import main
from farm.core.address import Address
from farm.local.peers import load_peers
from tests.node.helpers import TOKEN, node_env, start_node, stop_node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[str]:
    """A real node on 127.0.0.1 (no mDNS); yields its ``host:port``."""
    proc, url = start_node(
        tmp_path / "node",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--no-advertise",
        "--name",
        "bench-pc",
        env=node_env(tmp_path / "node"),
    )
    try:
        yield url.removeprefix("https://")
    finally:
        stop_node(proc)


def test_add_and_remove_saved_peers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nodes", "add", "10.0.0.5"]) == 0
    assert main(["nodes", "add", "10.0.0.5:7788"]) == 0
    assert "already saved" in capsys.readouterr().out
    assert load_peers() == [Address("10.0.0.5", 7788)]
    assert main(["nodes", "remove", "10.0.0.5:7788"]) == 0
    assert main(["nodes", "remove", "10.0.0.5:7788"]) == 1
    assert main(["nodes", "add"]) == 2
    assert main(["nodes", "add", "host:notaport"]) == 2
    assert load_peers() == []


def test_lists_a_real_node_by_address_and_a_dead_saved_peer(
    node: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps cells at 80 columns when not on a terminal
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    assert main(["nodes", "add", "127.0.0.1:9"]) == 0
    capsys.readouterr()
    assert main(["nodes", "--no-discovery", "--peer", node, "--token-file", str(token_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    [n] = out["nodes"]
    assert (n["name"], n["address"], n["state"], n["source"]) == ("bench-pc", node, "online", "peer")
    assert "cv2" in n["engines"] and n["slots"]["total"] >= 1
    assert out["unreached"] == [{"address": "127.0.0.1:9", "source": "peer", "error": "connection refused"}]
    assert main(["nodes", "--no-discovery", "--peer", node]) == 1  # no token anywhere: unauthorised, none usable
    table = capsys.readouterr().out
    assert node in table and "unauthorised" in table and "offline" in table  # no name without the token


def test_no_discovery_without_peers_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LANFARM_DISCOVERY", raising=False)
    assert main(["nodes", "--no-discovery"]) == 2
    assert "or drop --no-discovery" in capsys.readouterr().err
    monkeypatch.setenv("LANFARM_DISCOVERY", "off")  # switched off by the environment: say that instead
    assert main(["nodes"]) == 2
    assert "unset LANFARM_DISCOVERY" in capsys.readouterr().err


def test_registered_as_a_subcommand() -> None:
    out = subprocess.run(
        [*[sys.executable, "-c", "from farm.cli import build_parser; build_parser().parse_args(['nodes', '--help'])"]],
        capture_output=True,
        text=True,
        check=False,
        env=node_env(Path("/nonexistent")),
    )
    assert "list the farm's nodes" in out.stdout


def test_a_paused_node_shows_why_in_the_listing(
    node: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    import aiohttp

    from farm.runtime.client import signed_by

    async def pause() -> None:
        async with (
            aiohttp.ClientSession(f"https://{node}", middlewares=signed_by(TOKEN)) as http,
            http.post("/v1/pause", json={"reason": "gaming"}, ssl=False) as resp,  # its own certificate
        ):
            assert resp.status == 200

    asyncio.run(pause())
    monkeypatch.setenv("COLUMNS", "200")
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    args = ["nodes", "--no-discovery", "--peer", node, "--token-file", str(token_file)]
    assert main([*args, "--json"]) == 0
    [n] = json.loads(capsys.readouterr().out)["nodes"]
    assert n["state"] == "online" and n["availability"]["state"] == "paused"
    assert main(args) == 0
    assert "paused: gaming" in capsys.readouterr().out
