"""The lab itself: hosts reach each other over the bridge and nothing shows in the root namespace."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.lab import netlab

pytestmark = pytest.mark.lab

ECHO_SERVER = """
import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 9000)); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
"""
ECHO_CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], 9000), timeout=5)
c.sendall(b"hello lan"); print(c.recv(100).decode())
"""


def _root_state() -> tuple[set[str], str]:
    links = json.loads(netlab.ip("-j", "link", "show").stdout)
    return {link["ifname"] for link in links}, netlab.ip("-4", "addr", "show").stdout


def test_hosts_talk_over_the_bridge_and_root_namespace_is_untouched() -> None:
    before_links, _ = _root_state()
    with netlab.Lab(2, rate="1gbit") as lab:
        a, b = lab.hosts
        assert (a.ip, b.ip) == ("10.77.0.1", "10.77.0.2")
        server = a.python(ECHO_SERVER, a.ip)
        assert server.stdout is not None
        assert server.stdout.readline().strip() == "ready"
        client = b.python(ECHO_CLIENT, a.ip)
        out, err = client.communicate(timeout=10)
        assert out.strip() == "HELLO LAN", err
        assert "tbf" in a.run(["tc", "qdisc", "show", "dev", "eth0"]).stdout
        routes = b.run(["ip", "route"]).stdout
        assert "default" not in routes and "224.0.0.0/4 dev eth0" in routes
        links, addrs = _root_state()
        assert links == before_links
        assert "10.77." not in addrs
        names = netlab.namespaces()
        assert lab.bridge_netns in names and a.netns in names
    assert not any(n.startswith(lab.name) for n in netlab.namespaces())
    assert server.poll() is not None


def test_teardown_runs_when_the_body_fails_and_stale_namespaces_are_cleaned() -> None:
    try:
        with netlab.Lab(1) as lab:
            lab.hosts[0].popen(["sleep", "60"])
            raise RuntimeError("test body failed")
    except RuntimeError:
        pass
    assert not any(n.startswith(lab.name) for n in netlab.namespaces())
    # A namespace named like a lab of a process that no longer exists is stale.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = f"{netlab.PREFIX}-{dead.pid}-1-br"
    netlab.ip("netns", "add", stale)
    try:
        assert stale in netlab.cleanup_stale()
    finally:
        netlab.delete_netns(stale)
    assert stale not in netlab.namespaces()
