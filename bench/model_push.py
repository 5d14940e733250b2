"""Issue 14: model push throughput against the link, and how much a resume re-sends (LAN lab, needs root).

For each link rate (``tc tbf`` on both ends of every lab link) one run, side by side:

- ``bare``: the same file in one streamed ``PUT`` to a bare aiohttp server that discards it (the
  link as a single HTTP upload can use it);
- ``push``: ``farm.runtime.model_push.push_model`` to a real ``lanfarm node`` (chunks, each hashed and
  checked, written at its offset and logged).

Reported: each run's push and bare / nominal link rate, then the best bare and the worst push (the target:
at least 0.90 of the link on every run) and push / bare.
Then, at the first rate, the node is SIGKILLed while a chunk is on the wire (at 30, 50 and 70 %),
restarted on the same port, and the push resumes (inside the chunk the node kept a part of): how many
chunks the pusher started twice, how many chunks' worth of bytes it wrote to the connection twice, and
how many chunks' worth of bytes the node's link received beyond an uninterrupted push (its namespace's
``rx_bytes``; the target: at most one).

The file is random bytes named like a model: the node refuses it at ``finish`` (it fails the load
check), after every chunk was received, so the numbers are the chunk phase alone.

    sudo PYTHONPATH=. python bench/model_push.py            # about 2 min
    sudo PYTHONPATH=. python bench/model_push.py --rates 1gbit --mb 256 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.lab.netlab import Host, Lab, Lines, available
from tests.node.helpers import TOKEN

PORT = 7788
BARE_PORT = 7799
RATES = {"1gbit": 1e9 / 8, "100mbit": 100e6 / 8}

BARE_SERVER = """
import asyncio, sys
from aiohttp import web
async def put(request):
    n = 0
    async for chunk in request.content.iter_any():
        n += len(chunk)
    return web.json_response({"size": n})
app = web.Application(client_max_size=1 << 40)
app.router.add_put("/up", put)
web.run_app(app, host=sys.argv[1], port=int(sys.argv[2]), print=lambda *_: print("ready", flush=True))
"""

BARE_CLIENT = """
import asyncio, json, sys, time
import aiohttp
async def main():
    path, url = sys.argv[1], sys.argv[2]
    async with aiohttp.ClientSession() as s:
        with open(path, "rb") as fh:
            t = time.perf_counter()
            async with s.put(url, data=fh) as r:
                size = (await r.json())["size"]
            print(json.dumps({"bytes": size, "seconds": time.perf_counter() - t}), flush=True)
asyncio.run(main())
"""

PUSHER = """
import asyncio, json, sys, time
import aiohttp
from farm.runtime.client import NodeClient
from farm.runtime.model_push import PushError, package, push_model
async def main():
    path, url, token, chunk = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    pkg = package(__import__("pathlib").Path(path))
    def progress(have, total):
        print(json.dumps({"have": have, "total": total}), flush=True)
    async with aiohttp.ClientSession() as s:
        client = NodeClient(s, url, token)
        error = ""
        try:
            result = await push_model(client, pkg, chunk_size=chunk, progress=progress, retry_for=120)
        except PushError as exc:
            error, result = exc.code, exc.result
        keys = ("chunks", "sent", "resent", "bytes_sent", "seconds", "restarts")
        print(json.dumps({"done": True, "error": error, **{k: getattr(result, k) for k in keys}}), flush=True)
