"""`lanfarm models` listing and `lanfarm models add`, and reading model files without unpickling."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile
from pathlib import Path

import pytest

from farm.cli import main
from farm.engines.catalogue import classify, read_tensor_names
from farm.errors import EngineError


def listing(capsys, folder: Path, *extra: str) -> dict:  # type: ignore[no-untyped-def,type-arg]
    assert main(["models", "--models-dir", str(folder), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_listing_shows_architecture_scale_size_and_sha256(model_folders, capsys) -> None:  # type: ignore[no-untyped-def]
    data = listing(capsys, model_folders.good)
    assert data["ai_installed"] is True
    by_name = {m["name"]: m for m in data["models"]}
    assert list(by_name) == [
        "big-lama.pt",
        "compact-x4.safetensors",
        "esrgan-x2.pth",
        "lama.pth",
        "lama.safetensors",
        "sd-tiny",
    ]
    compact = by_name["compact-x4.safetensors"]
    assert (compact["engine"], compact["architecture"], compact["scale"]) == ("upscale", "RealESRGAN Compact", 4)
    assert (by_name["esrgan-x2.pth"]["architecture"], by_name["esrgan-x2.pth"]["scale"]) == ("ESRGAN", 2)
    assert by_name["lama.pth"]["architecture"] == "LaMa" and by_name["lama.pth"]["engine"] == "lama"
    assert by_name["sd-tiny"]["architecture"] == "SD 1.x inpaint"
    path = model_folders.good / "compact-x4.safetensors"
    assert compact["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert compact["size_bytes"] == path.stat().st_size
    assert all(m["error"] is None for m in data["models"])


def test_listing_as_a_table(model_folders, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["models", "--models-dir", str(model_folders.good), "--no-hash"]) == 0
    out = capsys.readouterr().out
    assert "compact-x4.safetensors" in out.replace("\n", "") or "compact-x4" in out
    assert "4x" in out and "LaMa" in out


def test_hashes_and_architectures_are_cached_by_mtime_and_size(
    model_folders,
    capsys,
    monkeypatch,  # type: ignore[no-untyped-def]
    tmp_path,
) -> None:
    import shutil

    import farm.cli.models
    import farm.engines.catalogue

    shutil.copy(model_folders.good / "esrgan-x2.pth", tmp_path / "x2.pth")
    first = listing(capsys, tmp_path)["models"][0]

    def boom(*_a: object) -> None:
        raise AssertionError("recomputed")

    monkeypatch.setattr(farm.engines.catalogue, "sha256_of", boom)
    monkeypatch.setattr(farm.cli.models, "inspect_model", boom)
    assert listing(capsys, tmp_path)["models"][0] == first
    os.utime(tmp_path / "x2.pth", ns=(1, 1))  # a changed file is looked at again
    with pytest.raises(AssertionError, match="recomputed"):
        main(["models", "--models-dir", str(tmp_path), "--json"])


def test_bad_files_are_listed_with_their_problem(model_folders, capsys) -> None:  # type: ignore[no-untyped-def]
    by_name = {m["name"]: m for m in listing(capsys, model_folders.bad)["models"]}
    assert "no architecture spandrel knows" in by_name["random.pth"]["error"]
    assert "cannot load the model" in by_name["broken-lama.safetensors"]["error"]


def test_without_torch_listing_explains_the_ai_extra_and_exits_0(model_folders, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import farm.cli.models

    monkeypatch.setattr(farm.cli.models, "missing_modules", lambda names: [n for n in names if n == "torch"])
    data = listing(capsys, model_folders.good, "--no-hash")
    assert data["ai_installed"] is False
    assert any("pip install 'lanfarm[ai]'" in h for h in data["hints"])
    assert len(data["models"]) == 6  # still listed, from the torch-free scan
    assert main(["models", "--models-dir", str(model_folders.good), "--no-hash"]) == 0
    assert "lanfarm[ai]" in capsys.readouterr().out


def test_listing_offers_iopaints_big_lama(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    found = tmp_path / "th" / "hub" / "checkpoints" / "big-lama.pt"
    found.parent.mkdir(parents=True)
    found.write_bytes(b"x")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    hints = listing(capsys, tmp_path / "empty")["hints"]
    assert f"found IOPaint's big-lama.pt at {found}; add it with `lanfarm models add {found}`" in hints


def test_add_copies_a_model_after_loading_it(model_folders, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "models"
    src = model_folders.spare / "compact-spare.safetensors"
    assert main(["models", "add", str(src), "--models-dir", str(dest)]) == 0
    assert "copied compact-spare.safetensors (upscale)" in capsys.readouterr().out
    assert (dest / src.name).read_bytes() == src.read_bytes() and not (dest / src.name).is_symlink()
    assert main(["models", "add", str(src), "--models-dir", str(dest)]) == 1
    assert "already exists" in capsys.readouterr().err


def test_add_link_and_a_diffusers_folder(model_folders, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "models"
    assert main(["models", "add", str(model_folders.good / "sd-tiny"), "--link", "--models-dir", str(dest)]) == 0
    assert (dest / "sd-tiny").is_symlink()
    from farm.engines.installed import default_registry

    assert default_registry(dest).descriptor("sd-inpaint").models == ("sd-tiny",)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("notes.txt", "is not a model file"),
        ("random.pth", r"random\.pth: the weights in this file are of no architecture"),
    ],
)
def test_add_refuses_what_is_not_a_usable_model(model_folders, tmp_path, capsys, name, message) -> None:  # type: ignore[no-untyped-def]
    dest = tmp_path / "models"
    assert main(["models", "add", str(model_folders.spare / name), "--models-dir", str(dest)]) == 1
    err = capsys.readouterr().err
    assert "refused" in err
    import re

    assert re.search(message, err)
    assert not dest.exists() or not any(dest.iterdir())


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pth_is_read_without_running_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"model.model.1.bn_l.running_mean": _RunsCode(marker)}))
        zf.writestr("archive/version", "3\n")
    assert "model.model.1.bn_l.running_mean" in (read_tensor_names(evil) or set())
    model = classify(evil)
    assert model is not None and model.kind == "lama"
    pytest.importorskip("spandrel")
    from farm.engines.installed import check_loads

    with pytest.raises(EngineError, match=r"evil\.pth: cannot load the model"):
        check_loads(model)
    assert not marker.exists()


def test_listing_without_the_ai_stack_still_lists_files(tmp_path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import farm.cli.models
    from tests.farm.engines.test_registry_ai import fake_safetensors

    monkeypatch.setattr(farm.cli.models, "missing_modules", lambda names: list(names))
    fake_safetensors(tmp_path / "big-lama.safetensors", ["model.model.1.bn_l.running_mean"])
    data = listing(capsys, tmp_path)
    assert data["ai_installed"] is False and "lanfarm[ai]" in data["hints"][0]
    assert [(m["name"], m["engine"]) for m in data["models"]] == [("big-lama.safetensors", "lama")]
    assert main(["models", "add", str(tmp_path / "big-lama.safetensors"), "--models-dir", str(tmp_path / "m")]) == 2
    assert "lanfarm[ai]" in capsys.readouterr().err
