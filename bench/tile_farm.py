"""Issue 19: one big upscale cut into tiles across the farm, in the LAN lab, in one run (ratios).

A farm host and 3 node hosts on a bridge (network namespaces, every link ``tc tbf`` 1 Gbit/s), real
``lanfarm node`` processes (``--slots 1 --device cpu --simulate``), ``lanfarm run`` on the farm host
with ``--no-discovery`` and ``--peer``. The input: one photo (4000x3000 = 12 MP; ``--quick``: 2000x1500),
a smooth gradient with sensor noise, upscaled 4x (16000x12000, 576 MB of pixels). Rows, each measured
in this one run against its own baseline, ``--no-local --peer N1 --tiles off`` (one node, untiled):

- ``sim``: the SIMULATED GPU upscaler ``sim-upscale`` (sleeps ``--seconds-per-mp``, default 2, per input
  megapixel, then repeats pixels 4x4: no competition for the cores) on 3 nodes + this PC. The ideal is
  a quarter of the 1-node makespan (efficiency = ideal / makespan), and in brackets a quarter of the
  bare engine time (what a farm with no per-image cost at all would reach). Then the same tiles with
  ``--no-local`` (3 nodes): the farm process only stitches, so its peak memory is the stitcher's.
- ``real``: a random-weight Real-ESRGAN Compact x4 (spandrel's real architecture, ``--feat 8 --conv 2``
  to fit the time; the tests' model is 16/4; CPU) on 3 nodes + this PC. On this 2-core machine the four
  workers compete for the same two cores, so this row is a floor, not what separate PCs see.
- tiles and who ran them: the ``--json`` summary's per-worker counts (each tile is one of the farm's jobs).
- peak RSS of the ``lanfarm run`` process (``/usr/bin/time -f %M``: its maximum resident set) in each
  run, against the output's raw pixels (576 MB).
- the outputs: each is checked to be 16000x12000; the sim rows' tiled output must equal the untiled
  one and the input's pixels repeated 4x4 exactly (asserted); the real rows' difference is printed.

The farm runs ask for ``--tiles auto`` (the default). Should auto run the image whole, the bench prints
a NOTE and uses ``--tiles N``, N being what ``tile_count`` picks with the 4 workers known.

Measured here (a 2-core machine; 1 Gbit/s):

| engine | 1 node | 3 nodes + this PC | speed-up | tiles | efficiency (bare) | peak RSS 1 node / farm |
|---|---|---|---|---|---|---|
| sim 2 s/MP | 34.5 s | 21.4 s | 1.61x | 6 (auto): N1 1, N2 2, N3 1, this PC 2 | 0.40 (0.28) | 384 / 663 MB |
| sim 2 s/MP | 35.2 s | 22.9 s | 1.54x | auto | 0.38 (0.26) | 385 / 566 MB |
| Compact x4 8/2, CPU | 49.8 s | 58.4 s | 0.85x (a floor: 4 workers, 2 cores) | auto | 0.21 | 872 / 1721 MB |

- The first version of this bench found two faults, both mended since:
  - ``lanfarm run`` queued the image before the ``--peer`` nodes had answered, so ``--tiles auto`` saw
    one worker and ran it whole (34.2 / 32.9 s). It now lets the nodes answer first.
  - The tiles' saves decoded their results all at once. The stitch alone (sim, ``--no-local``, 3 tiles)
    peaked at 979 / 926 MB = 1.70 / 1.61x the output's pixels; with one save at a time it peaks at
    701 MB = 1.22x. ``Stitch.write`` alone holds 33 MB (``tile_stitch.py``); the rest is the tiles' PNG
    results, held as they download.
- outputs: sim tiled == untiled == the input repeated 4x4; real: max difference 0 (overlap 32).
- Where the sim row's time goes:
  - 6.2 s of engine per tile (2 s/MP x 3.1 MP with the overlap);
  - each node then encodes a 48 MP PNG and sends it, and this PC decodes and stages it;
  - ``Stitch.write`` (about 11 s for this output, one thread) starts only after the last tile is in.

  The engine is the smaller part, so a faster stitch (tile rows streamed as they arrive) is the next gain.

Needs root (namespaces). Numbers are ratios of one run; the machine's cores are shared.

    sudo PYTHONPATH=. .venv/bin/python bench/tile_farm.py [--quick] [--only sim,real] [--tiles auto|N]
        [--seconds-per-mp 2] [--feat 8 --conv 2] [--rate 1gbit|100mbit]

``--quick`` (2000x1500) takes about 3 min; ``--only sim`` about 3 min; the full run 5-6 min.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.lab.netlab import Host, Lab, available  # noqa: E402
from tests.lab.test_lab_farm import start_node  # noqa: E402
from tests.node.helpers import TOKEN, node_env  # noqa: E402

MODEL = "compact-x4.safetensors"
RATES = {"1gbit": 125e6, "100mbit": 12.5e6}
SCALE = 4


def photo(path: Path, w: int, h: int) -> Path:
    """A smooth gradient with sensor noise, as a PNG."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.dstack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h)])
    img = np.clip(base + np.random.default_rng(0).normal(0, 5, base.shape), 0, 255).astype(np.uint8)
    cv2.imwrite(str(path), img)
    return path


