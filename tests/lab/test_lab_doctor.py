"""`lanfarm doctor` in the lab: multicast blocked between the hosts, a node with another farm's token, a
closed port and an old protocol each get one correct verdict (real `lanfarm node` processes; the old
node is a FAKE of protocol 1, tests/lab/impostors.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.lab.netlab import Lab
from tests.lab.test_lab_farm import farm_env, start_node
from tests.lab.test_lab_trust import impostor
from tests.node.helpers import TOKEN

pytestmark = pytest.mark.lab


def doctor(lab: Lab, tmp: Path, *peers: str) -> tuple[int, dict[str, dict[str, Any]]]:
    host = lab.hosts[-1]
    token_file = tmp / "farm-token"
    token_file.write_text(TOKEN)
    argv = [sys.executable, "-m", "farm.cli", "doctor", "--discover-on", host.ip, "--token-file", str(token_file)]
    for p in peers:
        argv += ["--peer", p]
    result = host.run([*argv, "--json", "--wait", "3"], env=farm_env(tmp), check=False, timeout=90)
    verdicts = json.loads(result.stdout)
    return result.returncode, {v["subject"]: v for v in verdicts}


@pytest.mark.parametrize("blocked", [True, False], ids=["multicast-blocked", "multicast-open"])
def test_doctor_gives_one_correct_verdict_per_problem(tmp_path: Path, blocked: bool) -> None:
    with Lab(4) as lab:
        good, stranger, old, _farm = lab.hosts
        start_node(good, tmp_path / "good", "--simulate")
        start_node(stranger, tmp_path / "stranger", "--no-advertise", token="another-farm-token-0123456789")
        impostor(old, "old")
        if blocked:
            lab.block_multicast()
        closed = f"{good.ip}:7799"
        code, verdicts = doctor(
            lab, tmp_path, f"{good.ip}:7788", f"{stranger.ip}:7788", f"http://{old.ip}:7788", closed
        )
    assert code == 1  # something to fix in both cases
    assert verdicts["multicast"]["ok"]  # each PC still hears itself
    assert verdicts[f"node {good.ip}:7788"]["ok"] and "TLS, certificate" in verdicts[f"node {good.ip}:7788"]["finding"]
    assert "refuses this farm's token" in verdicts[f"node {stranger.ip}:7788"]["finding"]
    assert "lanfarm token" in verdicts[f"node {stranger.ip}:7788"]["fix"]
    assert "protocol 1" in verdicts[f"node {old.ip}:7788"]["finding"]
    assert "update LAN Farm" in verdicts[f"node {old.ip}:7788"]["fix"]
    assert "nothing listens on port 7799" in verdicts[f"node {closed}"]["finding"]
    assert "firewall" in verdicts[f"node {closed}"]["fix"]
    if blocked:
        between = verdicts["mDNS between PCs"]
        assert not between["ok"] and "multicast is blocked between the PCs" in between["finding"]
        assert "5353" in between["fix"] and verdicts["mDNS"]["finding"].startswith("0 node(s)")
    else:
        assert "mDNS between PCs" not in verdicts and not verdicts["mDNS"]["finding"].startswith("0 node(s)")
    wrong = [s for s, v in verdicts.items() if not v["ok"]]
    assert len(wrong) == 3 + blocked, wrong  # one verdict per problem, none for what works
