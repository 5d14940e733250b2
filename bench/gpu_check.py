"""GPU check (prepared for a CUDA machine; issue 13): detection, slot-to-device mapping over every GPU,
random-weight LaMa, upscaler and tiny-SD runs on CUDA in fp32 and fp16, and the VRAM figures /v1/info reports.

Nothing is downloaded: the models are random-weight files with the real architectures
(tests/farm/engines/builders.py), loaded back through the user's code path (``default_registry``).

    PYTHONPATH=. python bench/gpu_check.py            # on a PC with CUDA GPUs; exit 0 when every check passes
    PYTHONPATH=. python bench/gpu_check.py --cpu      # a dry run of the same code path on the CPU (small sizes)
    PYTHONPATH=. python bench/gpu_check.py --json out.json

Prints one line per check (PASS/FAIL, figures) and a summary; needs the ai extra (torch, spandrel,
diffusers, transformers).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

RESULTS: list[dict[str, Any]] = []


def check(name: str, fn: Callable[[], dict[str, Any]]) -> None:
    t0 = time.perf_counter()
    try:
        figures = fn()
        ok = True
    except Exception as exc:  # a check that fails reports why and the rest still run
        figures, ok = {"error": f"{type(exc).__name__}: {exc}"}, False
    figures["seconds"] = round(time.perf_counter() - t0, 3)
    RESULTS.append({"check": name, "ok": ok, **figures})
    print(f"{'PASS' if ok else 'FAIL'} {name}: {json.dumps(figures)}", flush=True)


def image(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : size // 2, size // 4 : size // 2] = 255
    return img, mask


def build_models(folder: Path) -> None:
    from tests.farm.engines import builders

    builders.save_safetensors(builders.lama_module().state_dict(), folder / "big-lama.safetensors")
    builders.save_safetensors(builders.compact_state_dict(scale=4), folder / "realesr-compact-x4.safetensors")
    builders.build_tiny_sd_inpaint(folder / "sd-inpaint-tiny")


def detection() -> dict[str, Any]:
    import torch

    from farm.local import hardware as hw

    probed = hw.probe()
    count = torch.cuda.device_count()
    assert probed.backend == "cuda", f"hardware probe says {probed.backend!r}"
    assert len(probed.gpus) == count, f"probe found {len(probed.gpus)} GPUs, torch {count}"
    return {"gpus": [g.name for g in probed.gpus], "torch": torch.__version__, "cuda": torch.version.cuda}


def vram_figures() -> dict[str, Any]:
    """/v1/info's hardware.gpus (farm.local.hardware) against torch's own figures, per GPU, within 5 %."""
    import torch

    from farm.local import hardware as hw

    out = {}
    for gpu in hw.refresh(hw.probe()).gpus:
        free, total = torch.cuda.mem_get_info(gpu.index)
        assert abs(gpu.vram_total - total) <= 0.05 * total, (gpu.index, gpu.vram_total, total)
        assert abs(gpu.vram_free - free) <= 0.05 * total, (gpu.index, gpu.vram_free, free)
        out[f"cuda:{gpu.index}"] = {"total_mb": gpu.vram_total >> 20, "free_mb": gpu.vram_free >> 20}
    return out


def slot_mapping(models: Path) -> dict[str, Any]:
    """One slot per GPU, slot i on cuda:i: a LaMa loaded by slot i's registry holds memory on GPU i only."""
    import torch

    from farm.engines.devices import slot_devices
    from farm.engines.installed import default_registry
    from farm.local import hardware as hw

    probed = hw.probe()
    devices = slot_devices(len(probed.gpus), backend=probed.backend)
    assert devices == [f"cuda:{i}" for i in range(torch.cuda.device_count())], devices
    placed = {}
    for device in devices:
        assert device is not None
        index = int(device.split(":")[1])
        before = [torch.cuda.memory_allocated(i) for i in range(len(devices))]
        registry = default_registry(models, device=device)
        engine = registry.engine("lama", "big-lama.safetensors")
        after = [torch.cuda.memory_allocated(i) for i in range(len(devices))]
        grew = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if b > a]
        assert grew == [index], f"{device}: memory grew on GPUs {grew}"
        placed[device] = {
            "engine_device": str(getattr(engine, "_device", "?")),
            "mb": (after[index] - before[index]) >> 20,
        }
        del engine, registry
        torch.cuda.empty_cache()
    return placed


