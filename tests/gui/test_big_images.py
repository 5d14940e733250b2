"""Big images (issue 16, build point 4): the compare pane and the mask editor decode them scaled, up
to the farm's own size limit, and say so plainly when they cannot (never "Loading image…" forever)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QRectF, QSize

from farm.imaging.codec import DEFAULT_MAX_PIXELS
from gui.compare import MAX_SIDE, CompareView
from gui.mask_editor import MaskEditor, fit_mask
from gui.thumbnails import read_scaled


def big_rgb_png(path: Path, width: int, height: int) -> Path:
    """A flat RGB PNG: small on disk, width*height*4 bytes once Qt decodes it."""
    Image.new("RGB", (width, height), (90, 140, 200)).save(path, compress_level=1)
    return path


def test_a_72_mp_result_shows_in_the_compare_pane_scaled(qtbot, tmp_path: Path) -> None:
    big = big_rgb_png(tmp_path / "big.png", 9000, 8000)  # 288 MB decoded: over Qt's default 256 MB limit
    view = CompareView()
    qtbot.addWidget(view)
    with qtbot.waitSignal(view.ready, timeout=120_000):
        view.show_pair(big, big)
    assert view.after.width() <= MAX_SIDE and view.after.height() <= MAX_SIDE
    assert view.after.sizeInBytes() < 64 << 20  # the view keeps a scaled copy, not the full image
    assert view.error == ""


def test_an_image_over_the_farm_limit_is_refused_by_name(qtbot, tmp_path: Path) -> None:
    huge = tmp_path / "huge.png"
    Image.new("1", (12_000, 10_000)).save(huge)  # 120 MP
    image, error = read_scaled(huge, QSize(256, 256))
    assert image.isNull() and "120 MP" in error and f"{DEFAULT_MAX_PIXELS / 1e6:.0f} MP" in error
    view = CompareView()
    qtbot.addWidget(view)
    view.show_pair(huge, huge)
    qtbot.waitUntil(lambda: view.error != "", timeout=30_000)
    assert "over the farm's limit" in view.placeholder


def test_the_mask_editor_says_why_it_cannot_open_a_file(qtbot, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    editor = MaskEditor(notes)
    qtbot.addWidget(editor)
    with qtbot.waitSignal(editor.failed, timeout=30_000) as blocker:
        editor.show()
    assert "not an image" in blocker.args[0]
    assert editor.canvas.error == blocker.args[0] and not editor.save_button.isEnabled()


def test_a_big_image_is_painted_scaled_and_its_mask_saved_full_size(qtbot, tmp_path: Path) -> None:
    big = big_rgb_png(tmp_path / "wide.png", 8000, 4000)
    editor = MaskEditor(big)
    qtbot.addWidget(editor)
    with qtbot.waitSignal(editor.loaded, timeout=120_000):
        editor.show()
    assert editor.canvas.image.width() == 6000 and editor.image_size == (8000, 4000)
    painted = np.zeros((3000, 6000), np.uint8)
    painted[1500:, 3000:] = 255
    full = fit_mask(painted, editor.image_size)
    assert full.shape == (4000, 8000) and set(np.unique(full)) == {0, 255}
    assert full[3999, 7999] == 255 and full[0, 0] == 0
    assert editor.full_mask().shape == (4000, 8000)


def test_the_compare_pane_zooms_at_the_cursor_and_fits_again(qtbot, tmp_path: Path) -> None:
    picture = big_rgb_png(tmp_path / "p.png", 400, 300)
    view = CompareView()
    qtbot.addWidget(view)
    view.resize(400, 300)
    with qtbot.waitSignal(view.ready, timeout=30_000):
        view.show_pair(picture, picture)
    fitted = view.image_rect()
    at = QPointF(100, 75)
    view.zoom_at(4.0, at)
    zoomed = view.image_rect()
    assert zoomed.width() == pytest.approx(fitted.width() * 4)
    # the picture's point under the cursor stays under it
    fx = (at.x() - fitted.left()) / fitted.width()
    assert zoomed.left() + zoomed.width() * fx == pytest.approx(at.x(), abs=0.5)
    assert view.visible_rect() == QRectF(view.rect())
    view.reset_zoom()
    assert view.image_rect() == fitted
