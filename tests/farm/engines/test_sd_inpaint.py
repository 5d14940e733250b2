"""Stable Diffusion inpainting on a tiny random pipeline saved with save_pretrained."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest

from farm.core.spec import EditSpec
from farm.engines.base import CancelToken, no_progress
from farm.errors import EngineError, JobCancelled, SpecError
from farm.imaging.pipeline import execute
from tests.conftest import box_mask, png_bytes, scene

# diffusers' Euler/DPM schedulers call np.array() on a torch tensor; torch's __array__ predates
# NumPy 2's copy keyword, so NumPy warns. Harmless and outside LAN Farm's code.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
)

IMG, MASK = scene(64, 64, seed=11), box_mask(64, 64, (16, 16, 48, 40))


def inpaint(registry, **params) -> np.ndarray:  # type: ignore[no-untyped-def]
    spec = EditSpec(engine="sd-inpaint", params={"steps": 2, "prompt": "a red cat", **params})
    out = execute(png_bytes(IMG), png_bytes(MASK), spec, registry)
    return cv2.imdecode(np.frombuffer(out, np.uint8), cv2.IMREAD_COLOR)


def test_same_seed_same_output_other_seed_other_output(ai_registry) -> None:  # type: ignore[no-untyped-def]
    first, again, other = (inpaint(ai_registry, seed=s) for s in (1, 1, 2))
    assert first.shape == IMG.shape
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    keep = MASK == 0
    assert np.array_equal(first[keep], IMG[keep])  # only the masked pixels are pasted back
    assert (first[~keep] != IMG[~keep]).any()


SCHEDULER_CLASSES = (
    "PNDMScheduler",
    "DDIMScheduler",
    "EulerDiscreteScheduler",
    "EulerAncestralDiscreteScheduler",
    "DPMSolverMultistepScheduler",
    "UniPCMultistepScheduler",
)


@pytest.mark.parametrize(
    ("scheduler", "used", "karras"),
    [
        ("default", "PNDMScheduler", False),  # the one the tiny model was saved with (tests/farm/engines/builders.py)
        ("pndm", "PNDMScheduler", False),
        ("ddim", "DDIMScheduler", False),
        ("euler", "EulerDiscreteScheduler", False),
        ("euler_a", "EulerAncestralDiscreteScheduler", False),
        ("dpm++", "DPMSolverMultistepScheduler", False),
        ("dpm++_karras", "DPMSolverMultistepScheduler", True),
        ("unipc", "UniPCMultistepScheduler", False),
    ],
)
def test_each_scheduler_is_the_one_that_steps(  # type: ignore[no-untyped-def]
    ai_registry, monkeypatch, scheduler: str, used: str, karras: bool
) -> None:
    """The denoising loop really steps with the chosen scheduler: every diffusers scheduler's step()
    is spied on, so whichever one the pipeline calls is seen (the engine has no public way to say)."""
    import diffusers

    steps: list[tuple[str, bool]] = []
    for name in SCHEDULER_CLASSES:
        cls = getattr(diffusers, name)

        def spy(self, *args, _step=cls.step, **kwargs):  # type: ignore[no-untyped-def]
            steps.append((type(self).__name__, bool(self.config.get("use_karras_sigmas", False))))
            return _step(self, *args, **kwargs)

        monkeypatch.setattr(cls, "step", spy)
    out = inpaint(ai_registry, seed=3, scheduler=scheduler, negative_prompt="blue sky", guidance=1.0)
    assert out.shape == IMG.shape
    assert len(steps) >= 2  # steps=2; PNDM adds a warm-up step
    assert set(steps) == {(used, karras)}


def test_unknown_scheduler_is_a_spec_error(ai_registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SpecError, match="scheduler"):
        inpaint(ai_registry, scheduler="plms")


def test_progress_per_step_and_cancel_within_one_step(ai_registry) -> None:  # type: ignore[no-untyped-def]
    engine = ai_registry.engine("sd-inpaint")
    params = ai_registry.descriptor("sd-inpaint").params.validate({"steps": 4, "seed": 0, "scheduler": "ddim"})
    steps: list[float] = []
    engine.run(IMG, MASK, params, steps.append, CancelToken())
    assert steps == [0.25, 0.5, 0.75, 1.0]
    steps.clear()  # PNDM (the tiny model's own) runs one extra warm-up step: still counted right
    engine.run(IMG, MASK, {**params, "scheduler": "default"}, steps.append, CancelToken())
    assert steps == [0.2, 0.4, 0.6, 0.8, 1.0]

    token = CancelToken()
    seen: list[float] = []

    def cancel_on_first(fraction: float) -> None:
        seen.append(fraction)
        token.cancel()

    with pytest.raises(JobCancelled):
        engine.run(IMG, MASK, {**params, "steps": 20}, cancel_on_first, token)
    assert seen == [0.05]  # the step that saw the cancel was the last one


def test_strength_below_one_step_is_a_clear_error(ai_registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineError, match="Stable Diffusion refused the job"):
        inpaint(ai_registry, steps=2, strength=0.1)


def test_single_file_checkpoint_without_configs_says_where_they_go(model_folders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.installed import default_registry
    from tests.farm.engines.test_registry_ai import fake_safetensors

    fake_safetensors(tmp_path / "my-sd15-inpaint.safetensors", ["model.diffusion_model.input_blocks.0.0.weight"])
    reg = default_registry(tmp_path, device="cpu")
    assert reg.descriptor("sd-inpaint").models == ("my-sd15-inpaint.safetensors",)
    with pytest.raises(
        EngineError, match=r"single-file Stable Diffusion checkpoint.*" + str(tmp_path / "my-sd15-inpaint-config")
    ):
        reg.engine("sd-inpaint")


def test_sdxl_is_recognised_from_model_index(model_folders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.catalogue import sd_architecture
    from farm.engines.sd_inpaint import is_sdxl

    assert not is_sdxl(model_folders.good / "sd-tiny")
    assert sd_architecture(model_folders.good / "sd-tiny") == "SD 1.x inpaint"
    xl = tmp_path / "xl"
    shutil.copytree(model_folders.good / "sd-tiny", xl)
    index = json.loads((xl / "model_index.json").read_text())
    (xl / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionXLInpaintPipeline"}))
    assert is_sdxl(xl) and sd_architecture(xl).startswith("SDXL")


class RecordingPipe:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def to(self, device) -> None:  # type: ignore[no-untyped-def]
        self.calls.append(f"to:{device.type}")

    def enable_attention_slicing(self) -> None:
        self.calls.append("slicing")

    def enable_model_cpu_offload(self, device) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("offload")


@pytest.mark.parametrize(
    ("device", "free_mb", "expected"),
    [
        ("cpu", 0, ["to:cpu"]),
        ("mps", 0, ["to:mps", "slicing"]),
        ("cuda", 80_000, ["to:cuda"]),
        ("cuda", 3_000, ["to:cuda", "slicing"]),
        ("cuda", 500, ["offload"]),
    ],
)
def test_small_gpus_get_attention_slicing_or_cpu_offload(monkeypatch, device, free_mb, expected) -> None:  # type: ignore[no-untyped-def]
    torch = pytest.importorskip("torch")

    import farm.engines.sd_inpaint as sd

    monkeypatch.setattr(sd, "free_memory_mb", lambda _d: free_mb)
    engine = object.__new__(sd.SdInpaintEngine)
    engine._pipe, engine._device = RecordingPipe(), torch.device(device)
    engine._place(4096)  # an SD 1.5 in fp32: ~2 GB in fp16 on CUDA
    assert engine._pipe.calls == expected


def test_run_without_a_mask_is_refused(ai_registry) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EngineError, match="needs a mask"):
        ai_registry.engine("sd-inpaint").run(IMG, None, {}, no_progress, CancelToken())
