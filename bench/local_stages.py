"""This PC's edits in stages (issue 12): the next input decoded and the last result encoded while the engine
runs, against one edit at a time (decode, engine, encode in its slot thread, nothing taken ahead: this PC's
worker before 9486c84), both in the same farm with only this PC. One run, the same photos, alternating
repeats, best of each.

Rows: the SIMULATED GPU engine (a sleep of about 1 s per edit, so that the CPU is free for the codecs, as
beside a real GPU) on 24 MP JPEG and PNG photos with a watermark mask (``bench/lan_speed.py``'s), and
OpenCV's inpaint on the JPEGs (an engine on the CPU: the stages must not cost it). ``--cores 1`` (the
default) pins this process to one core, as the lab's farm host; ``--cores all`` leaves it on every core.

    PYTHONPATH=. python bench/local_stages.py [--photos 8] [--repeat 2] [--cores 1|all]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.lan_speed import crop_bytes, photos  # noqa: E402
from farm import EditSpec, default_registry, execute  # noqa: E402
from farm.core.job import JobState  # noqa: E402
from farm.core.scheduler import WorkerCaps  # noqa: E402
from farm.core.spec import OutputSpec  # noqa: E402
from farm.engines import Registry  # noqa: E402
from farm.runtime.dispatch import Dispatcher, FarmOptions  # noqa: E402
from farm.runtime.planning import plan  # noqa: E402
from farm.runtime.workers import LocalWorker, ProgressCb, StartedCb, Task, _nothing  # noqa: E402


class OneAtATime(LocalWorker):
    """The baseline: this PC's worker before 9486c84, each edit decoded, run and encoded in its slot thread
    before the next is taken (no job ahead of the slot)."""

    def caps(self) -> WorkerCaps:
        return dataclasses.replace(super().caps(), prefetch=0)

    async def run(self, task: Task, progress: ProgressCb, started: StartedCb, computed: StartedCb = _nothing) -> bytes:
        loop = asyncio.get_running_loop()

        def work() -> bytes:
            loop.call_soon_threadsafe(started)
            return execute(task.image, task.mask, task.spec, self.registry, max_pixels=task.max_pixels)

        return await loop.run_in_executor(self._pool, work)


async def batch(src: Path, out: Path, spec: EditSpec, registry: Registry, staged: bool) -> float:
    """The farm with only this PC, one engine slot: its worker in stages, or the baseline's."""
    out.mkdir()
    items, problems = plan([src], None, out, spec.output)
    assert not problems, problems
    start = time.perf_counter()
    async with Dispatcher(registry, options=FarmOptions(local_slots=1, use_local=staged)) as farm:
        if not staged:
            farm._add_worker(OneAtATime(registry))  # the baseline's worker in the same farm
        jobs = await farm.submit(items, spec)
        await farm.wait()
    assert all(j.state is JobState.DONE for j in jobs), [j.error for j in jobs if j.error]
    return time.perf_counter() - start


def row(name: str, src: Path, spec: EditSpec, registry: Registry, args: argparse.Namespace, tmp: Path) -> None:
    base, staged = [], []
    for r in range(args.repeat):
        base.append(asyncio.run(batch(src, tmp / f"{name}-base-{r}", spec, registry, staged=False)))
        staged.append(asyncio.run(batch(src, tmp / f"{name}-staged-{r}", spec, registry, staged=True)))
    b, s = min(base), min(staged)
    print(
        f"| {name} | {b:.2f} s ({b / args.photos:.2f} s an edit) | {s:.2f} s ({s / args.photos:.2f} s an edit) "
        f"| **{b / s:.2f}x** |",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--cores", choices=("1", "all"), default="1")
    args = parser.parse_args()
    if args.cores == "1":
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cores = len(os.sched_getaffinity(0))
    print(f"{args.photos} photos of 6000x4000, masks 0.5 % of the pixels, {cores} core(s), best of {args.repeat}\n")
    print("| engine, photos | one edit at a time | in stages | speed-up |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="lanfarm-local-stages-") as tmp_name:
        tmp = Path(tmp_name)
        jpeg = photos(tmp / "jpeg", args.photos, 6000, 4000, "jpeg")
        png = photos(tmp / "png", args.photos, 6000, 4000, "png")
        _, crop_mp = crop_bytes(jpeg)
        keep = OutputSpec("keep")  # a JPEG gives a JPEG, as `lanfarm run` by default
        sim = EditSpec(engine="sim", params={"seconds_per_mp": 1.0 / crop_mp}, output=keep)  # ~1 s (SIMULATED)
        simulated = default_registry(simulate=True)
        row("simulated GPU, JPEG", jpeg, sim, simulated, args, tmp)
        row("simulated GPU, PNG", png, sim, simulated, args, tmp)
        row("OpenCV, JPEG", jpeg, EditSpec(output=keep), default_registry(), args, tmp)


if __name__ == "__main__":
    main()
