"""Device choice and the once-per-process torch settings."""

from __future__ import annotations

import pytest

from farm.engines.devices import device_override
from farm.errors import EngineError


def test_override_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LANFARM_DEVICE", raising=False)
    assert device_override() is None
    assert device_override("CUDA:1") == "cuda:1"
    monkeypatch.setenv("LANFARM_DEVICE", "mps")
    assert device_override() == "mps"
    assert device_override("cpu") == "cpu"  # an explicit choice beats the environment
    monkeypatch.setenv("LANFARM_DEVICE", "auto")
    assert device_override() is None
    with pytest.raises(EngineError, match="unknown device 'tpu'"):
        device_override("tpu")


def test_pick_device_here_is_cpu_and_a_missing_gpu_is_a_clear_error(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("torch")
    import torch

    from farm.engines.devices import pick_device

    monkeypatch.delenv("LANFARM_DEVICE", raising=False)
    if torch.cuda.is_available() or torch.backends.mps.is_available():
        pytest.skip("this machine has a GPU")
    assert pick_device().type == "cpu"
    with pytest.raises(EngineError, match="no CUDA GPU"):
        pick_device("cuda")


def test_engines_flush_denormals_while_they_run_and_restore_the_thread_after(ai_registry) -> None:  # type: ignore[no-untyped-def]
    import numpy as np
    import torch

    from farm.engines.base import CancelToken

    def flushed() -> bool:
        return (torch.tensor([1e-40], dtype=torch.float32) * 1.0).item() == 0.0

    during: list[bool] = []
    ai_registry.engine("upscale").run(
        np.zeros((16, 16, 3), np.uint8),
        None,
        {"tile": 8, "overlap": 0},
        lambda _f: during.append(flushed()),
        CancelToken(),
    )
    assert during == [True] * 4
    assert not flushed()  # hypothesis and numpy code later in this thread get IEEE subnormals back
