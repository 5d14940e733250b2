"""The mDNS advert, seen by a real zeroconf browser; node and browser share a private network namespace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from farm.core.advert import NodeAdvert
from farm.core.protocol import PROTOCOL_VERSION
from tests.node.helpers import TOKEN, node_env
from tests.node.netns import require_netns, run_in_netns

pytestmark = pytest.mark.lab

SCRIPT = r"""
import asyncio, json, sys, time
from pathlib import Path
import aiohttp
from zeroconf import IPVersion, ServiceStateChange
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf
from farm.core.protocol import SERVICE_TYPE
from tests.node.helpers import SIGNED, job_body, mask_png, png, sha, start_node, stop_node, unverified

HOME = Path(sys.argv[1])
IMG, MASK = png(), mask_png()


async def main() -> dict:
    out = {}
    proc, url = start_node(HOME, "--host", "127.0.0.1", "--port", "0", "--simulate", "--slots", "2",
                           "--interface", "127.0.0.1", "--name", "spare-pc", "--simulate-slowdown", "10",
                           verbose=True)
    aiozc = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
    changes: asyncio.Queue = asyncio.Queue()

    def on_change(zeroconf, service_type, name, state_change):
        changes.put_nowait((state_change, name))

    browser = AsyncServiceBrowser(aiozc.zeroconf, [SERVICE_TYPE], handlers=[on_change])
    try:
        t0 = time.monotonic()
        state, name = await asyncio.wait_for(changes.get(), 15)
        out["first_change"] = state.name
        out["seen_after"] = time.monotonic() - t0
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        assert await info.async_request(aiozc.zeroconf, 3000)
        out.update(name=name, port=info.port, addresses=info.parsed_addresses(), url=url,
                   txt={k.decode(): (v or b"").decode() for k, v in info.properties.items()},
                   raw=repr(info.text))
        # load changes: free 2 -> 1
        async with aiohttp.ClientSession(url, connector=unverified(), middlewares=SIGNED) as http:
            for data in (IMG, MASK):
                async with http.put(f"/v1/blobs/{sha(data)}", data=data) as resp:
                    assert resp.status in (200, 201), (resp.status, await resp.text())
            async with http.post("/v1/jobs", json=job_body("mdns-job-1", IMG, MASK,
                                                           seconds_per_mp=600.0)) as resp:
                assert resp.status == 202
            while True:
                state, name = await asyncio.wait_for(changes.get(), 10)
                if state is ServiceStateChange.Updated:
                    info = AsyncServiceInfo(SERVICE_TYPE, name)
                    await info.async_request(aiozc.zeroconf, 3000)
                    if info.properties.get(b"free") == b"1":
                        out["updated_free"] = 1
                        break
            async with http.delete("/v1/jobs/mdns-job-1") as resp:
                assert resp.status == 200
            async with http.post("/v1/pause", json={"reason": "gaming"}) as resp:  # the owner pauses it
                assert resp.status == 200
            while True:
                state, name = await asyncio.wait_for(changes.get(), 10)
                if state is ServiceStateChange.Updated:
                    info = AsyncServiceInfo(SERVICE_TYPE, name)
                    await info.async_request(aiozc.zeroconf, 3000)
                    if info.properties.get(b"state") == b"paused":
                        out["paused_free"] = int(info.properties.get(b"free") or -1)
                        break
        code, err = stop_node(proc)
        out["exit"], out["token_in_log"] = code, sys.argv[2] in err
        while True:
            state, name = await asyncio.wait_for(changes.get(), 5)
            if state is ServiceStateChange.Removed:
                out["removed"] = True
                break
    finally:
        if proc.poll() is None:
            stop_node(proc)
        await browser.async_cancel()
        await aiozc.async_close()
    return out


print("RESULT " + json.dumps(asyncio.run(main())))
"""


def test_advert_seen_updated_and_withdrawn(tmp_path: Path) -> None:
    require_netns()
    code = SCRIPT.replace("HOME = Path(sys.argv[1])", f"HOME = Path({str(tmp_path)!r})").replace(
        "sys.argv[2]", repr(TOKEN)
    )
    proc = run_in_netns(code, env=node_env(tmp_path), timeout=90)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
    out = json.loads(lines[0][len("RESULT ") :])
    advert = NodeAdvert.from_txt(out["txt"])
    assert out["first_change"] == "Added"
    assert out["name"] == "spare-pc._lanfarm._tcp.local."
    assert out["addresses"] == ["127.0.0.1"] and out["url"].endswith(f":{out['port']}")
    assert (advert.name, advert.proto, advert.gpu, advert.vram_mb) == ("spare-pc", PROTOCOL_VERSION, "cpu", 0)
    assert (advert.slots, advert.free) == (2, 2) and set(advert.engines) == {"cv2", "sim", "sim-upscale"}
    assert len(advert.id) == 16
    assert advert.tls and len(advert.fingerprint) == 64  # TXT names the certificate the farm will pin
    assert TOKEN not in out["raw"] and TOKEN not in json.dumps(out["txt"])
    assert out["updated_free"] == 1
    assert advert.state == "available" and out["paused_free"] == 0  # paused: state in TXT, nothing free
    assert out["exit"] == 0 and not out["token_in_log"]
    assert out["removed"] is True
