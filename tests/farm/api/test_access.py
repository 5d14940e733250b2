"""Who may use ``lanfarm serve``: this PC always; another PC's farm API calls need the farm token; its
IOPaint calls need an allow-list entry. The other PC is real: a network namespace of the LAN lab."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from farm.api.access import Access, parse_networks
from tests.conftest import LANFARM, subprocess_env
from tests.farm.api.helpers import serving
from tests.lab import netlab
from tests.node.helpers import TOKEN

AUTH = {"Authorization": f"Bearer {TOKEN}"}  # lanfarm serve's farm API takes the token as a Bearer


def test_the_rules() -> None:
    access = Access(TOKEN, parse_networks(["192.168.1.0/24", "10.0.0.7, fd00::/8"]))
    for here in ("127.0.0.1", "127.8.9.1", "::1", "::ffff:127.0.0.1", "localhost"):
        assert access.iopaint_allowed(here) and access.native_allowed(here, "")
    assert access.iopaint_allowed("192.168.1.44") and access.iopaint_allowed("10.0.0.7")
    assert access.iopaint_allowed("::ffff:192.168.1.9") and access.iopaint_allowed("fd00::5")
    for other in ("192.168.2.1", "10.0.0.8", "fe80::1", None, "", "not an address"):
        assert not access.iopaint_allowed(other)
    assert not access.native_allowed("192.168.1.44", "")  # the allow-list is for IOPaint's routes only
    assert not access.native_allowed("192.168.1.44", "Bearer wrong")
    assert access.native_allowed("192.168.1.44", f"Bearer {TOKEN}")
    assert not Access("", ()).native_allowed("192.168.1.44", "Bearer ")  # no token: nobody from outside
    with pytest.raises(ValueError, match="'lan'"):
        parse_networks(["lan"])


async def test_a_web_page_on_this_pc_needs_the_token_for_the_farm_api(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        origin = {"Origin": "http://evil.example"}
        async with s.http.get(s.url + "/farm/v1/info", headers=origin) as r:
            assert r.status == 401 and "web page" in (await r.json())["error"]["message"]
        async with s.http.get(s.url + "/farm/v1/info", headers={**origin, **AUTH}) as r:
            assert r.status == 200
        async with s.http.get(s.url + "/farm/v1/info") as r:  # a program on this PC: no token needed
            assert r.status == 200


def test_lanfarm_serve_says_where_it_listens_and_who_may_call(tmp_path: Path) -> None:
    env = subprocess_env(LANFARM_HOME=str(tmp_path / "home"), LANFARM_TOKEN=TOKEN, LANFARM_DISCOVERY="off")
    proc = subprocess.Popen(
        [*LANFARM, "serve", "--port", "0", "--local-only"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert first.startswith("lanfarm serve listening on http://127.0.0.1:"), first + proc.stderr.read().decode()
        lines = [proc.stdout.readline().decode() for _ in range(4)]
        assert any("only programs on this PC" in line for line in lines), lines
    finally:
        proc.terminate()
        proc.communicate(timeout=15)
    assert proc.returncode == 0
    bad = subprocess.run([*LANFARM, "serve", "--allow", "lan"], env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--allow 'lan'" in bad.stderr


CLIENT = r"""
import base64, json, sys, urllib.request
import cv2, numpy as np
url, token = sys.argv[1], sys.argv[2]
def call(path, body=None, auth=None):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if auth:
        req.add_header("Authorization", "Bearer " + auth)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
png = lambda a: "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", a)[1]).decode()
mask = np.zeros((48, 64), np.uint8); mask[8:24, 8:24] = 255
body = {"image": png(np.full((48, 64, 3), 90, np.uint8)), "mask": png(mask)}
print(json.dumps({
    "native_no_token": call("/farm/v1/info"),
    "native_wrong_token": call("/farm/v1/info", auth="wrong"),
    "native_token": call("/farm/v1/info", auth=token),
    "iopaint_config": call("/api/v1/server-config"),
    "iopaint_inpaint": call("/api/v1/inpaint", body),
    "socketio": call("/socket.io/?EIO=4&transport=polling"),
}))
"""


@pytest.mark.lab
@pytest.mark.skipif(netlab.available() is not None, reason=f"LAN lab: {netlab.available()}")
def test_another_pc_needs_the_token_and_the_allow_list(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    with netlab.Lab(2) as lab:
        server, client = lab.hosts

        def serve(*allow: str) -> subprocess.Popen[str]:
            args = ["serve", "--host", server.ip, "--port", "8080", "--local-only", "--token-file", str(token_file)]
            home = tmp_path / f"home{len(allow)}"
            proc = server.popen(
                [sys.executable, "-m", "farm.cli", *args, *(a for ip in allow for a in ("--allow", ip))],
                env={"LANFARM_HOME": str(home), "LANFARM_DISCOVERY": "off"},
            )
            lines = netlab.Lines(proc.stdout)
            lines.expect(lambda line: line.startswith("lanfarm serve listening on"), 60)
            said = lines.expect(lambda line: "IOPaint API from other addresses" in line, 10)
            assert said.endswith("open, without a token, to 10.77.0.0/24" if allow else "refused (no --allow given)")
            return proc

        def ask() -> dict[str, int]:
            proc = client.python(CLIENT, f"http://{server.ip}:8080", TOKEN)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 0, err
            return dict(json.loads(out))

        first = serve()
        answers = ask()
        assert answers == {
            "native_no_token": 401,
            "native_wrong_token": 401,
            "native_token": 200,
            "iopaint_config": 403,
            "iopaint_inpaint": 403,
            "socketio": 403,
        }
        first.terminate()
        first.communicate(timeout=15)
        serve("10.77.0.0/24")
        answers = ask()
        assert (answers["iopaint_config"], answers["iopaint_inpaint"], answers["socketio"]) == (200, 200, 200)
        assert answers["native_no_token"] == 401  # the allow-list never opens the farm API
