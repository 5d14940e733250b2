"""Files on this PC: only regular files are read, with a cap; private files are private from the start."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

import pytest

from farm import EditSpec, Farm, FarmSettings, ImageError, JobState
from farm.local.files import read_bytes, write_atomic
from farm.local.token import save_token
from tests.conftest import REPO


def test_a_pipe_named_like_an_image_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match=r"photo\.png: not a regular file"):
        read_bytes(fifo)  # opening a FIFO for reading would block until a writer comes: never done


def test_a_link_to_an_endless_device_is_refused(tmp_path: Path) -> None:
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    with pytest.raises(ImageError, match=r"zero\.png: not a regular file"):
        read_bytes(link)


def test_an_input_over_the_cap_is_refused_by_name(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(b"\0" * 4096)
    with pytest.raises(ImageError, match=r"big\.png: .* over the .* limit"):
        read_bytes(big, limit=1024)
    assert read_bytes(big, limit=4096) == b"\0" * 4096


def test_private_files_are_never_readable_by_others(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "farm-token"
    save_token("secret-token", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    other = tmp_path / "plain.txt"
    write_atomic(other, b"x", mode=0o600)
    assert stat.S_IMODE(other.stat().st_mode) == 0o600


async def test_a_batch_with_a_pipe_among_its_inputs_ends_and_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "dusk.png").write_bytes((REPO / "resources" / "samples" / "dusk.png").read_bytes())
    mask = (REPO / "resources" / "samples" / "masks" / "dusk.png").read_bytes()
    (folder / "dusk_mask.png").write_bytes(mask)
    os.mkfifo(folder / "stuck.png")
    (folder / "stuck_mask.png").write_bytes(mask)
    async with Farm.open(FarmSettings(nodes=False)) as farm:
        async with asyncio.timeout(30):  # a hang fails the test instead of the suite
            batch = await farm.submit_paths([folder], None, EditSpec(), tmp_path / "out")
            await farm.wait()
    states = {j.input.name: j for j in batch.jobs}
    names = {p.path.name for p in batch.problems} | set(states)
    assert "stuck.png" in names and states["dusk.png"].state is JobState.DONE
    if "stuck.png" in states:
        assert states["stuck.png"].state is JobState.FAILED and "not a regular file" in (
            states["stuck.png"].error or ""
        )


def test_results_go_under_lanfarm_home_when_it_is_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from farm.local.paths import pictures_dir

    monkeypatch.setenv("LANFARM_HOME", str(tmp_path / "home"))
    assert pictures_dir() == tmp_path / "home" / "Pictures" / "LAN Farm"
