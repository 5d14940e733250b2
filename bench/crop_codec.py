"""Which lossless codec a shipped crop travels in (issue 12): size, encode and decode time of a 1.1 MP
photo-like crop (smooth gradients, sensor noise, a light blur) in OpenCV's PNG at several levels and in
lossless WebP, side by side in one run. The cost that matters is encode + transfer + decode.

    PYTHONPATH=. python bench/crop_codec.py [--mbit 100]
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np

CODECS = [
    ("PNG, OpenCV default", ".png", []),
    ("PNG level 0", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 0]),
    ("PNG level 1", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1]),
    ("PNG level 3", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 3]),
    ("PNG level 1, RLE", ".png", [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY, 3]),
    ("WebP lossless", ".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),
]


def crop(h: int = 1100, w: int = 1000) -> np.ndarray:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = np.dstack([(x * 255 / w), (y * 255 / h), ((x + y) * 127 / (w + h))]).astype(np.float32)
    img = np.clip(base + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)
    return cv2.GaussianBlur(img, (3, 3), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mbit", type=float, default=100.0, help="link rate for the total column")
    args = parser.parse_args()
    img = crop()
    print(f"| codec | MB | encode ms | decode ms | encode + {args.mbit:g} Mbit/s + decode, ms |")
    print("|---|---|---|---|---|")
    for name, ext, params in CODECS:
        enc = dec = float("inf")
        for _ in range(3):  # best of 3
            t = time.perf_counter()
            ok, buf = cv2.imencode(ext, img, params)
            enc = min(enc, time.perf_counter() - t)
            t = time.perf_counter()
            back = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
            dec = min(dec, time.perf_counter() - t)
        assert ok and np.array_equal(back, img), f"{name} is not lossless"
        wire = len(buf) * 8 / (args.mbit * 1e6)
        total = (enc + wire + dec) * 1000
        print(f"| {name} | {len(buf) / 1e6:.2f} | {enc * 1000:.0f} | {dec * 1000:.0f} | {total:.0f} |")


if __name__ == "__main__":
    main()
