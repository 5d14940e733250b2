"""Torch-free: how AI engines are (not) registered, descriptors without weights, the model cache."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from farm.core.descriptor import EngineDescriptor
from farm.core.spec import EditSpec
from farm.engines.cache import ModelCache
from farm.engines.installed import default_registry
from farm.engines.registry import EngineEntry, Registry
from farm.errors import EngineError
from tests.conftest import subprocess_env

HEAVY = ("torch", "spandrel", "diffusers", "transformers", "PySide6", "safetensors")


def fake_safetensors(path: Path, keys: list[str]) -> Path:
    """A safetensors file with the given tensor names (zero-length tensors): no torch needed."""
    header = {k: {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for k in keys}
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)
    return path


def test_import_and_default_registry_do_not_import_torch_or_qt(tmp_path: Path) -> None:
    fake_safetensors(tmp_path / "lama.safetensors", ["model.model.1.bn_l.running_mean"])
    fake_safetensors(tmp_path / "x4.safetensors", ["body.0.weight"])
    code = (
        "import sys, farm, farm.engines.catalogue, farm.cli.models; r = farm.default_registry("
        f"{str(tmp_path)!r}); [d.to_dict() for d in r.descriptors()]; "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=subprocess_env(), timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_ai_engines_are_absent_without_their_libraries(monkeypatch: pytest.MonkeyPatch) -> None:
    import farm.engines.installed

    monkeypatch.setattr(farm.engines.installed, "missing_modules", lambda names: list(names))
    assert default_registry().ids() == ["cv2"]


def test_without_models_ai_engines_are_listed_unavailable_with_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import farm.engines.installed

    monkeypatch.setattr(farm.engines.installed, "missing_modules", lambda names: [])
    torch_home = tmp_path / "torch-home"
    iopaint = torch_home / "hub" / "checkpoints" / "big-lama.pt"
    iopaint.parent.mkdir(parents=True)
    iopaint.write_bytes(b"not read")
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    models = tmp_path / "models"
    reg = default_registry(models)
    assert reg.ids() == ["cv2", "lama", "upscale", "sd-inpaint"]
    lama = reg.descriptor("lama")
    assert not lama.available and lama.models == ()
    assert f"put big-lama.pt or a LaMa .safetensors/.pth file in {models}" in lama.unavailable_reason
    assert f"lanfarm models add {iopaint}" in lama.unavailable_reason
    assert str(models) in reg.descriptor("upscale").unavailable_reason
    assert "model_index.json" in reg.descriptor("sd-inpaint").unavailable_reason
    with pytest.raises(EngineError, match="not available here: no LaMa model"):
        reg.resolve(EditSpec(engine="lama"))
    assert lama.to_dict()["available"] is False


def test_descriptors_list_each_engines_models_from_a_torch_free_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import farm.engines.installed

    monkeypatch.setattr(farm.engines.installed, "missing_modules", lambda names: [])
    fake_safetensors(tmp_path / "b-lama.safetensors", ["generator.model.1.bn_l.running_mean"])
    fake_safetensors(tmp_path / "a-x4.safetensors", ["body.0.weight"])
    fake_safetensors(tmp_path / "sd15.safetensors", ["model.diffusion_model.input_blocks.0.0.weight"])
    (tmp_path / "sd15-config").mkdir()
    (tmp_path / "sd15-config" / "model_index.json").write_text('{"_class_name": "X"}')
    (tmp_path / "other.pt").write_bytes(b"torchscript")
    (tmp_path / "readme.txt").write_text("hi")
    reg = default_registry(tmp_path, device="cpu")
    assert reg.descriptor("lama").models == ("b-lama.safetensors",)
    assert reg.descriptor("upscale").models == ("a-x4.safetensors",)
    assert reg.descriptor("upscale").needs_mask is False
    assert reg.descriptor("sd-inpaint").models == ("sd15.safetensors",)
    assert reg.descriptor("lama").devices == ("cpu",)
    assert reg.descriptor("lama").size_multiple == 8
    with pytest.raises(EngineError, match="not in this machine's models folder"):
        reg.resolve(EditSpec(engine="lama", model="other.pt"))


@dataclass
class FakeEngine:
    descriptor: EngineDescriptor

    def run(self, image, mask, params, progress, cancel):  # type: ignore[no-untyped-def]
        return image


def _engine(mb: int) -> FakeEngine:
    return FakeEngine(EngineDescriptor(id="x", title="x", operations=frozenset({"inpaint"}), memory_mb=mb))


def test_model_cache_drops_least_recently_used_past_its_memory_cap() -> None:
    cache = ModelCache(cap_mb=1000)
    loads: list[str] = []

    def loader(key: str, mb: int):  # type: ignore[no-untyped-def]
        return lambda: (loads.append(key), _engine(mb))[1]

    a = cache.get_or_load("a", loader("a", 400))
    cache.get_or_load("b", loader("b", 400))
    assert cache.get_or_load("a", loader("a", 400)) is a  # a is now the most recent
    cache.get_or_load("c", loader("c", 400))  # 1200 > 1000: b (least recent) goes
    assert "b" not in cache and "a" in cache and "c" in cache
    cache.get_or_load("huge", loader("huge", 5000))  # bigger than the cap: kept alone
    assert len(cache) == 1 and cache.used_mb == 5000
    assert loads == ["a", "b", "c", "huge"]


def test_registry_loads_the_default_model_once_under_both_names() -> None:
    built: list[str | None] = []
    desc = EngineDescriptor(id="m", title="m", operations=frozenset({"inpaint"}), models=("first.pth", "second.pth"))
    reg = Registry([EngineEntry(desc, lambda model: (built.append(model), FakeEngine(desc))[1])])
    assert reg.engine("m") is reg.engine("m", "first.pth")
    reg.engine("m", "second.pth")
    assert built == ["first.pth", "second.pth"]


def test_registry_memory_cap_evicts() -> None:
    descs = [replace(_engine(600).descriptor, id=i) for i in ("p", "q")]
    reg = Registry([EngineEntry(d, lambda _m, d=d: FakeEngine(d)) for d in descs], memory_cap_mb=1000)
    p = reg.engine("p")
    reg.engine("q")
    assert reg.engine("p") is not p  # p was dropped to make room for q, then loaded again
    assert np.array_equal(reg.engine("q").run(np.zeros(1), None, {}, None, None), np.zeros(1))


def test_registry_says_which_engines_run_off_this_pcs_cpu() -> None:
    """As the engines loaded say: one loaded on a (FAKE) GPU runs off the CPU, one on the CPU or not loaded
    yet does not; the simulated GPU engine always does; an unknown engine does not."""
    ai = EngineDescriptor(id="ai", title="ai", operations=frozenset({"inpaint"}), devices=("cuda", "mps", "cpu"))
    on_cpu = replace(ai, id="ai-cpu")
    sim = EngineDescriptor(id="sim", title="sim", operations=frozenset({"inpaint"}), devices=("sim",), simulated=True)
    reg = Registry(
        [
            EngineEntry(ai, lambda _m: FakeEngine(replace(ai, devices=("cuda",)))),  # FAKE GPU: none exists here
            EngineEntry(on_cpu, lambda _m: FakeEngine(replace(on_cpu, devices=("cpu",)))),
            EngineEntry(sim, lambda _m: FakeEngine(sim)),
        ]
    )
    assert not reg.off_cpu("ai") and not reg.off_cpu("ai-cpu")  # nothing loaded yet
    reg.engine("ai")
    reg.engine("ai-cpu")
    assert reg.off_cpu("ai") and not reg.off_cpu("ai-cpu")
    assert reg.off_cpu("sim") and not reg.off_cpu("nothing")


def test_asking_where_an_engine_runs_does_not_wait_for_a_model_loading() -> None:
    """The farm asks from its event loop; a model loads under the registry's lock for seconds (here until
    released): the answer must not wait for it."""
    import threading

    slow = EngineDescriptor(id="slow", title="slow", operations=frozenset({"inpaint"}))
    release, loading = threading.Event(), threading.Event()

    def load(_model: str | None) -> FakeEngine:
        loading.set()
        release.wait(30)
        return FakeEngine(slow)

    reg = Registry([EngineEntry(slow, load)])
    loader = threading.Thread(target=reg.engine, args=("slow",))
    loader.start()
    try:
        assert loading.wait(10)
        answered: list[bool] = []
        asker = threading.Thread(target=lambda: answered.append(reg.off_cpu("slow")))
        asker.start()
        asker.join(10)
        assert answered == [False], "off_cpu waited for the model loading under the lock"
    finally:
        release.set()
        loader.join(30)


def test_the_command_line_parser_imports_neither_torch_nor_qt() -> None:
    """`lanfarm run` builds its parser from every subcommand module: none may pull in the heavy stacks."""
    code = (
        "import sys, farm.cli; farm.cli.build_parser(); "
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=subprocess_env(), timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout
