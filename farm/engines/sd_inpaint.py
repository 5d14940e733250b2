"""Stable Diffusion inpainting through diffusers (SD 1.x / 2.x, and SDXL when the folder says so).

Models are local only: a diffusers folder (``model_index.json``) or a single ``.safetensors`` /
``.ckpt`` checkpoint whose configs sit beside it in ``<stem>-config/``. Loading is offline
(``HF_HUB_OFFLINE=1``, ``local_files_only=True``): nothing is ever downloaded at run time.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamSchema, ParamSpec, ParamValue
from farm.engines.base import CancelToken, Engine, ProgressFn
from farm.engines.catalogue import ModelFile, estimate_memory_mb, single_file_config_dir
from farm.engines.devices import AI_DEVICES, flushed_denormals, free_memory_mb, pick_device
from farm.engines.registry import model_factory
from farm.errors import EngineError, JobCancelled

if TYPE_CHECKING:
    import torch

ENGINE_ID = "sd-inpaint"
SIZE_MULTIPLE = 8
MAX_SEED = 2**32 - 1
# scheduler choice -> (diffusers class name, extra config); "default" keeps the model's own.
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "default": ("", {}),
    "ddim": ("DDIMScheduler", {}),
    "pndm": ("PNDMScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpm++": ("DPMSolverMultistepScheduler", {}),
    "dpm++_karras": ("DPMSolverMultistepScheduler", {"use_karras_sigmas": True}),
    "unipc": ("UniPCMultistepScheduler", {}),
}
PARAMS = ParamSchema.of(
    ParamSpec("prompt", "str", "", label="Prompt", multiline=True, help="what to paint into the masked area"),
    ParamSpec("negative_prompt", "str", "", label="Negative prompt", multiline=True, help="what to keep out of it"),
    ParamSpec(
        "steps",
        "int",
        25,
        label="Steps",
        minimum=1,
        maximum=150,
        help="denoising steps; more is slower and usually finer",
    ),
    ParamSpec(
        "guidance",
        "float",
        7.5,
        label="Guidance",
        minimum=0.0,
        maximum=30.0,
        help="how strictly to follow the prompt (classifier-free guidance scale)",
    ),
    ParamSpec(
        "strength",
        "float",
        1.0,
        label="Strength",
        minimum=0.01,
        maximum=1.0,
        help="how much of the masked area to repaint; 1 ignores what is there",
    ),
    ParamSpec(
        "seed",
        "int",
        -1,
        label="Seed",
        minimum=-1,
        maximum=MAX_SEED,
        help="the same seed gives the same result; -1 picks one at random",
    ),
    ParamSpec(
        "scheduler",
        "choice",
        "default",
        label="Sampler",
        choices=tuple(SCHEDULERS),
        help="denoising scheduler; default is the one the model ships with",
    ),
)


def build_descriptor(
    models: Sequence[ModelFile], models_dir: Path, devices: tuple[str, ...] = AI_DEVICES
) -> EngineDescriptor:
    return EngineDescriptor(
        id=ENGINE_ID,
        title="Stable Diffusion inpainting",
        operations=frozenset({"inpaint"}),
        params=PARAMS,
        devices=devices,
        size_multiple=SIZE_MULTIPLE,
        memory_mb=max((estimate_memory_mb(m) for m in models), default=4096),
        models=tuple(m.name for m in models),
        available=bool(models),
        unavailable_reason=""
        if models
        else (
            f"no Stable Diffusion model: put a diffusers inpainting folder (with model_index.json, "
            f"e.g. stable-diffusion-inpainting) or a single-file .safetensors checkpoint with its "
            f"configs in <name>-config/ in {models_dir}"
        ),
    )


def factory(
    descriptor: EngineDescriptor, models: Sequence[ModelFile], device: str | None = None
) -> Callable[[str | None], Engine]:
    """Build the engine for a model name (None: the first one found)."""
    return model_factory(
        descriptor, models, lambda m: SdInpaintEngine(m, descriptor, device=device), "Stable Diffusion model"
    )


def is_sdxl(folder: Path) -> bool:
    try:
        index = json.loads((folder / "model_index.json").read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(index, dict) and "XL" in str(index.get("_class_name", ""))


def load_pipeline(model: ModelFile, device: torch.device | str) -> Any:
    """The inpainting pipeline for ``model``, on the CPU, fp16 when it will run on CUDA."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers reads it: never touch the network
    import diffusers.utils.logging
    import torch
    import transformers.utils.logging
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionXLInpaintPipeline

    # A node's log is no terminal: no loading progress bars.
    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()

    dtype = torch.float16 if torch.device(device).type == "cuda" else torch.float32
    if model.format == "diffusers":
        config_dir = model.path
    elif model.format == "single-file":
        config_dir = single_file_config_dir(model)
        if not (config_dir / "model_index.json").is_file():
            raise EngineError(
                f"{model.name} is a single-file Stable Diffusion checkpoint; to load it offline, "
                f"diffusers needs the configs of its model family: put a diffusers folder of that "
                f"family (model_index.json, the subfolders' config files and the tokenizer; weights "
                f"not needed) at {config_dir}"
            )
    else:
        raise EngineError(f"{model.name} is not a Stable Diffusion model")
    xl = is_sdxl(config_dir)
    cls = StableDiffusionXLInpaintPipeline if xl else StableDiffusionInpaintPipeline
    kwargs: dict[str, Any] = {"dtype": dtype, "local_files_only": True}
    if not xl:  # a local tool on the user's own images: no NSFW checker model to ship
        kwargs.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    try:
        if model.format == "diffusers":
            pipe = cls.from_pretrained(str(model.path), **kwargs)
        else:
            pipe = cls.from_single_file(str(model.path), config=str(config_dir), **kwargs)
    except Exception as exc:
        raise EngineError(
            f"{model.name}: cannot load the Stable Diffusion model ({type(exc).__name__}: {exc})"
        ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


class SdInpaintEngine:
    """A loaded SD pipeline; runs one job at a time (the pipeline and its scheduler hold state)."""

    def __init__(self, model: ModelFile, descriptor: EngineDescriptor, *, device: str | None = None):
        self._device = pick_device(device)
        self._pipe: Any = load_pipeline(model, self._device)  # diffusers' pipelines are loosely typed
        self._place(estimate_memory_mb(model))
        self._schedulers: dict[str, Any] = {"default": self._pipe.scheduler}
        self._lock = threading.Lock()
        self.model_name = model.name
        self.descriptor = replace(
            descriptor, models=(model.name,), memory_mb=estimate_memory_mb(model), devices=(self._device.type,)
        )

    def _place(self, need_mb: int) -> None:
        """Move to the device; on a short GPU offload idle parts to the CPU or slice attention."""
        pipe, device = self._pipe, self._device
        if device.type == "cuda":
            need_mb //= 2  # fp16
            free = free_memory_mb(device)
            if free < need_mb and find_spec("accelerate") is not None:
                pipe.enable_model_cpu_offload(device=device)
                return
            pipe.to(device)
            if free < 2 * need_mb:
                pipe.enable_attention_slicing()
        elif device.type == "mps":
            pipe.to(device)
            pipe.enable_attention_slicing()  # what diffusers advises for Macs under 64 GB
        else:
            pipe.to(device)

    def _scheduler(self, name: str) -> Any:
        if name not in self._schedulers:
            import diffusers

            cls_name, extra = SCHEDULERS[name]
            base = self._schedulers["default"]
            self._schedulers[name] = getattr(diffusers, cls_name).from_config(base.config, **extra)
        return self._schedulers[name]

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, ParamValue],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray:
        import torch
        from PIL import Image

        if mask is None:
            raise EngineError("Stable Diffusion inpainting needs a mask")
        cancel.check()
        h, w = image.shape[:2]
        seed = int(params["seed"])
        if seed < 0:
            seed = secrets.randbelow(MAX_SEED + 1)

        def on_step_end(pipe: Any, step: int, _timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            progress(min(1.0, (step + 1) / max(1, pipe.num_timesteps)))
            if cancel.cancelled:  # raising here stops the loop before the next step starts
                raise JobCancelled("cancelled")
            return tensors

        with self._lock, flushed_denormals():
            self._pipe.scheduler = self._scheduler(str(params["scheduler"]))
            try:
                result = self._pipe(
                    prompt=str(params["prompt"]),
                    negative_prompt=str(params["negative_prompt"]) or None,
                    image=Image.fromarray(np.ascontiguousarray(image[:, :, ::-1])),
                    mask_image=Image.fromarray(mask),
                    height=h,
                    width=w,
                    num_inference_steps=int(params["steps"]),
                    guidance_scale=float(params["guidance"]),
                    strength=float(params["strength"]),
                    generator=torch.Generator("cpu").manual_seed(seed),
                    output_type="np",
                    callback_on_step_end=on_step_end,
                )
            except JobCancelled:
                raise
            except torch.cuda.OutOfMemoryError:
                raise EngineError(
                    f"Stable Diffusion ran out of GPU memory at {w}x{h}; use the crop or "
                    f"resize HD strategy or a smaller mask"
                ) from None
            except ValueError as exc:  # diffusers' own argument checks, e.g. too few steps for strength
                raise EngineError(f"Stable Diffusion refused the job: {exc}") from None
        rgb = np.clip(np.asarray(result.images[0]) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(rgb[:, :, ::-1])
