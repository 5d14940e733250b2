"""`lanfarm run` as a user runs it: a real subprocess on real files."""

from __future__ import annotations

import ctypes
import io
import os
import subprocess
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import LANFARM, box_mask, png_bytes, png_header_only, scene, subprocess_env


def _drop_root_file_powers() -> None:
    """Make root obey file permissions (drop CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH before exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")


def run_cli(*args: str, obey_permissions: bool = False) -> subprocess.CompletedProcess[str]:
    preexec = _drop_root_file_powers if obey_permissions and os.geteuid() == 0 else None
    return subprocess.run(
        [*LANFARM, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(),
        preexec_fn=preexec,
        check=False,
    )


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_bad_inputs_fail_alone_with_clear_reasons(tmp_path: Path) -> None:
    world_dir = tmp_path
    src, masks, out = world_dir / "in", world_dir / "masks", world_dir / "out"
    for name in ("good1", "good2"):
        _write(src / f"{name}.png", png_bytes(scene()))
        _write(masks / f"{name}.png", png_bytes(box_mask()))
    _write(src / "corrupt.png", png_bytes(scene())[:300])
    _write(src / "empty.png", b"")
    _write(src / "bomb.png", png_header_only(20000, 10000))
    _write(src / "wrongmask.png", png_bytes(scene()))
    for name in ("corrupt", "empty", "bomb"):
        _write(masks / f"{name}.png", png_bytes(box_mask()))
    _write(masks / "wrongmask.png", png_bytes(np.zeros((10, 10), np.uint8)))
    ico = io.BytesIO()
    Image.new("RGB", (16, 16)).save(ico, format="ICO")
    odd = _write(world_dir / "odd" / "icon.png", ico.getvalue())
    _write(masks / "icon.png", png_bytes(box_mask(16, 16, (2, 2, 8, 8))))
    locked = world_dir / "locked"
    _write(locked / "hidden.png", png_bytes(scene()))
    out.mkdir()
    locked.chmod(0o000)

    result = run_cli(
        "run", str(src), str(odd), str(locked), "--mask", str(masks), "--out", str(out), obey_permissions=True
    )

    assert result.returncode == 1, result.stderr
    assert "done 2, failed 6" in result.stdout
    err = result.stderr
    for fragment in (
        "corrupt.png: corrupt",
        "empty.png: empty file",
        "bomb.png: image is 20000x10000",
        "wrongmask.png: mask is 10x10",
        "icon.png: unsupported image format ICO",
        "locked: cannot read folder",
    ):
        assert fragment in err, (fragment, err)
    assert "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == ["good1.png", "good2.png"]
    locked.chmod(0o755)


def test_output_folder_that_is_a_file_is_refused(tmp_path: Path) -> None:
    img = _write(tmp_path / "a.png", png_bytes(scene()))
    _write(tmp_path / "a_mask.png", png_bytes(box_mask()))
    blocker = _write(tmp_path / "out", b"i am a file")
    result = run_cli("run", str(img), "--out", str(blocker))
    assert result.returncode == 2
    assert "is a file" in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_bytes() == b"i am a file"


def test_existing_outputs_and_inputs_are_never_overwritten(tmp_path: Path) -> None:
    img = _write(tmp_path / "photo.png", png_bytes(scene()))
    _write(tmp_path / "photo_mask.png", png_bytes(box_mask()))
    before = img.read_bytes()
    # output into the input folder: the input must survive, a suffixed name is used
    first = run_cli("run", str(img), "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert img.read_bytes() == before
    assert (tmp_path / "photo-1.png").exists()
    again = run_cli("run", str(img), "--out", str(tmp_path))  # the same batch: nothing to do
    assert again.returncode == 0 and "up to date 1" in again.stdout
    assert not (tmp_path / "photo-2.png").exists()
    second = run_cli("run", str(img), "--out", str(tmp_path), "--fresh")  # redo, beside the earlier output
    assert second.returncode == 0
    assert (tmp_path / "photo-2.png").exists()
    assert (tmp_path / "photo-1.png").read_bytes() == (tmp_path / "photo-2.png").read_bytes()


def test_overwrite_replaces_outputs_but_never_inputs(tmp_path: Path) -> None:
    img = _write(tmp_path / "in" / "photo.png", png_bytes(scene()))
    _write(tmp_path / "in" / "photo_mask.png", png_bytes(box_mask()))
    out = tmp_path / "out"
    _write(out / "photo.png", b"old")
    result = run_cli("run", str(img), "--out", str(out), "--overwrite", "--format", "jpeg")
    assert result.returncode == 0, result.stderr
    assert (out / "photo.jpg").read_bytes()[:2] == b"\xff\xd8"
    result = run_cli("run", str(img), "--out", str(out), "--overwrite")
    assert (out / "photo.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in out.iterdir()) == ["photo.jpg", "photo.png"]


def test_samples_run_with_the_default_engine(tmp_path: Path) -> None:
    from tests.conftest import REPO

    samples = REPO / "resources" / "samples"
    result = run_cli("run", str(samples), "--mask", str(samples / "masks"), "--out", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    assert len(list(tmp_path.glob("*.png"))) == len(list(samples.glob("*.png")))


def test_an_engine_this_pc_cannot_run_says_what_is_missing(tmp_path: Path) -> None:
    from farm import default_registry

    img = _write(tmp_path / "a.png", png_bytes(scene()))
    result = run_cli(
        "run", str(img), "--out", str(tmp_path / "out"), "--op", "upscale", "--engine", "upscale", "--local-only"
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    if "upscale" in default_registry().ids():  # the ai extra is installed: the models folder is named
        assert "no upscaling model: put" in result.stderr and "models" in result.stderr
    else:
        assert "unknown engine 'upscale'" in result.stderr