def engine_run(
    models: Path, device: str, engine_id: str, model: str, size: int, params: dict[str, Any]
) -> dict[str, Any]:
    """The user's path: registry -> engine -> run, on ``device``; the dtype the engine chose, time, peak memory."""
    import torch

    from farm.engines.base import CancelToken
    from farm.engines.installed import default_registry

    registry = default_registry(models, device=device)
    engine = registry.engine(engine_id, model)
    img, mask = image(size)
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    from farm.core.spec import EditSpec

    op = sorted(registry.descriptor(engine_id).operations)[0]
    _desc, run_params = registry.resolve(EditSpec(op=op, engine=engine_id, model=model, params=params))
    t0 = time.perf_counter()
    out = engine.run(img, mask, run_params, lambda _f: None, CancelToken())
    if cuda:
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    assert out.dtype == np.uint8 and out.ndim == 3 and np.isfinite(out).all()
    return {
        "device": device,
        "dtype": str(getattr(engine, "_dtype", "float32")),
        "out": list(out.shape),
        "run_s": round(seconds, 3),
        "peak_mb": (torch.cuda.max_memory_allocated(device) >> 20) if cuda else None,
    }


def raw_dtypes(device: str, size: int) -> dict[str, Any]:
    """The architectures themselves in fp32 and fp16 on ``device`` (LaMa: fp32 only, as spandrel says)."""
    import torch

    from tests.farm.engines import builders

    out: dict[str, Any] = {}
    for name, module, halves in (
        ("lama", builders.lama_module(), False),
        ("compact-x4", _compact(), True),
    ):
        for dtype in (torch.float32, torch.float16) if halves else (torch.float32,):
            net = module.to(device=device, dtype=dtype)
            x = torch.rand(1, 3, size, size, device=device, dtype=dtype)
            with torch.inference_mode():
                t0 = time.perf_counter()
                y = net(x, (x[:, :1] > 0.5).to(dtype)) if name == "lama" else net(x)
                if device.startswith("cuda"):
                    torch.cuda.synchronize(device)
            assert torch.isfinite(y).all(), f"{name} {dtype}: non-finite output"
            out[f"{name} {str(dtype).removeprefix('torch.')}"] = round(time.perf_counter() - t0, 4)
    return out


def _compact() -> Any:
    from spandrel.architectures.Compact import Compact

    return Compact(num_feat=16, num_conv=4, upscale=4).eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu", action="store_true", help="a dry run on the CPU (no GPU checks, small images)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    args = parser.parse_args()
    import torch

    torch.set_flush_denormal(True)
    if not args.cpu and not torch.cuda.is_available():
        print("no CUDA GPU here: run this on a PC with one (or --cpu for a dry run)", file=sys.stderr)
        return 2
    devices = ["cpu"] if args.cpu else [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    size = 64 if args.cpu else 512
    with tempfile.TemporaryDirectory(prefix="lanfarm-gpu-check-") as tmp:
        models = Path(tmp)
        check("build random-weight models", lambda: (build_models(models), {"folder": tmp})[1])
        if not args.cpu:
            check("GPU detection (NVML/nvidia-smi vs torch)", detection)
            check("VRAM figures in /v1/info (hardware.gpus)", vram_figures)
            check("slot i on cuda:i, over every GPU", lambda: slot_mapping(models))
        for device in devices:
            check(f"{device}: fp32/fp16 architectures", lambda d=device: raw_dtypes(d, size))  # type: ignore[misc]
            for engine_id, model, params in (
                ("lama", "big-lama.safetensors", {}),
                ("upscale", "realesr-compact-x4.safetensors", {}),
                ("sd-inpaint", "sd-inpaint-tiny", {"steps": 2, "prompt": "a red house"}),
            ):
                check(
                    f"{device}: {engine_id} ({model})",
                    lambda d=device, e=engine_id, m=model, p=params: engine_run(  # type: ignore[misc]
                        models, d, e, m, 64 if e == "sd-inpaint" else size, p
                    ),
                )
    failed = [r["check"] for r in RESULTS if not r["ok"]]
    print(f"\n{len(RESULTS) - len(failed)}/{len(RESULTS)} checks passed" + (f"; failed: {failed}" if failed else ""))
    if args.json:
        args.json.write_text(json.dumps(RESULTS, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
