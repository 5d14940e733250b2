"""Drop files -> jobs through the real scheduler and the local OpenCV engine -> done, with before/after."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelectionModel, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import QApplication, QWidget

from farm.core.job import JobState
from farm.core.scheduler import LOCAL
from farm.local.measurements import load_measurements, measurements_path
from gui.app import LanFarmApp
from gui.settings import SettingsStore
from tests.gui.conftest import running, until, write_inputs


def drop(widget: QWidget, paths: list[Path]) -> bool:
    """A real drag-enter then drop of file URLs on ``widget``; True when the drop was accepted."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(widget.rect().center())
    actions = Qt.DropAction.CopyAction
    # PySide6 6.11 builds a drag-enter event from an integer QPoint only (6.12 prefers QPointF)
    enter = QDragEnterEvent(
        widget.rect().center(), actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    )
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    event = QDropEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def pixels(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    buf = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return buf[:, : image.width() * 4].reshape(image.height(), image.width(), 4)[:, :, :3].copy()


def test_dropped_files_run_to_done_with_before_after(qloop, store: SettingsStore, tmp_path: Path) -> None:
    singles = write_inputs(tmp_path / "a", 2)
    write_inputs(tmp_path / "folder", 2)
    (tmp_path / "notes.txt").write_text("not an image")
    app = LanFarmApp(store=store, use_tray=False)
    window = app.window
    model = app.controller.queue

    async def scenario() -> None:
        async with running(app):
            window.resize(1100, 760)
            assert not drop(window.drop_zone, [tmp_path / "notes.txt"])
            assert drop(window.drop_zone, [*singles, tmp_path / "folder"])
            await until(lambda: model.rowCount() == 4, what="4 queue rows")
            await until(lambda: model.counts().done == 4, timeout=20, what="all jobs done")
            rows = [model.job_row(i) for i in range(4)]
            assert sorted(r.job.name for r in rows) == ["img0.png", "img0.png", "img1.png", "img1.png"]
            for row in rows:
                assert row.job.state is JobState.DONE and row.job.worker == "local"
                assert row.job.mask is not None and row.job.mask.name.endswith("_mask.png")
                assert row.job.output.is_file() and row.job.output.parent == tmp_path / "out"
                assert row.elapsed(model.clock()) is not None and row.progress == 1.0
            assert len({r.job.output for r in rows}) == 4  # same names from two folders: no clobbering
            assert window.counts_label.text().startswith("0 running · 0 queued · 4 done")
            assert app.notifications and app.notifications[-1][2] is False  # "batch finished", no error
            # what the batch measured is kept for the next one (farm.core.remembered)
            await until(lambda: measurements_path().is_file(), what="measurements written")
            assert load_measurements(measurements_path()).speeds[LOCAL]

            # thumbnails arrive from the pool thread
            await until(lambda: all(model.thumbnails.get(r.job.input) is not None for r in rows), what="thumbnails")

            # before/after of the first job: the split shows the result left of it, the original right
            window.queue_view.selectionModel().select(model.index(0), QItemSelectionModel.SelectionFlag.ClearAndSelect)
            compare = window.compare
            await until(lambda: compare.is_ready, what="before/after decoded")
            assert compare.after.size() == QImage(str(rows[0].job.output)).size()
            compare.resize(320, 240)
            compare.set_split(1.0)
            all_after = pixels(compare.grab().toImage())
            compare.set_split(0.0)
            all_before = pixels(compare.grab().toImage())
            diff = np.abs(all_after.astype(int) - all_before.astype(int)).sum(axis=2) > 30
            assert diff.any(), "the result differs from the input inside the mask"
            ys, xs = np.nonzero(diff)
            rect = compare.image_rect()
            # the masked box (40..80 x 30..70 of 160x120) is where they differ, in view coordinates
            assert rect.left() + rect.width() * 0.2 < xs.mean() < rect.left() + rect.width() * 0.55
            assert rect.top() + rect.height() * 0.2 < ys.mean() < rect.top() + rect.height() * 0.6

    qloop(scenario())


def test_cancel_and_retry_from_the_window(qloop, store: SettingsStore, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", 3)
    app = LanFarmApp(store=store, use_tray=False)
    window, model = app.window, app.controller.queue

    async def scenario() -> None:
        async with running(app):
            window.pause_action.setChecked(True)  # nothing starts while we cancel
            assert app.controller.paused
            await window.add_paths(inputs)
            await until(lambda: model.rowCount() == 3, what="rows")
            window.queue_view.selectAll()
            assert window.cancel_action.isEnabled()
            window.cancel_action.trigger()
            await until(lambda: model.counts().cancelled == 3, what="cancelled")
            assert app.notifications[-1][2] is True  # a batch that did not finish cleanly
            await until(lambda: app.controller.current_activity == "error", what="error activity")
            window.pause_action.setChecked(False)
            window.queue_view.selectAll()
            window._selection_changed()
            assert window.retry_action.isEnabled()
            window.retry_action.trigger()
            await until(lambda: model.counts().done == 3, timeout=20, what="done after retry")
            await until(lambda: app.controller.current_activity == "idle", what="idle again")
            opened: list[Path] = []
            import gui.main_window as mw

            original = mw.open_path

            def fake_open(path: Path) -> bool:
                opened.append(path)
                return True

            mw.open_path = fake_open
            try:
                window.queue_view.setCurrentIndex(model.index(1))
                window.open_action.trigger()
                window.reveal_action.trigger()
            finally:
                mw.open_path = original
            assert opened == [model.job_row(1).job.output, model.job_row(1).job.output.parent]
            window.clear_action.trigger()
            assert model.rowCount() == 0 and model.counts().done == 0

    qloop(scenario())
