"""Trust on a real LAN, in the lab: what a sniffer on the bridge sees while a batch runs, a man in the
middle, a node reinstalled with a new certificate, and a fake node without the farm token.

Nodes are real `lanfarm node` processes (the SIMULATED GPU engine, `--simulate`); the man in the
middle and the fake node are FAKES of a hostile machine (tests/lab/impostors.py), each in a host of
its own; the capture is an AF_PACKET socket in the bridge namespace (tests/lab/capture.py).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from farm.local.pins import load_pins
from tests.lab.netlab import Host, Lab, Lines
from tests.lab.test_lab_farm import by_name, farm_env, make_batch, run_args, start_node, summary
from tests.node.helpers import TOKEN

pytestmark = pytest.mark.lab

PNG_HEAD = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"  # how every PNG starts: 16 bytes no cipher text holds by chance


def capture(lab: Lab, path: Path) -> subprocess.Popen[str]:
    proc = lab.bridge.popen([sys.executable, "-m", "tests.lab.capture", str(path)])
    Lines(proc.stdout).expect(lambda line: line.startswith("capturing"), timeout=10)
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)


def impostor(host: Host, kind: str, *args: str) -> subprocess.Popen[str]:
    proc = host.popen(
        [sys.executable, "-m", "tests.lab.impostors", kind, "--host", host.ip, "--port", "7788", *args],
        stderr=subprocess.STDOUT,
    )
    Lines(proc.stdout).expect(lambda line: line.startswith("listening"), timeout=20)
    return proc


def nodes(host: Host, tmp: Path, *peers: str) -> tuple[int, dict[str, Any]]:
    """`lanfarm nodes --json` from ``host``, only the given peers; (exit code, the listing)."""
    token_file = tmp / "farm-token"
    token_file.write_text(TOKEN)
    argv = [sys.executable, "-m", "farm.cli", "nodes", "--no-discovery", "--token-file", str(token_file), "--json"]
    for p in peers:
        argv += ["--peer", p]
    result = host.run(argv, env=farm_env(tmp), check=False, timeout=60)
    return result.returncode, json.loads(result.stdout)


def pins(tmp: Path) -> dict[str, Any]:
    return load_pins(tmp / "farm-home" / "config" / "pins.json")


def test_a_capture_on_the_bridge_while_a_batch_runs_holds_no_token_and_no_image(tmp_path: Path) -> None:
    src = make_batch(tmp_path / "in", 6)
    images = sum(p.stat().st_size for p in src.iterdir())
    seen: dict[str, bytes] = {}
    for mode, extra in (("tls", ()), ("plain", ("--no-tls",))):
        with Lab(2) as lab:
            node_host, farm_host = lab.hosts
            start_node(node_host, tmp_path / mode / "node", "--simulate", *extra)
            wire = tmp_path / mode / "wire.bin"
            sniffer = capture(lab, wire)
            argv = run_args(farm_host, src, tmp_path / mode / "out", 0.5, "--no-local")
            report = summary(farm_host.run(argv, env=farm_env(tmp_path / mode), timeout=120))
            stop(sniffer)
        assert len(report["done"]) == 6 and by_name(report)[f"node-{node_host.ip}"]["done"] == 6
        seen[mode] = wire.read_bytes()
        assert len(seen[mode]) > images  # every input crossed the bridge while it was recorded
        assert TOKEN.encode() not in seen[mode]  # never, over TLS or not: requests are signed
    assert b"LANFarm-HMAC" in seen["plain"] and PNG_HEAD in seen["plain"]  # the capture reads plain HTTP
    assert b"LANFarm-HMAC" not in seen["tls"] and b"/v1/jobs" not in seen["tls"] and PNG_HEAD not in seen["tls"]


def test_a_man_in_the_middle_with_another_certificate_is_refused(tmp_path: Path) -> None:
    with Lab(3) as lab:
        node_host, mitm_host, farm_host = lab.hosts
        start_node(node_host, tmp_path / "node", "--simulate", "--no-advertise")
        impostor(mitm_host, "mitm", "--home", str(tmp_path / "mitm"), "--target", f"{node_host.ip}:7788")
        mitm = f"{mitm_host.ip}:7788"
        code, listing = nodes(farm_host, tmp_path, mitm)  # first contact, through the man in the middle
        [node] = listing["nodes"]
        assert code == 1 and node["state"] == "untrusted" and pins(tmp_path) == {}
        code, listing = nodes(farm_host, tmp_path, f"{node_host.ip}:7788")  # the node itself: pinned
        assert code == 0 and listing["nodes"][0]["state"] == "online" and len(pins(tmp_path)) == 1
        code, listing = nodes(farm_host, tmp_path, mitm)  # and now the pin refuses the man in the middle
        assert code == 1 and listing["nodes"][0]["state"] == "untrusted"
        argv = run_args(farm_host, make_batch(tmp_path / "in", 2), tmp_path / "out", 0.5, "--no-discovery")
        report = summary(farm_host.run([*argv, "--peer", mitm], env=farm_env(tmp_path), timeout=120))
        assert set(by_name(report)) == {"this PC"}  # no job went through it


def test_a_node_back_with_a_new_certificate_is_refused_until_trusted(tmp_path: Path) -> None:
    with Lab(2) as lab:
        node_host, farm_host = lab.hosts
        home = tmp_path / "node"
        address = f"{node_host.ip}:7788"
        proc = start_node(node_host, home, "--simulate", "--no-advertise")
        code, listing = nodes(farm_host, tmp_path, address)
        assert code == 0 and listing["nodes"][0]["state"] == "online"
        first = listing["nodes"][0]["info"]["fingerprint"]
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        shutil.rmtree(home / "data" / "tls")  # reinstalled: a new certificate, the same node id
        start_node(node_host, home, "--simulate", "--no-advertise")
        code, listing = nodes(farm_host, tmp_path, address)
        assert code == 1 and listing["nodes"][0]["state"] == "untrusted"
        argv = run_args(farm_host, make_batch(tmp_path / "in", 2), tmp_path / "out", 0.5, "--no-discovery")
        refused = farm_host.run([*argv, "--peer", address], env=farm_env(tmp_path), timeout=120)
        assert f"lanfarm nodes trust node-{node_host.ip}" in " ".join(refused.stderr.split())
        assert set(by_name(summary(refused))) == {"this PC"}
        trusted = farm_host.run(
            [sys.executable, "-m", "farm.cli", "nodes", "trust", f"node-{node_host.ip}"], env=farm_env(tmp_path)
        )
        assert "trusted its new certificate" in trusted.stdout
        code, listing = nodes(farm_host, tmp_path, address)
        assert code == 0 and listing["nodes"][0]["state"] == "online"
        assert listing["nodes"][0]["info"]["fingerprint"] != first
        again = [*run_args(farm_host, tmp_path / "in", tmp_path / "out2", 0.5, "--no-discovery", "--no-local")]
        again += ["--peer", address]
        report = summary(farm_host.run(again, env=farm_env(tmp_path), timeout=120))
        assert by_name(report)[f"node-{node_host.ip}"]["done"] == 2


def test_a_fake_node_without_the_token_is_never_pinned_and_gets_no_job(tmp_path: Path) -> None:
    with Lab(2) as lab:
        fake_host, farm_host = lab.hosts
        jobs = tmp_path / "fake-jobs.jsonl"
        impostor(fake_host, "fake", "--home", str(tmp_path / "fake"), "--jobs", str(jobs))
        code, listing = nodes(farm_host, tmp_path, f"{fake_host.ip}:7788")
        assert code == 1 and listing["nodes"][0]["state"] == "untrusted"
        argv = run_args(farm_host, make_batch(tmp_path / "in", 3), tmp_path / "out", 0.5, "--no-discovery")
        report = summary(farm_host.run([*argv, "--peer", f"{fake_host.ip}:7788"], env=farm_env(tmp_path), timeout=120))
    assert len(report["done"]) == 3 and set(by_name(report)) == {"this PC"}
    assert not jobs.exists() or jobs.read_text() == ""  # not one upload, not one job
    assert pins(tmp_path) == {}
