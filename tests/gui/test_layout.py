"""Layout and state (issue 16, build point 5): the window works at 900 px, the dashboard scrolls
instead of dropping columns, geometry, edit params and brush size are remembered, the resume notice
stays in view."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from gui.app import LanFarmApp
from gui.settings import SettingsStore
from tests.gui.conftest import running, until, write_inputs


def test_the_window_works_900_px_wide_and_the_dashboard_scrolls(qloop, store: SettingsStore) -> None:
    app = LanFarmApp(store=store, use_tray=False)
    window = app.window

    async def scenario() -> None:
        async with running(app):
            assert window.minimumSizeHint().width() <= 900 and window.minimumWidth() <= 900
            window.resize(900, 700)
            QApplication.processEvents()
            assert window.width() == 900
            assert window.tabs.width() >= window.tabs.minimumSizeHint().width()  # nothing squeezed or cut
            window.side_action.trigger()  # the side panel folds away for the queue
            assert window.left_panel.isHidden()
            window.tabs.setCurrentWidget(window.dashboard)
            QApplication.processEvents()
            table = window.dashboard.table
            assert table.horizontalScrollBarPolicy() != Qt.ScrollBarPolicy.ScrollBarAlwaysOff
            window.side_action.trigger()
            QApplication.processEvents()
            assert table.horizontalScrollBar().maximum() > 0  # narrower than its columns: it scrolls
            assert [table.columnWidth(c) for c in (5, 6, 7)] == [50, 60, 80]  # Done, Errors, Speed kept
            metrics = table.fontMetrics()
            assert table.columnWidth(1) >= metrics.horizontalAdvance("unauthorised")

    qloop(scenario())


def test_geometry_params_and_brush_size_are_remembered(qloop, store: SettingsStore, tmp_path: Path) -> None:
    image = write_inputs(tmp_path / "in", 1)[0]
    first = LanFarmApp(store=store, use_tray=False)

    async def use() -> None:
        async with running(first):
            first.window.resize(880, 650)  # the offscreen screen is 800x800
            first.window.edit_form.set_param("radius", 9)
            editor = first.window.open_mask_editor(image)
            editor.canvas.set_brush_size(77)
            editor.reject()

    qloop(use())
    second = LanFarmApp(store=SettingsStore(), use_tray=False)

    async def again() -> None:
        async with running(second):
            assert (second.window.width(), second.window.height()) == (880, 650)
            assert second.window.edit_form.values()["radius"] == 9
            editor = second.window.open_mask_editor(image)
            assert editor.canvas.brush_size == 77
            editor.reject()

    qloop(again())


def test_the_resume_notice_stays_in_view(qloop, store: SettingsStore, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", 2)
    first = LanFarmApp(store=store, use_tray=False)

    async def interrupted() -> None:
        async with running(first):
            first.window.pause_action.setChecked(True)
            await first.window.add_paths(inputs)
            await until(lambda: first.controller.queue.counts().queued == 2, what="queued")

    qloop(interrupted())
    second = LanFarmApp(store=SettingsStore(), use_tray=False)

    async def resumed() -> None:
        async with running(second):
            assert second.window.activity.text.text() == "Resumed 2 unfinished edits from last time"
            await until(lambda: second.controller.queue.counts().done == 2, timeout=20, what="resumed edits done")

    qloop(resumed())


def test_a_finished_look_icons_empty_states_and_both_palettes(qloop, store: SettingsStore) -> None:
    from gui.theme import apply_theme

    app = LanFarmApp(store=store, use_tray=False)
    window = app.window
    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)

    async def scenario() -> None:
        async with running(app):
            for action in (window.add_action, window.paint_action, window.pause_action, window.folder_action):
                assert not action.icon().isNull(), action.text()
            assert window.queue_view.model().rowCount() == 0
            window.resize(1000, 700)
            shot = window.queue_view.viewport().grab().toImage()
            colours = {shot.pixel(x, y) for x in range(0, shot.width(), 7) for y in range(0, shot.height(), 7)}
            assert len(colours) > 3  # the empty queue draws its "Drop images here" state, not a blank box
            assert not window.dashboard.empty.isHidden() or not window.dashboard.isVisible()
            assert window.dashboard.empty.isVisibleTo(window.dashboard)  # "No other PCs yet" with how-to
            original = qapp.palette()
            try:
                assert apply_theme(qapp, Qt.ColorScheme.Dark) == "dark"
                assert qapp.palette().window().color().lightness() < 80
                assert apply_theme(qapp, Qt.ColorScheme.Light) == "light"
                assert qapp.palette().window().color().lightness() > 180
            finally:
                qapp.setPalette(original)

    qloop(scenario())


def test_settings_edits_are_marked_pending_until_applied(qloop, store: SettingsStore, tmp_path: Path) -> None:
    app = LanFarmApp(store=store, use_tray=False)
    page = app.window.settings_page

    async def scenario() -> None:
        async with running(app):
            assert not page.pending and not page.apply_button.isEnabled()
            page.quality.setValue(70)
            assert page.pending and page.apply_button.isEnabled() and "Not applied yet" in page.note.text()
            page.apply_button.click()
            assert app.controller.settings.quality == 70
            assert not page.pending and "Not applied yet" not in page.note.text()
            assert app.controller.log.texts()[-1] == "Settings applied"

    qloop(scenario())


def test_clear_finished_leaves_no_stale_counts_or_before_after(qloop, store: SettingsStore, tmp_path: Path) -> None:
    from PySide6.QtCore import QItemSelectionModel

    inputs = write_inputs(tmp_path / "in", 2)
    app = LanFarmApp(store=store, use_tray=False)
    window, model = app.window, app.controller.queue

    async def scenario() -> None:
        async with running(app):
            await window.add_paths(inputs)
            await until(lambda: model.counts().done == 2, timeout=20, what="done")
            window.queue_view.selectionModel().select(model.index(0), QItemSelectionModel.SelectionFlag.ClearAndSelect)
            await until(lambda: window.compare.is_ready, what="before/after")
            assert window.open_action.isEnabled()
            window.clear_action.trigger()
            assert model.rowCount() == 0
            assert window.counts_label.text() == "0 running · 0 queued · 0 done"
            assert not window.compare.is_ready and not window.open_action.isEnabled()

    qloop(scenario())
