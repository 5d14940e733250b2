"""Session-built random-weight models, saved as users' files are, and a registry over them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class ModelFolders:
    good: Path  # lama.pth, lama.safetensors, big-lama.pt, compact-x4.safetensors, esrgan-x2.pth, sd-tiny/
    bad: Path  # broken-lama.safetensors (truncated), random.pth (no known architecture)
    spare: Path  # models outside any models folder, for `models add`


@pytest.fixture(scope="session")
def model_folders(tmp_path_factory: pytest.TempPathFactory) -> ModelFolders:
    pytest.importorskip("torch")
    pytest.importorskip("spandrel")
    pytest.importorskip("diffusers")
    from tests.farm.engines import builders as b

    good = tmp_path_factory.mktemp("models")
    bad = tmp_path_factory.mktemp("bad-models")
    spare = tmp_path_factory.mktemp("spare-models")
    lama = b.lama_module()
    b.save_pth(lama.state_dict(), good / "lama.pth")
    b.save_safetensors(lama.state_dict(), good / "lama.safetensors")
    b.save_traced_lama(lama, good / "big-lama.pt")
    b.save_safetensors(b.compact_state_dict(scale=4), good / "compact-x4.safetensors")
    b.save_pth(b.esrgan_state_dict(scale=2), good / "esrgan-x2.pth")
    b.build_tiny_sd_inpaint(good / "sd-tiny")
    data = (good / "lama.safetensors").read_bytes()
    (bad / "broken-lama.safetensors").write_bytes(data[: len(data) // 3])
    b.save_pth(b.random_state_dict(), bad / "random.pth")
    shutil.copy(good / "compact-x4.safetensors", spare / "compact-spare.safetensors")
    b.save_pth(b.random_state_dict(), spare / "random.pth")
    (spare / "notes.txt").write_text("not a model")
    return ModelFolders(good, bad, spare)


@pytest.fixture(scope="session")
def ai_registry(model_folders: ModelFolders):  # type: ignore[no-untyped-def]
    """One registry for the session, so each model loads once (as on a node)."""
    from farm.engines.installed import default_registry

    return default_registry(model_folders.good, device="cpu")
