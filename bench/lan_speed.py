"""Never slower than working alone, on any LAN (issue 12): this PC + 2 nodes against this PC alone, in the
LAN lab (network namespaces on a bridge, links shaped with ``tc tbf``), real ``lanfarm node`` processes.

Photos: ``--photos`` of ``--size`` (default 12 of 6000x4000; ``--quick``: 6 of 3000x2000), smooth
gradients with sensor noise, saved as PNG and as JPEG q92, each with a watermark-sized mask (0.5 % of
the pixels). Rows, per link rate (1 Gbit/s, 100 Mbit/s) and format:

- ``alone``: ``lanfarm run --local-only`` on the farm host; ``farm``: ``lanfarm run`` with this PC and the
  two nodes (the default); ``nodes``: ``--no-local``. Real OpenCV engine everywhere. With ``--cores own``
  (the default) this PC runs on core 0 and both node PCs share core 1 (each half as fast as this PC);
  ``--cores shared`` puts every host on both cores, where the nodes take this PC's CPU (a floor).
- bytes on the wire per edit (the farm host's interface counters) against the encoded crop box (the crop
  and its mask up, the edited crop down; ``farm.imaging.shipping.cut`` on the same inputs);
- ``sim``: the same batch with the SIMULATED GPU engine (``--simulate``: a sleep per megapixel, no
  competition for the cores; JPEG photos, ``--sim-formats jpeg,png`` adds PNG ones), against this PC alone
  with that engine and against the ideal: the larger of the compute bound (jobs / the workers'
  combined measured rates, each worker's from its seconds a job between its start there and its end there:
  the engine, and decoding and encoding where the job runs; no transfer) and the link bound (bytes / the
  link rate);
- overlap: the share of the makespan when both directions of the farm host's link are busy (sampled
  every 20 ms from the counters; "busy": over 10 % of the link rate).

Needs root (namespaces). Numbers are ratios of one run; the machine's cores are shared.

    PYTHONPATH=. python bench/lan_speed.py [--quick] [--rates 1gbit,100mbit] [--formats png,jpeg]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from farm.core.spec import EditSpec  # noqa: E402
from farm.imaging.shipping import cut  # noqa: E402
from tests.lab.netlab import Host, Lab, ip  # noqa: E402
from tests.lab.test_lab_farm import start_node  # noqa: E402
from tests.node.helpers import TOKEN, node_env  # noqa: E402

RATES = {"1gbit": 125e6, "100mbit": 12.5e6}


def photos(folder: Path, n: int, w: int, h: int, fmt: str) -> Path:
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:h, 0:w]
    base = np.dstack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)]).astype(np.float32)
    for i in range(n):
        img = np.clip(base + np.random.default_rng(i).normal(0, 5, base.shape), 0, 255).astype(np.uint8)
        if fmt == "png":
            cv2.imwrite(str(folder / f"p{i:02d}.png"), img)
        else:
            out = io.BytesIO()
            Image.fromarray(cv2.cvtColor(img, cv2.COLOR_BGR2RGB)).save(out, "JPEG", quality=92)
            (folder / f"p{i:02d}.jpg").write_bytes(out.getvalue())
        mask = np.zeros((h, w), np.uint8)
        mw, mh = int(w * 0.1), int(h * 0.05)  # 0.5 % of the pixels
        x0, y0 = (w - mw) * (i % 4) // 4, (h - mh) * (i % 3) // 3
        mask[y0 : y0 + mh, x0 : x0 + mw] = 255
        cv2.imwrite(str(folder / f"p{i:02d}_mask.png"), mask)
    return folder


def pin(lab: Lab, args: argparse.Namespace) -> None:
    """``--cores own``: this PC on core 0, the two node PCs on core 1 (a node's work never takes this PC's core,
    as on a real LAN; the node PCs are half as fast). ``shared``: every host on both cores."""
    if args.cores == "own":
        n1, n2, farm_host = lab.hosts
        farm_host.cpus, n1.cpus, n2.cpus = "0", "1", "1"


def crop_bytes(src: Path) -> tuple[int, float]:
    """The bytes of the encoded crop boxes (crop and mask up, crop down) and the crop's megapixels."""
    total, mp = 0, 0.0
    for image in sorted(p for p in src.iterdir() if "_mask" not in p.name):
        mask = image.with_name(image.stem + "_mask.png")
        shipment = cut(image.read_bytes(), mask.read_bytes(), EditSpec())
        assert shipment is not None
        total += 2 * len(shipment.image) + len(shipment.mask)
        mp = shipment.view.image.shape[0] * shipment.view.image.shape[1] / 1e6
    return total, mp


def counters(host: Host) -> tuple[int, int]:
    out = host.run(["cat", "/sys/class/net/eth0/statistics/tx_bytes", "/sys/class/net/eth0/statistics/rx_bytes"])
    tx, rx = out.stdout.split()
    return int(tx), int(rx)


