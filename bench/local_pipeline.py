"""Benchmark: `lanfarm run` (OpenCV engine) against a bare imread + cv2.inpaint + imwrite loop.

Same 40 generated 1024x768 images and masks, same engine settings (Navier-Stokes, radius 4), one run.
Prints ms per image for each and the pipeline's overhead over the bare loop.

    python bench/local_pipeline.py [--count 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_inputs(folder: Path, count: int) -> tuple[Path, Path]:
    src, masks = folder / "in", folder / "masks"
    src.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        img = cv2.GaussianBlur(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8), (0, 0), 3)
        mask = np.zeros((768, 1024), np.uint8)
        for _ in range(3):
            x, y = int(rng.integers(50, 950)), int(rng.integers(50, 700))
            cv2.circle(mask, (x, y), int(rng.integers(15, 45)), 255, -1)
        cv2.imwrite(str(src / f"img{i:03d}.png"), img)
        cv2.imwrite(str(masks / f"img{i:03d}.png"), mask)
    return src, masks


def bare_loop(src: Path, masks: Path, out: Path) -> float:
    start = time.perf_counter()
    for path in sorted(src.iterdir()):
        img = cv2.imread(str(path))
        mask = cv2.imread(str(masks / path.name), cv2.IMREAD_GRAYSCALE)
        res = cv2.inpaint(img, mask, 4, cv2.INPAINT_NS)
        cv2.imwrite(str(out / path.name), res)
    return time.perf_counter() - start


def cli(src: Path, masks: Path, out: Path, *extra: str) -> float:
    # this PC only: no node, and never mDNS discovery (nothing of a benchmark may leave the machine)
    env = dict(os.environ, PYTHONPATH=str(REPO), LANFARM_DISCOVERY="off")
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "farm.cli",
            "run",
            "--local-only",
            str(src),
            "--mask",
            str(masks),
            "--out",
            str(out),
            "--param",
            "method=ns",
            "--param",
            "radius=4",
            *extra,
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def in_process(src: Path, masks: Path, out: Path, hd: str) -> float:
    sys.path.insert(0, str(REPO))
    from farm.core.job import JobState
    from farm.core.spec import EditSpec, HdStrategy
    from farm.engines.installed import default_registry
    from farm.runtime.dispatch import Dispatcher, FarmOptions
    from farm.runtime.planning import plan

    spec = EditSpec(params={"method": "ns", "radius": 4}, hd=HdStrategy(hd))  # type: ignore[arg-type]
    registry = default_registry()

    async def run() -> None:
        async with Dispatcher(registry, options=FarmOptions(local_slots=1)) as farm:
            jobs = await farm.submit(plan([src], masks, out, ".png")[0], spec)
            await farm.wait()
        assert all(j.state is JobState.DONE for j in jobs)

    start = time.perf_counter()
    asyncio.run(run())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        src, masks = make_inputs(root, args.count)
        runs: dict[str, list[float]] = {}

        def timed(name: str, fn) -> None:  # type: ignore[no-untyped-def]
            out = root / f"out-{name}"
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            runs.setdefault(name, []).append(fn(out) / args.count * 1000)

        for _ in range(args.repeat):  # interleaved, so machine noise hits every variant alike
            timed("bare loop (imread+inpaint+imwrite)", lambda o: bare_loop(src, masks, o))
            timed("farm runtime in-process, hd=original", lambda o: in_process(src, masks, o, "original"))
            timed("lanfarm run --jobs 1 --hd original", lambda o: cli(src, masks, o, "--jobs", "1", "--hd", "original"))
            timed("lanfarm run --jobs 1 (hd=crop, default)", lambda o: cli(src, masks, o, "--jobs", "1"))
            timed("lanfarm run --jobs 2 --hd original", lambda o: cli(src, masks, o, "--jobs", "2", "--hd", "original"))
    base = min(runs["bare loop (imread+inpaint+imwrite)"])
    print(f"{args.count} images 1024x768, cv2 NS radius 4, best of {args.repeat}; {os.cpu_count()} cores")
    print(f"{'variant':45s} {'ms/image':>9s} {'vs bare':>8s}")
    for name, values in runs.items():
        best = min(values)
        print(f"{name:45s} {best:9.1f} {best / base:8.2f}x")


if __name__ == "__main__":
    main()