asyncio.run(main())
"""


def start_node(host: Host, home: Path, models: Path) -> tuple[Any, Lines]:
    home.mkdir(parents=True, exist_ok=True)
    token = home / "token"
    token.write_text(TOKEN)
    argv = [sys.executable, "-m", "farm.cli", "node", "--host", host.ip, "--port", str(PORT), "--no-advertise"]
    argv += ["--token-file", str(token), "--models-dir", str(models), "--slots", "1"]
    proc = host.popen(argv, env={"LANFARM_HOME": str(home), "LANFARM_DEVICE": "cpu", "LANFARM_DISCOVERY": "off"})
    lines = Lines(proc.stdout)
    lines.expect(lambda line: line.startswith("lanfarm node listening on"), timeout=90)
    return proc, lines


def bare(lab: Lab, data: Path) -> dict[str, float]:
    server, client = lab.hosts[0], lab.hosts[1]
    srv = server.python(BARE_SERVER, server.ip, str(BARE_PORT))
    Lines(srv.stdout).expect(lambda line: "ready" in line, timeout=30)
    out = client.python(BARE_CLIENT, str(data), f"http://{server.ip}:{BARE_PORT}/up")
    result = Lines(out.stdout).expect_json(lambda m: "seconds" in m, timeout=300)
    srv.kill()
    return {"bytes": result["bytes"], "seconds": result["seconds"]}


def push(lab: Lab, data: Path, root: Path, chunk: int, *, kill_at: float | None = None) -> dict[str, Any]:
    """Push ``data`` to a fresh node; with ``kill_at`` (a fraction), SIGKILL and restart the node there."""
    node_host, client = lab.hosts[0], lab.hosts[1]
    models = root / "node-models"
    models.mkdir(parents=True, exist_ok=True)
    proc, _lines = start_node(node_host, root / "node-home", models)
    rx_before = rx_bytes(node_host)
    pusher = client.python(PUSHER, str(data), f"https://{node_host.ip}:{PORT}", TOKEN, str(chunk))  # TLS, the default
    out = Lines(pusher.stdout)
    first = out.expect_json(lambda m: "have" in m, timeout=60)
    total = first["total"]
    started = time.perf_counter()
    killed_at = None
    if kill_at is not None:
        mark = out.expect_json(lambda m: "have" in m and m["have"] >= kill_at * total, timeout=300)
        # half a chunk further (progress comes per 1 MiB slice): the kill lands inside a chunk
        time.sleep(0.5 * chunk / RATES.get(lab.rate or "", 1e9 / 8))
        proc.kill()
        proc.wait(30)
        killed_at = mark["have"]
        proc, _lines = start_node(node_host, root / "node-home", models)
    done = out.expect_json(lambda m: m.get("done") is True, timeout=600)
    elapsed = time.perf_counter() - started
    stderr = pusher.stderr.read() if pusher.stderr else ""
    proc.kill()
    rx = rx_bytes(node_host) - rx_before
    return {**done, "total": total, "wall": elapsed, "killed_at": killed_at, "rx": rx, "stderr": stderr[-500:]}


def rx_bytes(host: Host) -> int:
    """Bytes the host's link has received (its namespace's own counters)."""
    return int(host.run(["cat", "/sys/class/net/eth0/statistics/rx_bytes"]).stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="1gbit,100mbit")
    parser.add_argument("--mb", type=int, default=0, help="file size (default: 192 MB at 1gbit, 48 MB at 100mbit)")
    parser.add_argument("--chunk-mb", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved; the worst push counts")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    why = available()
    if why:
        print(f"bench/model_push.py: {why}", file=sys.stderr)
        return 2
    chunk = args.chunk_mb << 20
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="lanfarm-push-bench-") as tmp:
        root = Path(tmp)
        for k, rate in enumerate(args.rates.split(",")):
            size_mb = args.mb or (192 if rate == "1gbit" else 48)
            data = root / f"bench-{k}.safetensors"
            with data.open("wb") as fh:
                for _ in range(size_mb):
                    fh.write(os.urandom(1 << 20))
            with Lab(2, rate=rate) as lab:
                pushes: list[float] = []
                bares: list[float] = []
                for r in range(args.repeat):  # interleaved: the machine is shared
                    base = bare(lab, data)
                    got = push(lab, data, root / f"run-{k}-{r}", chunk)
                    clean_rx = got["rx"]  # what one uninterrupted push puts on the node's link
                    pushes.append(got["bytes_sent"] / max(1e-9, got["seconds"]))
                    bares.append(base["bytes"] / base["seconds"])
                    print(
                        f"{rate:>8} run {r + 1}: bare {bares[-1] / RATES[rate]:.3f} of the link, "
                        f"push {pushes[-1] / RATES[rate]:.3f} of the link ({pushes[-1] / bares[-1]:.3f} of bare)",
                        flush=True,
                    )
                push_rate, bare_rate = min(pushes), max(bares)  # the target holds on every run: the worst push
                row = {
                    "rate": rate,
                    "mb": size_mb,
                    "bare_MBps": bare_rate / 1e6,
                    "push_MBps": push_rate / 1e6,
                    "push_vs_link": push_rate / RATES[rate],
                    "push_runs_vs_link": [p / RATES[rate] for p in pushes],
                    "bare_vs_link": bare_rate / RATES[rate],
                    "push_vs_bare": push_rate / bare_rate,
                    "finish": got["error"] or "installed",
                }
                rows.append(row)
                print(
                    f"{rate:>8}: {size_mb} MB  bare (best) {row['bare_MBps']:.1f} MB/s ({row['bare_vs_link']:.3f} of "
                    f"the link)  push (worst of {len(pushes)}) {row['push_MBps']:.1f} MB/s "
                    f"({row['push_vs_link']:.3f} of the link, {row['push_vs_bare']:.3f} of bare)  "
                    f"finish: {row['finish']}",
                    flush=True,
                )
                if k == 0:
                    for frac in (0.3, 0.5, 0.7):
                        res = push(lab, data, root / f"run-resume-{frac}", chunk, kill_at=frac)
                        resume = {
                            "rate": rate,
                            "chunks": res.get("chunks", 0),
                            "sent": res.get("sent"),
                            "resent": res.get("resent"),
                            "restarts": res.get("restarts"),
                            "killed_at_MB": (res["killed_at"] or 0) / 1e6,
                            # bytes the pusher wrote to the connection twice, in chunks
                            "resent_by_pusher": (res.get("bytes_sent", 0) - res["total"]) / chunk,
                            # on the node's link: bytes received beyond an uninterrupted push's, in chunks
                            "resent_on_link": (res["rx"] - clean_rx) / chunk,
                        }
                        rows.append({"resume": resume})
                        print(
                            f"  resume: node SIGKILLed mid-chunk after {resume['killed_at_MB']:.0f} MB, restarted: "
                            f"{resume['sent']} chunks started for {resume['chunks']}, "
                            f"{resume['resent']} of them again ({resume['resent_by_pusher']:.2f} chunks of bytes); "
                            f"on the node's link {resume['resent_on_link']:.2f} chunks more than an uninterrupted "
                            f"push (target <= 1); waits for the node: {resume['restarts']}",
                            flush=True,
                        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
