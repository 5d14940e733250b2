"""LaMa inpainting: spandrel-loaded weights (.safetensors / .pth) or IOPaint's TorchScript big-lama.pt.

The descriptor is built from a torch-free scan of the models folder; torch is imported when an engine
is built (the first job that uses it). LaMa runs in fp32 everywhere: its Fourier convolutions
(torch.fft) are not fp16-safe (cuFFT half needs power-of-two sizes, and spandrel marks LaMa
``supports_half=False``), and at ~51 M parameters fp32 costs only ~200 MB of weights.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamValue
from farm.engines.base import CancelToken, Engine, ProgressFn
from farm.engines.catalogue import IOPAINT_LAMA_NAME, ModelFile, estimate_memory_mb, iopaint_lama_path
from farm.engines.devices import AI_DEVICES, flushed_denormals, pick_device
from farm.engines.registry import model_factory
from farm.errors import EngineError
from farm.imaging.padding import pad_to

if TYPE_CHECKING:
    import torch

ENGINE_ID = "lama"
SIZE_MULTIPLE = 8
MIN_SIDE = 16
DEFAULT_MEMORY_MB = 1280

LamaNet = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


def build_descriptor(
    models: Sequence[ModelFile], models_dir: Path, devices: tuple[str, ...] = AI_DEVICES
) -> EngineDescriptor:
    """The LaMa descriptor for the LaMa files found; unavailable (saying what to do) when none are."""
    reason = ""
    if not models:
        reason = f"no LaMa model: put {IOPAINT_LAMA_NAME} or a LaMa .safetensors/.pth file in {models_dir}"
        found = iopaint_lama_path()
        if found is not None:
            reason += f" (found IOPaint's {IOPAINT_LAMA_NAME}: add it with `lanfarm models add {found}`)"
    return EngineDescriptor(
        id=ENGINE_ID,
        title="LaMa inpainting (big-lama)",
        operations=frozenset({"inpaint"}),
        devices=devices,
        size_multiple=SIZE_MULTIPLE,
        memory_mb=max((estimate_memory_mb(m) for m in models), default=DEFAULT_MEMORY_MB),
        models=tuple(m.name for m in models),
        available=bool(models),
        unavailable_reason=reason,
    )


def factory(
    descriptor: EngineDescriptor, models: Sequence[ModelFile], device: str | None = None
) -> Callable[[str | None], Engine]:
    """Build the engine for a model name (None: the first one found)."""
    return model_factory(descriptor, models, lambda m: LamaEngine(m, descriptor, device=device), "LaMa model")


def load_lama(model: ModelFile, device: torch.device | str) -> LamaNet:
    """A callable ``(image 1x3xHxW, mask 1x1xHxW) -> 1x3xHxW`` for ``model``; raises EngineError."""
    if model.format == "torchscript":
        return _load_torchscript(model.path, device)
    from spandrel import MaskedImageModelDescriptor

    from farm.engines.spandrel_loader import load_spandrel

    desc = load_spandrel(model.path, device)
    if not isinstance(desc, MaskedImageModelDescriptor):
        raise EngineError(f"{model.name} is a {desc.architecture.name} model, not LaMa inpainting")
    return desc


def _load_torchscript(path: Path, device: torch.device | str) -> LamaNet:
    # torch.jit.load executes the code stored in the file, so only IOPaint's file name is accepted
    # (classify() marks any other .pt unusable); the user put or added this file there themselves.
    if path.name != IOPAINT_LAMA_NAME:
        raise EngineError(f"{path.name}: only IOPaint's {IOPAINT_LAMA_NAME} is loaded as TorchScript")
    import torch

    try:
        with warnings.catch_warnings():
            # torch 2.14 deprecates TorchScript, but IOPaint ships big-lama.pt as TorchScript only.
            warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.* is deprecated", category=FutureWarning)
            net = torch.jit.load(str(path), map_location="cpu").eval()
    except Exception as exc:
        raise EngineError(
            f"{path.name}: cannot load IOPaint's TorchScript LaMa ({type(exc).__name__}: "
            f"{exc}); the file may be corrupt or incomplete"
        ) from None
    return net.to(device)


class LamaEngine:
    """A loaded LaMa; one run at a time (the model's memory is the device's scarce thing)."""

    def __init__(self, model: ModelFile, descriptor: EngineDescriptor, *, device: str | None = None):
        self._device = pick_device(device)
        self._net = load_lama(model, self._device)
        self._lock = threading.Lock()
        self.model_name = model.name
        self.descriptor = replace(
            descriptor, models=(model.name,), memory_mb=estimate_memory_mb(model), devices=(self._device.type,)
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

        from farm.engines.torch_image import mask_to_tensor, to_image, to_tensor

        if mask is None:
            raise EngineError("LaMa needs a mask")
        cancel.check()
        h, w = image.shape[:2]
        padded, padded_mask = pad_to(image, mask, MIN_SIDE, SIZE_MULTIPLE)
        assert padded_mask is not None
        with self._lock, flushed_denormals(), torch.inference_mode():
            out = self._net(
                to_tensor(padded, self._device, torch.float32), mask_to_tensor(padded_mask, self._device, torch.float32)
            )
        progress(1.0)
        return to_image(out)[:h, :w]
