"""Upscaling through the user's path, tiling, tile sizes, and refused files."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from farm.core.spec import EditSpec
from farm.engines.base import CancelToken
from farm.engines.upscale import choose_tile, tile_windows
from farm.errors import EngineError, JobCancelled
from farm.imaging.pipeline import execute
from tests.conftest import png_bytes, scene


def decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.parametrize(("model", "scale"), [("compact-x4.safetensors", 4), ("esrgan-x2.pth", 2)])
def test_output_is_scale_times_the_input(ai_registry, model: str, scale: int) -> None:  # type: ignore[no-untyped-def]
    img = scene(37, 29)
    out = decode(execute(png_bytes(img), None, EditSpec(op="upscale", engine="upscale", model=model), ai_registry))
    assert out.shape == (29 * scale, 37 * scale, 3)
    assert ai_registry.engine("upscale", model).descriptor.scale == scale


def _upscale(engine, img: np.ndarray, tile: int, overlap: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    seen: list[float] = []
    out = engine.run(img, None, {"tile": tile, "overlap": overlap}, seen.append, CancelToken())
    assert seen[-1] == 1.0
    return out.astype(int)


def test_tiled_output_matches_untiled(ai_registry) -> None:  # type: ignore[no-untyped-def]
    engine = ai_registry.engine("upscale", "compact-x4.safetensors")
    img = scene(100, 76, seed=7)
    whole = _upscale(engine, img, 0, 32)  # CPU tile 512: one tile
    tiled = _upscale(engine, img, 24, 16)
    assert tiled.shape == whole.shape == (304, 400, 3)
    assert np.abs(tiled - whole).max() <= 1
    # Without overlap the seams show: this is what the overlap buys (and proves the test can fail).
    assert np.abs(_upscale(engine, img, 24, 0) - whole).max() > 8


def test_cancel_stops_between_tiles(ai_registry) -> None:  # type: ignore[no-untyped-def]
    engine = ai_registry.engine("upscale", "compact-x4.safetensors")
    token = CancelToken()
    reports: list[float] = []

    def progress(fraction: float) -> None:
        reports.append(fraction)
        token.cancel()

    with pytest.raises(JobCancelled):
        engine.run(scene(64, 64), None, {"tile": 16, "overlap": 8}, progress, token)
    assert reports == [1 / 16]


def test_tile_windows_cover_the_axis_once() -> None:
    windows = tile_windows(100, 32, 8)
    assert [(a, b) for a, b, _, _ in windows] == [(0, 32), (32, 64), (64, 96), (96, 100)]
    assert windows[1][2:] == (24, 72) and windows[-1][2:] == (88, 100)


def test_tile_size_comes_from_free_gpu_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")

    import farm.engines.upscale as up

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_tile(cpu, 4, 1, half=False) == up.CPU_TILE
    assert choose_tile(cpu, 4, 8, half=False, requested=100) == 96
    monkeypatch.setattr(up, "free_memory_mb", lambda _d: 8192)
    big = choose_tile(cuda, 4, 4, half=True)
    monkeypatch.setattr(up, "free_memory_mb", lambda _d: 1024)
    small = choose_tile(cuda, 4, 4, half=True)
    assert up.MIN_TILE <= small < big <= up.MAX_TILE and big % 4 == 0
    monkeypatch.setattr(up, "free_memory_mb", lambda _d: 10**7)
    assert choose_tile(cuda, 2, 1, half=False) == up.MAX_TILE


def test_a_file_of_unknown_architecture_gives_a_clear_error(model_folders) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.installed import default_registry

    reg = default_registry(model_folders.bad, device="cpu")
    assert reg.descriptor("upscale").models == ("random.pth",)
    with pytest.raises(EngineError, match=r"random\.pth: the weights in this file are of no architecture"):
        execute(png_bytes(scene(16, 16)), None, EditSpec(op="upscale", engine="upscale"), reg)


def test_lama_is_refused_as_an_upscaler(model_folders) -> None:  # type: ignore[no-untyped-def]
    from farm.engines.upscale import load_upscaler

    with pytest.raises(EngineError, match=r"lama\.pth is a LaMa inpainting model, not an upscaler"):
        load_upscaler(model_folders.good / "lama.pth", "cpu")


def test_a_loaded_models_scale_is_remembered_for_torch_free_descriptors(model_folders, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from farm.engines.installed import default_registry

    shutil.copy(model_folders.good / "esrgan-x2.pth", tmp_path / "esrgan-x2.pth")
    reg = default_registry(tmp_path, device="cpu")
    assert reg.descriptor("upscale").scale == 4  # not known yet: the common default
    reg.engine("upscale")
    assert default_registry(tmp_path, device="cpu").descriptor("upscale").scale == 2