# Runs inside the farm host (one process for the whole run: a counter read every 20 ms, no process started
# per sample, which on this PC's core would slow the farm run and not the alone one): seconds both directions
# were busy over 10 % of the link rate, and seconds sampled, printed when stdin closes.
SAMPLER = """
import sys, threading, time
rate = float(sys.argv[1])
def read():
    with open("/sys/class/net/eth0/statistics/tx_bytes") as f, open("/sys/class/net/eth0/statistics/rx_bytes") as g:
        return int(f.read()), int(g.read())
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
both = total = 0.0
last_t, (last_tx, last_rx) = time.monotonic(), read()
while not done.wait(0.02):
    t, (tx, rx) = time.monotonic(), read()
    dt, busy = t - last_t, 0.1 * rate * (t - last_t)
    total += dt
    if tx - last_tx > busy and rx - last_rx > busy:
        both += dt
    last_t, last_tx, last_rx = t, tx, rx
print(both, total)
"""


class Sampler:
    """Samples the farm host's tx/rx counters to measure how long both directions were busy."""

    def __init__(self, host: Host, rate: float) -> None:
        self.proc = host.python(SAMPLER, str(rate), stdin=subprocess.PIPE)
        self.both = self.total = 0.0

    def stop(self) -> None:
        out, _ = self.proc.communicate("", timeout=30)
        self.both, self.total = (float(v) for v in out.split())


def lanfarm_run(
    host: Host, src: Path, out: Path, nodes: list[Host], tmp: Path, *extra: str, home: str | None = None
) -> dict[str, Any]:
    """``lanfarm run --json`` in ``host``: its report. Each run has a farm home of its own (it starts from
    nothing measured), unless runs name the same ``home`` (a later one recalls what the earlier measured)."""
    token = tmp / "farm-token"
    token.write_text(TOKEN)
    argv = [sys.executable, "-m", "farm.cli", "run", str(src), "--out", str(out), "--interface", host.ip]
    argv += ["--token-file", str(token), "--json", *extra]
    for n in nodes:
        argv += ["--peer", f"{n.ip}:7788"]
    proc = host.run(argv, env=node_env(tmp / f"farm-home-{home or out.name}"), timeout=1800)
    report = json.loads(proc.stdout)
    assert not report["failed"], report["failed"]
    return report


def bench(rate_name: str, fmt: str, args: argparse.Namespace, tmp: Path) -> None:
    w, h = args.size
    src = photos(tmp / f"in-{fmt}", args.photos, w, h, fmt)
    crops, _ = crop_bytes(src)
    rate = RATES[rate_name]
    with Lab(3, rate=rate_name) as lab:
        n1, n2, farm_host = lab.hosts
        pin(lab, args)
        for i, node in enumerate((n1, n2)):
            start_node(node, tmp / f"{rate_name}-{fmt}-n{i}")
        alone = lanfarm_run(farm_host, src, tmp / f"alone-{rate_name}-{fmt}", [], tmp, "--local-only")
        before = counters(farm_host)
        sampler = Sampler(farm_host, rate)
        together = lanfarm_run(farm_host, src, tmp / f"farm-{rate_name}-{fmt}", [n1, n2], tmp)
        sampler.stop()
        after = counters(farm_host)
        nodes_only = lanfarm_run(farm_host, src, tmp / f"nodes-{rate_name}-{fmt}", [n1, n2], tmp, "--no-local")
    remote = sum(wk["done"] for wk in together["workers"].values() if wk["name"] != "this PC")
    moved = sum(after) - sum(before)
    per_edit = moved / max(1, remote)
    per_crop = crops / args.photos
    print(
        f"| {rate_name} | {fmt} | {alone['elapsed']:.1f} s | {together['elapsed']:.1f} s "
        f"| **{alone['elapsed'] / together['elapsed']:.2f}x** | {nodes_only['elapsed']:.1f} s "
        f"({alone['elapsed'] / nodes_only['elapsed']:.2f}x) | {remote}/{args.photos} "
        f"| {per_edit / 1e6:.2f} MB vs crop {per_crop / 1e6:.2f} MB ({per_edit / per_crop:.2f}x) "
        f"| {sampler.both / max(sampler.total, 1e-9):.0%} |",
        flush=True,
    )


