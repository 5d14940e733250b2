"""The node's TLS identity: made once on first start, kept (same fingerprint after a restart), the key
private from its first byte; `--no-tls` serves plain HTTP; a certificate of one's own is used as given."""

from __future__ import annotations

import json
import os
import stat
import urllib.request
from pathlib import Path

import pytest

from node.tls import fingerprint_of, load_or_create_certificate
from tests.node.helpers import node_env, start_node, stop_node, unverified_context

ARGS = ("--host", "127.0.0.1", "--port", "0", "--no-advertise")


def health(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/v1/health", timeout=10, context=unverified_context()) as resp:
        return json.loads(resp.read())


def test_the_certificate_is_made_once_with_a_private_key(tmp_path: Path) -> None:
    first = load_or_create_certificate(tmp_path / "tls")
    again = load_or_create_certificate(tmp_path / "tls")
    assert first.fingerprint == again.fingerprint == fingerprint_of(first.cert.read_bytes())
    assert stat.S_IMODE(os.stat(first.key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "tls").st_mode) == 0o700
    assert load_or_create_certificate(tmp_path / "other").fingerprint != first.fingerprint


def test_a_node_serves_https_by_default_and_keeps_its_certificate(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, url = start_node(home, *ARGS)
    try:
        assert url.startswith("https://")
        first = health(url)
    finally:
        stop_node(proc)
    proc, url = start_node(home, *ARGS)
    try:
        again = health(url)
    finally:
        stop_node(proc)
    assert first["tls"] and len(first["fingerprint"]) == 64
    assert again["fingerprint"] == first["fingerprint"] and again["id"] == first["id"]
    [key] = home.rglob("node-key.pem")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600


def test_no_tls_serves_plain_http_and_a_certificate_of_ones_own_is_used(tmp_path: Path) -> None:
    proc, url = start_node(tmp_path / "plain", *ARGS, "--no-tls")
    try:
        assert url.startswith("http://")
        with urllib.request.urlopen(f"{url}/v1/health", timeout=10) as resp:
            answer = json.loads(resp.read())
        assert answer["tls"] is False and answer["fingerprint"] == ""
    finally:
        stop_node(proc)
    own = load_or_create_certificate(tmp_path / "own")
    proc, url = start_node(tmp_path / "own-home", *ARGS, "--cert", str(own.cert), "--key", str(own.key))
    try:
        assert health(url)["fingerprint"] == own.fingerprint
    finally:
        stop_node(proc)
    assert not list((tmp_path / "own-home").rglob("node-cert.pem"))  # none made when one is given


@pytest.mark.parametrize("extra", [("--cert", "c.pem"), ("--no-tls", "--cert", "c.pem", "--key", "k.pem")])
def test_contradictory_tls_settings_stop_the_node_with_a_message(tmp_path: Path, extra: tuple[str, ...]) -> None:
    import subprocess

    from tests.node.helpers import NODE_CMD

    result = subprocess.run(
        [*NODE_CMD, *ARGS, *extra], env=node_env(tmp_path), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2 and ("--cert" in result.stderr), result.stderr
