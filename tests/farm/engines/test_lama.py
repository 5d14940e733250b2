"""LaMa through the user's path: models folder -> registry -> farm.imaging.pipeline.execute on PNG bytes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from farm.core.spec import EditSpec, HdStrategy
from farm.engines.base import CancelToken, no_progress
from farm.errors import EngineError, JobCancelled
from farm.imaging.pipeline import execute
from tests.conftest import box_mask, png_bytes, scene

LAMA_FILES = ("lama.safetensors", "lama.pth", "big-lama.pt")


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize("model", LAMA_FILES)
def test_lama_fills_only_the_masked_pixels(ai_registry, model: str) -> None:  # type: ignore[no-untyped-def]
    img, mask = scene(70, 60), box_mask(70, 60, (20, 10, 45, 40))  # 70x60: not a multiple of 8
    out = decode(execute(png_bytes(img), png_bytes(mask), EditSpec(engine="lama", model=model), ai_registry))
    assert out.shape == img.shape
    keep = mask == 0
    assert np.array_equal(out[keep], img[keep])
    assert (out[~keep] != img[~keep]).any(axis=1).mean() > 0.5


def test_the_three_file_forms_of_one_model_agree(ai_registry) -> None:  # type: ignore[no-untyped-def]
    img, mask = scene(64, 48, seed=3), box_mask(64, 48, (10, 10, 40, 30))
    outs = [
        decode(execute(png_bytes(img), png_bytes(mask), EditSpec(engine="lama", model=m), ai_registry)).astype(int)
        for m in LAMA_FILES
    ]
    assert np.array_equal(outs[0], outs[1])  # same weights, .safetensors vs .pth
    assert np.abs(outs[0] - outs[2]).max() <= 2  # TorchScript trace of the same module


def test_tiny_images_are_padded_to_lamas_minimum(ai_registry) -> None:  # type: ignore[no-untyped-def]
    img, mask = scene(12, 9), box_mask(12, 9, (3, 2, 8, 6))
    out = decode(execute(png_bytes(img), png_bytes(mask), EditSpec(engine="lama"), ai_registry))
    assert out.shape == img.shape
    assert np.array_equal(out[mask == 0], img[mask == 0])


def test_hd_crop_strategy_applies_to_lama(ai_registry) -> None:  # type: ignore[no-untyped-def]
    img, mask = scene(400, 64, seed=5), box_mask(400, 64, (300, 20, 320, 40))
    spec = EditSpec(engine="lama", hd=HdStrategy(strategy="crop", trigger=128, margin=16))
    out = decode(execute(png_bytes(img), png_bytes(mask), spec, ai_registry))
    assert np.array_equal(out[mask == 0], img[mask == 0])
    assert (out[mask > 0] != img[mask > 0]).any()


def test_loaded_models_stay_loaded_between_jobs(ai_registry) -> None:  # type: ignore[no-untyped-def]
    assert ai_registry.descriptor("lama").models[0] == "big-lama.pt"  # sorted: the default
    assert ai_registry.engine("lama") is ai_registry.engine("lama", "big-lama.pt")
    assert ai_registry.engine("lama").descriptor.memory_mb > 190  # ~195 MB of fp32 weights + room


def test_cancel_before_the_forward_pass(ai_registry) -> None:  # type: ignore[no-untyped-def]
    token = CancelToken()
    token.cancel()
    engine = ai_registry.engine("lama")
    with pytest.raises(JobCancelled):
        engine.run(scene(32, 32), box_mask(32, 32, (4, 4, 9, 9)), {}, no_progress, token)


def test_a_corrupt_lama_file_names_itself(model_folders) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.installed import default_registry

    reg = default_registry(model_folders.bad, device="cpu")
    assert "broken-lama.safetensors" in reg.descriptor("lama").models
    with pytest.raises(EngineError, match=r"broken-lama\.safetensors: cannot load the model"):
        execute(
            png_bytes(scene(32, 32)),
            png_bytes(box_mask(32, 32, (4, 4, 9, 9))),
            EditSpec(engine="lama", model="broken-lama.safetensors"),
            reg,
        )


def test_an_upscaler_is_refused_as_lama(model_folders) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.catalogue import classify
    from farm.engines.lama import load_lama

    model = classify(model_folders.good / "compact-x4.safetensors")
    assert model is not None
    with pytest.raises(EngineError, match=r"compact-x4\.safetensors is a RealESRGAN Compact model, not LaMa"):
        load_lama(model, "cpu")


def test_only_iopaints_file_name_is_loaded_as_torchscript(model_folders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.catalogue import classify
    from farm.engines.lama import _load_torchscript

    other = tmp_path / "my-model.pt"
    other.write_bytes((model_folders.good / "big-lama.pt").read_bytes())
    found = classify(other)
    assert found is not None and found.kind == "unknown" and "run code" in found.note
    with pytest.raises(EngineError, match=r"only IOPaint's big-lama\.pt"):
        _load_torchscript(other, "cpu")