def models(folder: Path, feat: int, conv: int) -> Path:
    """A models folder with a random-weight Compact x4 (the real architecture, as spandrel detects it)."""
    import torch
    from spandrel.architectures.Compact import Compact

    from tests.farm.engines.builders import save_safetensors

    folder.mkdir(parents=True)
    torch.manual_seed(0)
    save_safetensors(Compact(num_feat=feat, num_conv=conv, upscale=SCALE).eval().state_dict(), folder / MODEL)
    return folder


def lanfarm_run(host: Host, src: Path, out: Path, peers: list[Host], tmp: Path, *extra: str) -> dict[str, Any]:
    """``lanfarm run --json`` on ``host`` under ``/usr/bin/time``: its summary, plus ``peak_rss`` (bytes)."""
    token = tmp / "farm-token"
    token.write_text(TOKEN)
    rss = out.with_name(out.name + ".rss")
    argv = ["/usr/bin/time", "-f", "%M", "-o", str(rss), sys.executable, "-m", "farm.cli", "run", str(src)]
    argv += ["--out", str(out), "--no-discovery", "--token-file", str(token), "--json", "--fresh", *extra]
    for n in peers:
        argv += ["--peer", f"{n.ip}:7788"]
    # a home of its own: each run starts from nothing measured (farm.core.remembered), as the baseline did
    env = node_env(tmp / f"farm-home-{out.name}", LANFARM_DEVICE="cpu", LANFARM_MODELS_DIR=str(tmp / "models"))
    proc = host.run(argv, env=env, check=False, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"lanfarm run failed ({proc.returncode}): {proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(proc.stdout)
    assert not report["failed"] and len(report["done"]) == 1, report
    report["peak_rss"] = int(rss.read_text().split()[-1]) * 1024
    report["output"] = report["done"][0]
    return report


def who(report: dict[str, Any]) -> str:
    """The tiles (jobs) each worker ran, e.g. ``this PC 3, node-10.77.0.1 3``."""
    done = [(w["name"], w["parts"]) for w in report["workers"].values() if w["parts"]]
    failed = sum(w["failed"] for w in report["workers"].values())
    text = ", ".join(f"{name.replace('node-10.77.0.', 'N')} {n}" for name, n in sorted(done))
    return text + (f" ({failed} failed attempts)" if failed else "")


def tiles_of(report: dict[str, Any]) -> int:
    return sum(w["parts"] for w in report["workers"].values())


def read(path: str) -> np.ndarray:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    assert img is not None, path
    return img


def auto_choice(src: Path, mp: float, rate: float) -> int:
    """The tiles ``--tiles auto`` picks once the 3 nodes and this PC are known (none measured yet)."""
    from farm.core.split_choice import Candidate, tile_count
    from farm.runtime.splitting import max_tiles

    workers = [Candidate(None, local=True)] + [Candidate(None, rate)] * 3
    return tile_count("auto", mp, 2 * src.stat().st_size, workers, max_tiles=max_tiles(mp))


def row(kind: str, args: argparse.Namespace, lab: Lab, src: Path, tmp: Path, tiles: str) -> dict[str, Any]:
    """1 node untiled against 3 nodes + this PC with ``--tiles auto``; when auto ran the image whole (see
    the note printed), the farm run is ``--tiles N`` with N what auto would pick knowing the nodes.
    ``tiles``: ``auto`` to try auto first, else the count to use at once."""
    n1, n2, n3, farm_host = lab.hosts
    if kind == "real":
        extra = ["--engine", "upscale", "--model", MODEL]
    else:
        extra = ["--engine", "sim-upscale", "--simulate", "--param", f"seconds_per_mp={args.seconds_per_mp}"]
    one = lanfarm_run(farm_host, src, tmp / f"{kind}-one", [n1], tmp, *extra, "--no-local", "--tiles", "off")
    result: dict[str, Any] = {"one": one, "tiles": tiles}
    if tiles == "auto":
        farm = lanfarm_run(farm_host, src, tmp / f"{kind}-auto", [n1, n2, n3], tmp, *extra, "--tiles", "auto")
        result["auto"] = farm
        if tiles_of(farm) == 1:
            result["tiles"] = str(args.auto_tiles)
    if result["tiles"] != "auto":
        farm = lanfarm_run(farm_host, src, tmp / f"{kind}-farm", [n1, n2, n3], tmp, *extra, "--tiles", result["tiles"])
    result["farm"] = farm
    if kind == "sim":  # the stitch alone: no tile runs in the farm process
        result["stitch"] = lanfarm_run(
            farm_host, src, tmp / f"{kind}-stitch", [n1, n2, n3], tmp, *extra, "--no-local", "--tiles", result["tiles"]
        )
    w, h = args.size
    a, b = read(one["output"]), read(farm["output"])
    assert a.shape == b.shape == (h * SCALE, w * SCALE, 3), (a.shape, b.shape)
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    if kind == "sim":
        assert np.array_equal(a, b), f"the tiled sim output differs from the untiled one (max {diff.max()})"
        expected = np.repeat(np.repeat(read(str(src)), SCALE, axis=0), SCALE, axis=1)
        assert np.array_equal(a, expected), "the sim output is not the input's pixels repeated"
        assert np.array_equal(read(result["stitch"]["output"]), a), "the --no-local tiled sim output differs"
    result.update(max_diff=int(diff.max()), mean_diff=float(diff.mean()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 2000x1500 photo")
    parser.add_argument("--seconds-per-mp", type=float, default=2.0, help="the simulated engine's speed")
    parser.add_argument("--rate", default="1gbit", choices=sorted(RATES), help="tc tbf rate of every link")
    parser.add_argument("--only", default="sim,real", help="rows, in order: sim, real")
    parser.add_argument("--tiles", default="auto", help="the farm runs' --tiles: auto (then N if it ran whole) or N")
    parser.add_argument("--feat", type=int, default=8, help="Compact's num_feat (the tests' model: 16)")
    parser.add_argument("--conv", type=int, default=2, help="Compact's num_conv (the tests' model: 4)")
    args = parser.parse_args()
    why = available()
    if why:
        raise SystemExit(f"bench/tile_farm.py: {why}")
    args.size = (2000, 1500) if args.quick else (4000, 3000)
    w, h = args.size
    mp = w * h / 1e6
    out_mb = mp * SCALE * SCALE * 3
    results: dict[str, dict[str, Any]] = {}
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lanfarm-tile-farm-") as name:
        tmp = Path(name)
        src = photo(tmp / "photo.png", w, h)
        # what auto would pick knowing the 4 workers (a --quick image is too small for auto: then 4)
        args.auto_tiles = auto_choice(src, mp, RATES[args.rate])
        picked = "what auto picks once the 3 nodes and this PC are known"
        if args.auto_tiles == 1:
            args.auto_tiles, picked = 4, "one per worker (auto would run this small image whole anyway)"
        models(tmp / "models", args.feat, args.conv)
        with Lab(4, rate=args.rate) as lab:
            for i, host in enumerate(lab.hosts[:3]):
                node_args = ("--simulate", "--slots", "1", "--device", "cpu", "--no-advertise")
                start_node(host, tmp / f"n{i}", *node_args, "--models-dir", str(tmp / "models"))
            tiles = args.tiles
            for kind in args.only.split(","):
                results[kind] = row(kind, args, lab, src, tmp, tiles)
                if "auto" in results[kind] and results[kind]["tiles"] != "auto":
                    tiles = results[kind]["tiles"]  # auto ran it whole: the next row goes straight to N
    print(f"\none {w}x{h} photo ({mp:.0f} MP) upscaled 4x -> {w * SCALE}x{h * SCALE} ({out_mb:.0f} MB of pixels),")
    took = time.monotonic() - start
    print(f"links tbf {args.rate}; 1 node: --no-local --tiles off; farm: 3 nodes + this PC; bench {took:.0f} s")
    for kind, r in results.items():
        auto = r.get("auto")
        if auto is not None and r["tiles"] != "auto":
            print(
                f"NOTE ({kind}): --tiles auto ran the image whole ({who(auto)}, {auto['elapsed']:.1f} s, peak RSS "
                f"{auto['peak_rss'] / 1e6:.0f} MB): the split "
                f"is chosen at submit, before the peers answered; the farm row used --tiles {r['tiles']}, {picked}"
            )
    print("\n| engine | 1 node | 3 nodes + this PC | speed-up | tiles: who ran them | ideal | efficiency "
          "| peak RSS of lanfarm run: 1 node / farm (/ output pixels) | outputs |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, r in results.items():
        one, farm = r["one"], r["farm"]
        t1, tf = one["elapsed"], farm["elapsed"]
        if kind == "sim":
            ideal, bare = t1 / 4, args.seconds_per_mp * mp / 4
            ideal_text = f"{ideal:.1f} s (bare engine {bare:.1f} s)"
            eff = f"**{ideal / tf:.2f}** ({bare / tf:.2f})"
            check = "tiled == untiled == input repeated 4x4 (asserted)"
            engine = f"sim-upscale {args.seconds_per_mp:g} s/MP"
        else:
            ideal_text, eff = f"{t1 / 4:.1f} s", f"{t1 / 4 / tf:.2f} (2 shared cores: a floor)"
            check = f"max diff {r['max_diff']}, mean {r['mean_diff']:.3f}"
            engine = f"Compact x4 ({args.feat} feat, {args.conv} conv), random weights, CPU"
        print(
            f"| {engine} | {t1:.1f} s | {tf:.1f} s | **{t1 / tf:.2f}x** | {tiles_of(farm)} (--tiles {r['tiles']}): "
            f"{who(farm)} | {ideal_text} | {eff} | {one['peak_rss'] / 1e6:.0f} MB / {farm['peak_rss'] / 1e6:.0f} MB "
            f"({one['peak_rss'] / 1e6 / out_mb:.2f} / {farm['peak_rss'] / 1e6 / out_mb:.2f}) | {check} |",
            flush=True,
        )
    stitch = results.get("sim", {}).get("stitch")
    if stitch is not None:
        rss = stitch["peak_rss"] / 1e6
        print(
            f"\nthe stitch alone (sim, --no-local, 3 nodes, {tiles_of(stitch)} tiles, none run in the farm process): "
            f"{stitch['elapsed']:.1f} s, peak RSS of lanfarm run **{rss:.0f} MB = {rss / out_mb:.2f} of the output's "
            f"pixels** ({out_mb:.0f} MB)"
        )


if __name__ == "__main__":
    main()
