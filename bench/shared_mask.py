"""A batch that shares one mask (``lanfarm run --mask FILE``, a watermark on every photo of a shoot): this
PC's edit and its cut for a node, with the decoded mask kept between images (now) against decoding it
for every image (the baseline: the same code with the cache bypassed), in one run.

Photos: ``--photos`` JPEGs of ``--size`` (default 12 of 6000x4000, as ``lan_speed.py``'s), one mask of 0.5 %
of the pixels for all. Rows: the local edit (``farm.imaging.pipeline.execute``, OpenCV's inpaint, the crop
strategy) and the cut for a node (``farm.imaging.shipping.cut``), seconds per image, best of ``--repeat``.

    PYTHONPATH=. python bench/shared_mask.py [--photos 12] [--size 6000x4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.lan_speed import photos
from farm.core.spec import EditSpec
from farm.engines.installed import default_registry
from farm.imaging import codec
from farm.imaging.pipeline import execute
from farm.imaging.shipping import cut

CACHE = codec._decoded_mask


def per_image(images: list[bytes], mask: bytes, step: Callable[[bytes, bytes], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        CACHE.cache_clear()  # each round decodes the mask at least once
        began = time.perf_counter()
        for image in images:
            step(image, mask)
        best = min(best, (time.perf_counter() - began) / len(images))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=12)
    parser.add_argument("--size", default="6000x4000")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    registry, spec = default_registry(), EditSpec()
    steps: dict[str, Callable[[bytes, bytes], object]] = {
        "edit here (decode, inpaint, encode)": lambda image, mask: execute(image, mask, spec, registry),
        "cut for a node (decode, crop)": lambda image, mask: cut(image, mask, spec),
    }
    with tempfile.TemporaryDirectory(prefix="lanfarm-shared-mask-") as tmp:
        src = photos(Path(tmp) / "in", args.photos, w, h, "jpeg")
        images = [p.read_bytes() for p in sorted(src.glob("*.jpg"))]
        mask = (src / "p00_mask.png").read_bytes()  # one mask for the whole batch
        print(f"{args.photos} JPEGs of {w}x{h}, one mask for all; seconds per image, best of {args.repeat}\n")
        print("| step | mask decoded per image (baseline) | mask decoded once (now) | ratio |")
        print("|---|---|---|---|")
        for label, step in steps.items():
            codec._decoded_mask = CACHE.__wrapped__  # type: ignore[attr-defined]  # the baseline: no cache
            try:
                base = per_image(images, mask, step, args.repeat)
            finally:
                codec._decoded_mask = CACHE
            now = per_image(images, mask, step, args.repeat)
            print(f"| {label} | {base:.3f} s | {now:.3f} s | **{base / now:.2f}x** |", flush=True)


if __name__ == "__main__":
    main()
