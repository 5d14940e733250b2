"""Super-resolution with whatever spandrel detects as an image-to-image model of scale > 1.

ESRGAN / Real-ESRGAN, Real-ESRGAN Compact, SwinIR, HAT, DAT, SPAN... Big images run in tiles: each
tile is run with ``overlap`` pixels of context on every side and only its centre is kept, so the
result matches an untiled run wherever the model's receptive field fits in the overlap. The grid rule
(:mod:`farm.core.tiling`) is the one the farm uses to split one image across nodes.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamSchema, ParamSpec, ParamValue
from farm.core.tiling import round_overlap, round_tile, tile_windows
from farm.engines.base import CancelToken, Engine, ProgressFn
from farm.engines.catalogue import ModelFile, ModelIndex, estimate_memory_mb, known_scale
from farm.engines.devices import AI_DEVICES, flushed_denormals, free_memory_mb, is_half_safe, pick_device
from farm.engines.registry import model_factory
from farm.errors import EngineError, OutputError

if TYPE_CHECKING:
    import torch
    from spandrel import ImageModelDescriptor

ENGINE_ID = "upscale"
DEFAULT_SCALE = 4
CPU_TILE = 512
MIN_TILE, MAX_TILE = 64, 2048
# Rough working memory per *output* pixel in fp32 (a few 64-channel feature maps alive at once).
BYTES_PER_OUTPUT_PIXEL = 1024
PARAMS = ParamSchema.of(
    ParamSpec(
        "tile",
        "int",
        0,
        label="Tile size",
        minimum=0,
        maximum=8192,
        help="pixels per tile side; 0 picks one from the device's free memory",
    ),
    ParamSpec(
        "overlap",
        "int",
        32,
        label="Tile overlap",
        minimum=0,
        maximum=512,
        help="context pixels around each tile, cropped away so tiles join without seams",
    ),
)


def build_descriptor(
    models: Sequence[ModelFile],
    models_dir: Path,
    devices: tuple[str, ...] = AI_DEVICES,
    index: ModelIndex | None = None,
) -> EngineDescriptor:
    """The upscale descriptor; ``scale`` is the default model's as last recorded (loading confirms it)."""
    scale = (known_scale(models[0], index) if models else None) or DEFAULT_SCALE
    return EngineDescriptor(
        id=ENGINE_ID,
        title="Upscale (ESRGAN, Real-ESRGAN, SwinIR... via spandrel)",
        operations=frozenset({"upscale"}),
        params=PARAMS,
        devices=devices,
        needs_mask=False,
        scale=scale,
        memory_mb=max((estimate_memory_mb(m) for m in models), default=1024),
        models=tuple(m.name for m in models),
        available=bool(models),
        unavailable_reason=""
        if models
        else (
            f"no upscaling model: put an ESRGAN/Real-ESRGAN/SwinIR... .safetensors or .pth file "
            f"(for example RealESRGAN_x4plus.pth) in {models_dir}"
        ),
    )


def factory(
    descriptor: EngineDescriptor, models: Sequence[ModelFile], device: str | None = None
) -> Callable[[str | None], Engine]:
    """Build the engine for a model name (None: the first one found)."""
    return model_factory(descriptor, models, lambda m: UpscaleEngine(m, descriptor, device=device), "upscaling model")


def load_upscaler(path: Path, device: torch.device | str) -> ImageModelDescriptor:
    """The spandrel model in ``path`` if it is an RGB super-resolution model; raises EngineError."""
    from spandrel import ImageModelDescriptor

    from farm.engines.spandrel_loader import load_spandrel

    desc = load_spandrel(path, device)
    if not isinstance(desc, ImageModelDescriptor):
        raise EngineError(f"{path.name} is a {desc.architecture.name} {desc.purpose.lower()} model, not an upscaler")
    if desc.scale <= 1:
        raise EngineError(
            f"{path.name} is a 1x {desc.architecture.name} model ({desc.purpose.lower()}), not an upscaler"
        )
    if desc.input_channels != 3 or desc.output_channels != 3:
        raise EngineError(
            f"{path.name}: only RGB models are supported (this one has "
            f"{desc.input_channels} in, {desc.output_channels} out channels)"
        )
    return desc


def choose_tile(device: torch.device, scale: int, multiple: int, half: bool, requested: int = 0) -> int:
    """Tile side in input pixels: as asked, else from free GPU memory, else a fixed CPU size."""
    if requested > 0:
        tile = requested
    elif device.type == "cuda":
        budget = free_memory_mb(device) * (1 << 20) // 2
        per_pixel = BYTES_PER_OUTPUT_PIXEL * scale * scale // (2 if half else 1)
        tile = min(MAX_TILE, max(MIN_TILE, math.isqrt(budget // per_pixel)))
    else:
        tile = CPU_TILE
    return round_tile(tile, multiple)


class UpscaleEngine:
    """A loaded upscaler; the descriptor carries the model's own scale and size multiple."""

    def __init__(self, model: ModelFile, descriptor: EngineDescriptor, *, device: str | None = None):
        import torch

        self._device = pick_device(device)
        self._model = load_upscaler(model.path, self._device)
        self._half = is_half_safe(self._device, self._model.supports_half)
        if self._half:
            self._model.half()
        self._dtype = torch.float16 if self._half else torch.float32
        self._lock = threading.Lock()
        self.model_name = model.name
        _remember(model, self._model)
        self.descriptor = replace(
            descriptor,
            scale=int(self._model.scale),
            models=(model.name,),
            size_multiple=int(self._model.size_requirements.multiple_of),
            memory_mb=estimate_memory_mb(model),
            devices=(self._device.type,),
        )

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, ParamValue],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray:
        import torch

        from farm.engines.torch_image import to_image, to_tensor

        cancel.check()
        h, w = image.shape[:2]
        scale = self.descriptor.scale
        multiple = self.descriptor.size_multiple
        tile = choose_tile(self._device, scale, multiple, self._half, int(params["tile"]))
        overlap = round_overlap(int(params["overlap"]), multiple)
        rows, cols = tile_windows(h, tile, overlap), tile_windows(w, tile, overlap)
        out = np.empty((h * scale, w * scale, 3), np.uint8)
        done, total = 0, len(rows) * len(cols)
        with self._lock, flushed_denormals(), torch.inference_mode():
            for y0, y1, wy0, wy1 in rows:
                for x0, x1, wx0, wx1 in cols:
                    cancel.check()
                    window = to_tensor(image[wy0:wy1, wx0:wx1], self._device, self._dtype)
                    result = to_image(self._model(window))
                    out[y0 * scale : y1 * scale, x0 * scale : x1 * scale] = result[
                        (y0 - wy0) * scale : (y1 - wy0) * scale, (x0 - wx0) * scale : (x1 - wx0) * scale
                    ]
                    done += 1
                    progress(done / total)
        return out


def _remember(model: ModelFile, loaded: ImageModelDescriptor) -> None:
    """Record the scale so the next torch-free descriptor states it (a read-only cache is no error)."""
    index = ModelIndex()
    index.put(model, architecture=loaded.architecture.name, scale=int(loaded.scale), error=None)
    with contextlib.suppress(OSError, OutputError):
        index.save()
