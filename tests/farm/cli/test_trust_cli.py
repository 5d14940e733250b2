"""``lanfarm nodes trust NAME`` against a real ``lanfarm node`` that came back with a new certificate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from farm.cli import main
from farm.local.pins import load_pins
from tests.node.helpers import TOKEN, node_env, start_node, stop_node

ARGS = ("--host", "127.0.0.1", "--port", "0", "--no-advertise", "--name", "attic-pc")


def listing(address: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["nodes", "--no-discovery", "--peer", address, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_node_with_a_new_certificate_is_refused_until_trusted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANFARM_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "300")
    home = tmp_path / "node"
    proc, url = start_node(home, *ARGS, env=node_env(home))
    try:
        code, out = listing(url, capsys)
        assert code == 0 and out["nodes"][0]["state"] == "online"
        first = out["nodes"][0]["info"]["fingerprint"]
        node_id = out["nodes"][0]["id"]
    finally:
        stop_node(proc)
    assert load_pins()[node_id].fingerprint == first
    shutil.rmtree(_tls_dir(home))  # the node lost its certificate (reinstalled, say); it keeps its id
    port = url.rsplit(":", 1)[1]
    proc, url = start_node(home, *ARGS[:3], port, *ARGS[4:], env=node_env(home))  # same id, same port
    try:
        code, out = listing(url, capsys)
        assert code == 1 and out["nodes"][0]["state"] == "untrusted"
        main(["nodes", "--no-discovery", "--peer", url])
        table = " ".join(capsys.readouterr().out.split())  # the note below the table is wrapped
        assert "untrusted" in table and "lanfarm nodes trust attic-pc" in table
        assert load_pins()[node_id].fingerprint == first
        assert main(["nodes", "trust", "no-such-pc"]) == 2
        assert main(["nodes", "trust", "attic-pc"]) == 0
        assert "trusted its new certificate" in capsys.readouterr().out
        second = load_pins()[node_id].fingerprint
        assert second != first
        code, out = listing(url, capsys)
        assert code == 0 and out["nodes"][0]["state"] == "online"
        assert out["nodes"][0]["info"]["fingerprint"] == second
    finally:
        stop_node(proc)


def _tls_dir(home: Path) -> Path:
    [found] = [p.parent for p in home.rglob("node-cert.pem")]
    return found
