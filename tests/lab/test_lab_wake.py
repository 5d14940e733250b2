"""Wake-on-LAN in the LAN lab only: a node seen with its MAC goes silent (SIGSTOP: no goodbye, no answer,
as a sleeping PC), `lanfarm nodes` shows it asleep, and `lanfarm nodes wake NAME` sends a magic packet
that a listener in the node's namespace receives (6 x 0xFF, then its MAC 16 times) to the subnet's
broadcast and its last address; the node answers again and the command says it is awake.
Every packet is sent from inside a lab namespace; nothing reaches this machine's real interfaces."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from tests.lab.netlab import Lab, Lines
from tests.lab.test_lab_farm import farm_env, start_node
from tests.node.helpers import TOKEN

pytestmark = pytest.mark.lab

LISTENER = r"""
import json, socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 9))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(4096)
    print(json.dumps({"hex": data.hex(), "from": addr[0]}), flush=True)
"""


def test_a_sleeping_node_shows_asleep_and_its_magic_packet_arrives(tmp_path: Path) -> None:
    with Lab(2) as lab:
        farm_host, node_host = lab.hosts
        listener = node_host.python(LISTENER)
        packets = Lines(listener.stdout)
        packets.expect(lambda line: line == "ready", timeout=10)
        node = start_node(node_host, tmp_path / "node-home")
        mac = node_host.run(["cat", "/sys/class/net/eth0/address"]).stdout.strip()
        token_file = tmp_path / "farm-token"
        token_file.write_text(TOKEN)
        env = farm_env(tmp_path)
        nodes = [sys.executable, "-m", "farm.cli", "nodes", "--no-discovery", "--token-file", str(token_file)]
        peer = ["--peer", f"{node_host.ip}:7788"]

        seen = json.loads(farm_host.run([*nodes, *peer, "--json"], env=env).stdout)
        [n] = seen["nodes"]
        name = n["name"]
        assert mac in n["info"]["macs"] and seen["asleep"] == []

        node.send_signal(signal.SIGSTOP)  # asleep: silent, and no mDNS goodbye
        listing = farm_host.run([*nodes, *peer, "--json", "--wait", "1"], env=env, check=False)
        asleep = json.loads(listing.stdout)["asleep"]
        assert [(z["name"], z["state"], mac in z["macs"]) for z in asleep] == [(name, "asleep", True)]
        table = farm_host.run([*nodes, *peer, "--wait", "1"], env={**env, "COLUMNS": "200"}, check=False).stdout
        assert "asleep" in table and name in table

        nobody = farm_host.run([*nodes, "wake", name, "--wait", "2"], env=env, check=False)
        assert nobody.returncode == 1, nobody.stderr
        assert f"{name}: waking (magic packet to 10.77.0.255:9, {node_host.ip}:9)" in nobody.stdout
        assert f"{name}: waking: no answer within 2 s" in nobody.stderr
        magic = "ff" * 6 + mac.replace(":", "") * 16
        got = [packets.expect_json(lambda m: True, timeout=5) for _ in range(2)]  # broadcast, then unicast
        assert [p["hex"] for p in got] == [magic, magic]
        assert {p["from"] for p in got} == {farm_host.ip}
        listing = farm_host.run([*nodes, *peer, "--json", "--wait", "1"], env=env, check=False)
        assert [z["state"] for z in json.loads(listing.stdout)["asleep"]] == ["waking"]  # until it answers

        waking = farm_host.popen([*nodes, "wake", name, "--wait", "20"], env=env)
        packets.expect_json(lambda m: m["hex"] == magic, timeout=10)
        node.send_signal(signal.SIGCONT)  # the packet woke the PC
        out, err = waking.communicate(timeout=30)
        assert waking.returncode == 0, err
        assert f"{name}: awake, online at {node_host.ip}:7788" in out
