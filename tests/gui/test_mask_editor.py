"""Painting in the mask editor: strokes give the expected mask pixels; undo/redo/clear; the saved mask
becomes the job's mask."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtTest import QTest

from farm.core.job import JobState
from gui.app import LanFarmApp
from gui.mask_editor import MaskCanvas, MaskEditor, mask_path_for
from gui.settings import SettingsStore
from tests.conftest import png_bytes, scene
from tests.gui.conftest import running, until, write_inputs


def at(canvas: MaskCanvas, x: float, y: float) -> QPoint:
    return canvas.to_widget(QPointF(x, y)).toPoint()


def stroke(canvas: MaskCanvas, points: list[tuple[float, float]]) -> None:
    QTest.mousePress(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(canvas, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(canvas, at(canvas, *p))
    QTest.mouseRelease(canvas, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, at(canvas, *points[-1]))


def test_strokes_paint_the_mask_and_undo_restores_it(qloop, qtbot, tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes(scene(200, 150)))
    editor = MaskEditor(image)
    qtbot.addWidget(editor)
    editor.resize(900, 700)
    editor.show()

    async def scenario() -> None:
        await until(lambda: not editor.canvas.image.isNull(), what="image loaded")

    qloop(scenario())
    canvas = editor.canvas
    assert canvas.mask_array().shape == (150, 200) and not canvas.mask_array().any()
    canvas.set_brush_size(10)
    assert canvas.zoom > 1  # fitted: a 200 px image fills the editor

    stroke(canvas, [(20, 75), (100, 75), (180, 75)])
    mask = canvas.mask_array()
    assert set(np.unique(mask)) == {0, 255}
    assert mask[75, 20] == mask[75, 100] == mask[75, 180] == 255
    assert mask[73, 100] == mask[78, 100] == 255  # the brush is 10 image pixels wide
    assert mask[60, 100] == 0 and mask[90, 100] == 0 and mask[75, 190] == 0
    painted = int((mask > 0).sum())
    assert 160 * 9 <= painted <= 160 * 11 + 120
    first = mask.copy()

    editor.eraser_action.trigger()
    stroke(canvas, [(100, 60), (100, 90)])
    erased = canvas.mask_array()
    assert erased[75, 100] == 0 and erased[75, 20] == 255

    editor.undo_action.trigger()  # the eraser stroke
    assert np.array_equal(canvas.mask_array(), first)
    editor.undo_action.trigger()  # the brush stroke
    assert not canvas.mask_array().any()
    editor.redo_action.trigger()
    assert np.array_equal(canvas.mask_array(), first)
    editor.clear_action.trigger()
    assert not canvas.mask_array().any()
    editor.undo_action.trigger()
    assert np.array_equal(canvas.mask_array(), first)


def test_keyboard_shortcuts_wheel_zoom_and_space_pan(qloop, qtbot, tmp_path: Path) -> None:
    image = tmp_path / "photo.png"
    image.write_bytes(png_bytes(scene(200, 150)))
    editor = MaskEditor(image)
    qtbot.addWidget(editor)
    editor.resize(900, 700)
    editor.show()
    qtbot.waitExposed(editor)

    async def scenario() -> None:
        await until(lambda: not editor.canvas.image.isNull(), what="image loaded")

    qloop(scenario())
    canvas = editor.canvas
    editor.activateWindow()
    canvas.setFocus()
    size = canvas.brush_size
    QTest.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush_size > size
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    QTest.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush_size < size
    assert editor.size_slider.value() == canvas.brush_size

    stroke(canvas, [(50, 50), (120, 50)])
    assert canvas.mask_array().any()
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not canvas.mask_array().any()
    QTest.keyClick(canvas, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    assert canvas.mask_array().any()

    # space held + drag pans instead of painting
    before = canvas.mask_array().copy()
    offset = QPointF(canvas.offset)
    QTest.keyPress(canvas, Qt.Key.Key_Space)
    stroke(canvas, [(100, 100), (140, 120)])
    QTest.keyRelease(canvas, Qt.Key.Key_Space)
    assert np.array_equal(canvas.mask_array(), before)
    assert canvas.offset != offset

    zoom = canvas.zoom
    canvas.zoom_at(1.15**2, QPointF(100, 100))
    assert canvas.zoom > zoom
    QTest.keyClick(canvas, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)  # fit again
    assert abs(canvas.zoom - zoom) < 1e-6


def test_painted_mask_is_saved_under_the_output_folder_and_used_by_the_job(
    qloop, store: SettingsStore, tmp_path: Path
) -> None:
    [image] = write_inputs(tmp_path / "in", 1, masks=False)
    app = LanFarmApp(store=store, use_tray=False)

    async def scenario() -> None:
        async with running(app):
            window = app.window
            await window.add_paths([image])  # no mask beside it: the editor opens for it
            await until(lambda: len(window.mask_editors) == 1, what="mask editor opened")
            editor = window.mask_editors[0]
            assert editor.image_path == image
            await until(lambda: editor.save_button.isEnabled(), what="image loaded")
            editor.canvas.set_brush_size(12)
            stroke(editor.canvas, [(40, 60), (120, 60)])
            painted = editor.mask_array().copy()
            editor.accept()
            model = app.controller.queue
            await until(lambda: model.counts().done == 1, timeout=20, what="masked job done")
            job = model.job_row(0).job
            assert job.state is JobState.DONE
            assert job.mask == mask_path_for(image, tmp_path / "out")
            assert job.mask.parent == tmp_path / "out" / ".masks"
            saved = cv2.imread(str(job.mask), cv2.IMREAD_GRAYSCALE)
            assert np.array_equal(saved, painted)
            assert sorted(p.name for p in image.parent.iterdir()) == ["img0.png"]  # inputs untouched
            result = cv2.imread(str(job.output))
            original = cv2.imread(str(image))
            changed = np.abs(result.astype(int) - original.astype(int)).sum(axis=2) > 0
            assert changed[painted == 0].sum() == 0 and changed[painted > 0].any()

    qloop(scenario())
