"""Issue 19: the tile stitcher's peak memory and time against the naive way, in one run.

A 4x upscale of a 12 MP image (4000x3000 -> 16000x12000, 576 MB of 8-bit pixels) split into 12 tiles
(``grid_for``, overlap 32). Each tile's result (a cubic 4x resize of its window: photo-like content)
is saved through ``Stitch.save`` as a stored (level 0) PNG, to keep the run short; then, each in a
fresh process, from the same staged tiles:

- streaming: ``Stitch.write`` to PNG (feathered blend, bands of 64 rows, PNG streamed out);
- naive: every tile's core copied into one full-size array, then ``cv2.imencode(".png")`` and one
  write (no blending at all: the cheapest full-array way).

Peak memory is the process's peak RSS during the step (Linux: the peak is reset through
/proc/self/clear_refs after the imports, so it is the step's own), minus the RSS before it.

    PYTHONPATH=. python bench/tile_stitch.py [--width 4000 --height 3000 --scale 4 --parts 12] [--jpeg]

``--jpeg`` adds the memmap path (``--format jpeg``) of the streaming stitcher.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import cv2
import numpy as np

CHILD = """
import json, resource, sys, time
from pathlib import Path
import cv2, numpy as np
from farm.core.spec import OutputSpec
from farm.imaging.codec import Picture
from farm.imaging.tiles import Stitch, grid_for

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
    return 0

mode, folder, w, h, scale, parts = sys.argv[1], Path(sys.argv[2]), *map(int, sys.argv[3:7])
tiles = grid_for(w, h, parts, overlap=32)
stitch = Stitch(folder / "stage", w, h, tiles, scale)
source = Picture(color=np.zeros((h, w, 3), np.uint8))  # only its size and metadata are read
source.color[:1] = 1  # touched: its pages are counted before the step, not in it
try:
    open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS (VmHWM)
except OSError:
    pass
before = status("VmRSS:")
start = time.perf_counter()
if mode == "streaming":
    stitch.write(folder / "streamed.png", source, OutputSpec("png"), overwrite=True)
    out = folder / "streamed.png"
elif mode == "jpeg":
    stitch.write(folder / "streamed.jpg", source, OutputSpec("jpeg", 92), overwrite=True)
    out = folder / "streamed.jpg"
else:
    full = np.empty((h * scale, w * scale, 3), np.uint8)
    for t in tiles:
        rows = stitch._read_rows(t, 0, t.height * scale)
        c, win = t.core, t.window
        full[c.y0 * scale : c.y1 * scale, c.x0 * scale : c.x1 * scale] = rows[
            (c.y0 - win.y0) * scale : (c.y1 - win.y0) * scale, (c.x0 - win.x0) * scale : (c.x1 - win.x0) * scale
        ]
    ok, buf = cv2.imencode(".png", full)
    out = folder / "naive.png"
    out.write_bytes(buf.tobytes())
seconds = time.perf_counter() - start
peak = status("VmHWM:") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "peak": peak - before, "bytes": out.stat().st_size}))
"""


def photo(width: int, height: int) -> np.ndarray:
    """A photo-like source: smooth shapes, edges, some noise."""
    rng = np.random.default_rng(0)
    small = cv2.GaussianBlur(rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8), (0, 0), 1.2)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.int16)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--parts", type=int, default=12)
    parser.add_argument("--jpeg", action="store_true", help="also time the JPEG (memmap) path")
    args = parser.parse_args()
    from farm.imaging.tiles import Stitch, grid_for

    w, h, s = args.width, args.height, args.scale
    out_mb = w * s * h * s * 3 / 1e6
    with tempfile.TemporaryDirectory(prefix="tile-stitch-") as tmp:
        folder = Path(tmp)
        src = photo(w, h)
        tiles = grid_for(w, h, args.parts, overlap=32)
        stitch = Stitch(folder / "stage", w, h, tiles, s)
        start = time.perf_counter()
        for t in tiles:
            win = t.window
            up = cv2.resize(src[win.y0 : win.y1, win.x0 : win.x1], (t.width * s, t.height * s), cv2.INTER_CUBIC)
            stitch.save(t.index, cv2.imencode(".png", up, [cv2.IMWRITE_PNG_COMPRESSION, 0])[1].tobytes())
        print(f"{len(tiles)} tiles of a {w}x{h} x{s} upscale -> {w * s}x{h * s} ({out_mb:.0f} MB of pixels);")
        print(f"saved as stored PNGs (decoded, staged) in {time.perf_counter() - start:.1f} s\n")
        modes = ["streaming", "naive"] + (["jpeg"] if args.jpeg else [])
        results = {}
        for mode in modes:
            cmd = [sys.executable, "-c", textwrap.dedent(CHILD), mode, str(folder), str(w), str(h), str(s)]
            done = subprocess.run([*cmd, str(args.parts)], capture_output=True, text=True, check=True)
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print("| way | seconds | peak RSS MB | peak / output pixels | file MB |")
        print("|---|---|---|---|---|")
        for mode, r in results.items():
            peak_mb = r["peak"] / 1e6
            print(f"| {mode} | {r['seconds']:.1f} | {peak_mb:.0f} | {peak_mb / out_mb:.2f} | {r['bytes'] / 1e6:.0f} |")
        st, nv = results["streaming"], results["naive"]
        print(
            f"\nstreaming / naive: time {st['seconds'] / nv['seconds']:.2f}x, "
            f"peak memory {st['peak'] / nv['peak']:.3f}x, file size {st['bytes'] / nv['bytes']:.2f}x"
        )


if __name__ == "__main__":
    main()
