"""Benchmark: per-call CPU time of the AI engines on random-weight models with the real architectures.

LaMa (big-lama size, 51 M params) at 512x512, Real-ESRGAN Compact x4 (full size) at 256x256 and the
tiny random Stable Diffusion inpaint pipeline (2 steps, 64x64), each loaded through the registry as a
user's file is, flush-denormal on (the engines set it when they load). Engine call alone, and the whole
``farm.imaging.pipeline.execute`` (PNG decode, padding, paste-back, PNG encode) around it.

    python bench/engines.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import cv2
    import numpy as np
    import torch

    from farm.core.spec import EditSpec
    from farm.engines.base import CancelToken, no_progress
    from farm.engines.installed import default_registry
    from farm.imaging.pipeline import execute
    from tests.farm.engines import builders as b

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        b.save_safetensors(b.lama_module().state_dict(), models / "lama.safetensors")
        from spandrel.architectures.Compact import Compact

        torch.manual_seed(0)
        b.save_safetensors(Compact(upscale=4).state_dict(), models / "compact-x4.safetensors")
        b.build_tiny_sd_inpaint(models / "sd-tiny")
        registry = default_registry(models, device="cpu")
        rng = np.random.default_rng(0)

        def case(label: str, engine_id: str, size: int, params: dict, with_mask: bool) -> None:  # type: ignore[type-arg]
            img = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 2)
            mask = np.zeros((size, size), np.uint8)
            mask[size // 4 : size // 2, size // 3 : 2 * size // 3] = 255
            start = time.perf_counter()
            engine = registry.engine(engine_id)
            load = time.perf_counter() - start
            full = registry.descriptor(engine_id).params.validate(params)
            m = mask if with_mask else None
            first, _ = timed(lambda: engine.run(img, m, full, no_progress, CancelToken()), 1)
            best, median = timed(lambda: engine.run(img, m, full, no_progress, CancelToken()), args.repeat)
            png = cv2.imencode(".png", img)[1].tobytes()
            mpng = cv2.imencode(".png", mask)[1].tobytes() if with_mask else None
            spec = EditSpec(op="inpaint" if with_mask else "upscale", engine=engine_id, params=params)
            pbest, _ = timed(lambda: execute(png, mpng, spec, registry), args.repeat)
            rows.append((label, load, first, best, median, pbest))

        case("LaMa 512x512", "lama", 512, {}, True)
        case("Compact x4 256x256", "upscale", 256, {}, False)
        case("tiny SD 2 steps 64x64", "sd-inpaint", 64, {"steps": 2, "seed": 1, "prompt": "a red cat"}, True)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu, best/median of {args.repeat}")
    print(f"| {'case':<22} | load s | 1st call s | call best s | call median s | execute best s |")
    print(f"|{'-' * 24}|--------|------------|-------------|---------------|----------------|")
    for label, load, first, best, median, pbest in rows:
        print(f"| {label:<22} | {load:6.2f} | {first:10.2f} | {best:11.3f} | {median:13.3f} | {pbest:14.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
