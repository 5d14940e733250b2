"""Input anywhere, checked here first (issue 16, build point 3): drops on the whole window and the
queue list, images over the farm's limit refused before anything is sent, the masks/ folder layout,
"Paint masks for these N", a folder picker that opens in the last folder used."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtWidgets import QFileDialog

from gui.app import LanFarmApp
from gui.settings import SettingsStore
from tests.conftest import REPO
from tests.gui.conftest import running, until, write_inputs
from tests.gui.test_queue import drop


def test_drops_anywhere_on_the_window_and_on_the_queue_list(qloop, store: SettingsStore, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", 2)
    app = LanFarmApp(store=store, use_tray=False)
    window, model = app.window, app.controller.queue

    async def scenario() -> None:
        async with running(app):
            window.resize(1000, 700)
            assert drop(window.queue_view.viewport(), [inputs[0]])  # the biggest target
            await until(lambda: model.rowCount() == 1, what="a row from the queue list drop")
            assert drop(window, [inputs[1]])  # the window itself (tabs, compare pane, margins)
            await until(lambda: model.rowCount() == 2, what="a row from the window drop")
            assert not drop(window.queue_view.viewport(), [tmp_path / "notes.txt"])

    qloop(scenario())


def test_an_image_over_the_size_limit_is_refused_before_anything_is_sent(
    qloop, store: SettingsStore, tmp_path: Path
) -> None:
    (tmp_path / "in").mkdir()
    huge = tmp_path / "in" / "huge.png"
    Image.new("1", (12_000, 10_000)).save(huge)  # 120 MP, a few kB on disk
    (tmp_path / "in" / "huge_mask.png").write_bytes(huge.read_bytes())
    small = write_inputs(tmp_path / "in", 1)
    app = LanFarmApp(store=store, use_tray=False)

    async def scenario() -> None:
        async with running(app):
            jobs = await app.controller.add_paths([tmp_path / "in"], app.window.current_spec())
            assert [j.name for j in jobs] == [small[0].name]
            assert any("huge.png not added" in t and "120 MP" in t for t in app.controller.log.texts())

    qloop(scenario())


def test_the_samples_folder_with_masks_beside_it_queues_every_image(
    qloop, store: SettingsStore, tmp_path: Path
) -> None:
    samples = tmp_path / "samples"
    shutil.copytree(REPO / "resources" / "samples", samples, ignore=shutil.ignore_patterns("*.py"))
    app = LanFarmApp(store=store, use_tray=False)
    asked: list[list[Path]] = []
    app.controller.needsMask.connect(asked.append)

    async def scenario() -> None:
        async with running(app):
            jobs = await app.controller.add_paths([samples], app.window.current_spec())
            assert sorted(j.name for j in jobs) == ["dusk.png", "harbour.png", "meadow.png", "studio.png"]
            assert all(j.mask is not None and j.mask.parent.name == "masks" for j in jobs)
            assert asked == []

    qloop(scenario())


def test_images_without_masks_offer_paint_masks_for_these(qloop, store: SettingsStore, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", 3, masks=False)
    app = LanFarmApp(store=store, use_tray=False)
    window = app.window

    async def scenario() -> None:
        async with running(app):
            await window.add_paths([tmp_path / "in"])
            button = window.paint_masks_button
            await until(lambda: not button.isHidden(), what="the paint-masks button")
            assert button.text() == "Paint masks for these 3"
            button.click()
            assert [e.image_path for e in window.mask_editors] == [inputs[0]]
            window.mask_editors[0].reject()
            await until(lambda: [e.image_path for e in window.mask_editors] == [inputs[1]], what="the next editor")
            window.mask_editors[0].reject()
            await until(lambda: [e.image_path for e in window.mask_editors] == [inputs[2]], what="the last editor")
            window.mask_editors[0].reject()
            await until(lambda: not window.mask_editors, what="no more editors")

    qloop(scenario())


def test_the_folder_picker_opens_in_the_last_folder_used(
    qloop, store: SettingsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_inputs(tmp_path / "photos" / "trip", 1)
    starts: list[str] = []

    def pick(parent: object, title: str, start: str = "", *a: object) -> str:  # the person at the keyboard
        starts.append(start)
        return str(tmp_path / "photos" / "trip")

    monkeypatch.setattr(QFileDialog, "getExistingDirectory", pick)
    app = LanFarmApp(store=store, use_tray=False)
    model = app.controller.queue

    async def scenario() -> None:
        async with running(app):
            app.window.drop_zone.browse_folder.click()
            await until(lambda: model.rowCount() == 1, what="the folder's image queued")
            app.window.drop_zone.browse_folder.click()
            assert starts[1] == str(tmp_path / "photos")

    qloop(scenario())
    second = LanFarmApp(store=SettingsStore(), use_tray=False)  # remembered across runs

    async def again() -> None:
        async with running(second):
            second.window.drop_zone.browse_folder.click()
            assert starts[-1] == str(tmp_path / "photos")

    qloop(again())