def cpu_seconds(host: Host) -> float:
    """CPU seconds used so far by the processes running in ``host`` (``/proc/PID/stat``: utime + stime)."""
    total = 0
    for pid in ip("netns", "pids", host.netns, check=False).stdout.split():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3, utime 14
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def whole_bytes(src: Path) -> float:
    """The mean bytes of one input's files (the photo and its mask): what a node's first input moves."""
    files = list(src.iterdir())
    return sum(p.stat().st_size for p in files) / max(1, len(files) // 2)


def best_possible(per_job: dict[str, float], jobs: int, first_transfer: float, crop_transfer: float) -> float:
    """A lower bound for any schedule of these whole jobs (as ``farm_at_scale.py``'s): this PC's k-th
    result comes no sooner than k of its jobs; a node's no sooner than its first input's upload (whole),
    its job and the result's download (whole), then one job per cycle (its job or a crop's transfer)."""
    ends: list[float] = []
    for name, t in per_job.items():
        if name == "this PC":
            ends += [k * t for k in range(1, jobs + 1)]
        else:
            ends += [t + 2 * first_transfer + k * max(t, crop_transfer) for k in range(jobs)]
    return sorted(ends)[jobs - 1]


def sim_row(rate_name: str, fmt: str, args: argparse.Namespace, tmp: Path) -> None:
    w, h = args.size
    src = photos(tmp / f"sim-{rate_name}-{fmt}", args.photos, w, h, fmt)
    crops, crop_mp = crop_bytes(src)
    seconds_per_mp = 1.0 / crop_mp  # the engine sees the crop: 1 s per edit (SIMULATED GPU)
    with Lab(3, rate=rate_name) as lab:
        n1, n2, farm_host = lab.hosts
        pin(lab, args)
        for i, node in enumerate((n1, n2)):
            start_node(node, tmp / f"sim-{rate_name}-n{i}", "--simulate")
        extra = ["--engine", "sim", "--simulate", "--param", f"seconds_per_mp={seconds_per_mp}"]
        alone = lanfarm_run(farm_host, src, tmp / f"simalone-{rate_name}", [], tmp, "--local-only", *extra)
        # the first batch starts from nothing measured; the next one (the same photos again, as a user's next
        # batch) from what the first measured: each node's speed and link rate (farm.core.remembered)
        for batch in ("first", "next"):
            nodes_before, farm_before = sum(cpu_seconds(n) for n in (n1, n2)), children_cpu()
            out = tmp / f"simout-{rate_name}-{batch}"
            report = lanfarm_run(farm_host, src, out, [n1, n2], tmp, *extra, home=f"sim-{rate_name}-{fmt}")
            nodes_cpu, farm_cpu = sum(cpu_seconds(n) for n in (n1, n2)) - nodes_before, children_cpu() - farm_before
            label = f"sim ({fmt}), {batch} batch"
            sim_report(rate_name, label, args, src, crops, report, farm_cpu, nodes_cpu, alone["elapsed"])


def sim_report(
    rate_name: str,
    label: str,
    args: argparse.Namespace,
    src: Path,
    crops: int,
    report: dict[str, Any],
    farm_cpu: float,
    nodes_cpu: float,
    alone: float,
) -> None:
    # each worker's seconds a job from its start there to its end there (a node's transfers are the link bound's)
    per_job = {wk["name"]: wk["compute_seconds"] / wk["done"] for wk in report["workers"].values() if wk["done"]}
    compute = args.photos / sum(1 / t for t in per_job.values())
    link = crops / RATES[rate_name]
    ideal = max(compute, link)
    bound = best_possible(per_job, args.photos, whole_bytes(src) / RATES[rate_name], link / args.photos)
    # the CPU the batch took (decoding, cutting, encoding 24 MP frames, TLS), on the cores each side has
    cpu = max(farm_cpu, nodes_cpu) if args.cores == "own" else (farm_cpu + nodes_cpu) / 2
    makespan = report["elapsed"]
    print(
        f"| {rate_name} | {label} | makespan {makespan:.1f} s (this PC alone {alone:.1f} s: "
        f"{alone / makespan:.2f}x) | ideal {ideal:.1f} s "
        f"(compute {compute:.1f}, link {link:.1f}) | **{ideal / makespan:.2f} of ideal** "
        f"| best possible {bound:.1f} s: **{bound / makespan:.2f}** "
        f"| CPU: this PC {farm_cpu:.1f} s, the nodes {nodes_cpu:.1f} s; with it {max(ideal, cpu) / makespan:.2f} |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="6 photos of 3000x2000")
    parser.add_argument("--rates", default="1gbit,100mbit")
    parser.add_argument("--formats", default="png,jpeg", help='"" for the sim rows only')
    parser.add_argument("--no-sim", action="store_true")
    parser.add_argument(
        "--sim-formats", default="jpeg", help="the sim rows' photos: jpeg, png (40 MB frames: a GPU PC on a slow link)"
    )
    parser.add_argument(
        "--cores", choices=("own", "shared"), default="own", help="own: this PC on core 0, the nodes on core 1"
    )
    args = parser.parse_args()
    args.photos, args.size = (6, (3000, 2000)) if args.quick else (12, (6000, 4000))
    rates = args.rates.split(",")
    cores = "this PC on core 0, both nodes on core 1" if args.cores == "own" else "every host on both cores"
    print(f"{args.photos} photos of {args.size[0]}x{args.size[1]}, masks 0.5 % of the pixels; {cores}\n")
    print("| link | format | this PC alone | this PC + 2 nodes | speed-up | 2 nodes only | edits on nodes "
          "| wire bytes per node edit | both directions busy |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="lanfarm-lan-speed-") as tmp:
        for rate in rates:
            for fmt in filter(None, args.formats.split(",")):  # --formats "": the sim rows only
                bench(rate, fmt, args, Path(tmp) / f"{rate}-{fmt}")
        if not args.no_sim:
            print()
            for rate in rates:
                for fmt in filter(None, args.sim_formats.split(",")):
                    sim_row(rate, fmt, args, Path(tmp) / f"sim-{rate}-{fmt}")


if __name__ == "__main__":
    main()
