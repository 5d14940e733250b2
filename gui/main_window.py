"""The main window: drop zone and edit picker on the left; queue with before/after, nodes and settings
on the right; a toolbar for the queue and the local worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

import numpy as np
from PySide6.QtCore import QEvent, QModelIndex, QObject, QPoint, QRect, QRectF, QSize, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDesktopServices,
    QDragEnterEvent,
    QDropEvent,
    QFont,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListView,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from farm.core.job import JobState
from farm.core.spec import EditSpec, OutputFormat, OutputSpec
from farm.runtime.model_sync import SendQuestion
from farm.runtime.planning import IMAGE_SUFFIXES
from gui.activity import ActivityStrip
from gui.compare import CompareView
from gui.dashboard import Dashboard
from gui.drop_zone import DropZone, acceptable, local_paths
from gui.edit_form import EditForm
from gui.mask_editor import MaskEditor, mask_path_for, save_mask
from gui.models_dialog import ModelsDialog
from gui.queue_model import QueueDelegate
from gui.rows import FIX_LABELS, Counts, JobRow
from gui.send_models_prompt import Answer, SendModelsPrompt, answer_of
from gui.settings import AppSettings
from gui.settings_page import SettingsPage
from gui.theme import icon
from gui.ui_state import UiState
from gui.viewmodels import FarmController

MIN_WIDTH = 880  # tiles beside a file manager on a 1920-px screen


def open_path(path: Path) -> bool:
    """Open a file or folder with the desktop's default application."""
    return QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


class BatchBar(QWidget):
    """The batch's progress bar. Painted like a QProgressBar, but a change only schedules a repaint:
    QProgressBar.setValue repaints at once (5 ms a call here, 10 calls a second during a batch)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._max, self._value, self._text = 1, 0, ""
        self.setMinimumHeight(22)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(200, 22)

    def set_progress(self, value: int, maximum: int, text: str) -> None:
        if (value, maximum, text) != (self._value, self._max, self._text):
            self._value, self._max, self._text = value, max(1, maximum), text
            self.update()

    def value(self) -> int:
        return self._value

    def maximum(self) -> int:
        return self._max

    def format(self) -> str:
        return self._text

    def paintEvent(self, event: QPaintEvent) -> None:
        # drawn by hand: the Fusion style's progress bar took 4 ms a paint at this width
        palette = self.palette()
        painter = QPainter(self)
        frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(palette.color(QPalette.ColorRole.Mid))
        painter.setBrush(palette.color(QPalette.ColorRole.Base))
        painter.drawRoundedRect(frame, 4, 4)
        if self._value > 0:
            done = QRectF(frame.left(), frame.top(), frame.width() * min(1.0, self._value / self._max), frame.height())
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(done, 4, 4)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self._text)


class QueueView(QListView):
    """The queue list; empty, it shows where to start instead of a blank white box."""

    EMPTY_TITLE = "Drop images here"
    EMPTY_HINT = (
        "or anywhere on this window, or use Add images… / Add folder…\nFinished edits land in the output folder."
    )

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            rect = self.viewport().rect()
            art = icon("empty-drop").pixmap(56, 56)
            top = rect.center().y() - 70
            painter.drawPixmap(rect.center().x() - 28, top, art)
            font = QFont(self.font())
            font.setPointSizeF(font.pointSizeF() * 1.3)
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(self.palette().text().color())
            title = QRect(rect.left(), top + 64, rect.width(), 28)
            painter.drawText(title, Qt.AlignmentFlag.AlignCenter, self.EMPTY_TITLE)
            painter.setFont(self.font())
            painter.setPen(self.palette().placeholderText().color())
            hint = QRect(rect.left() + 20, title.bottom() + 4, rect.width() - 40, 48)
            painter.drawText(hint, Qt.AlignmentFlag.AlignHCenter | Qt.TextFlag.TextWordWrap, self.EMPTY_HINT)
            painter.end()


class MainWindow(QMainWindow):
    """Closing hides it when the app lives in the tray; otherwise ``closed`` asks the app to quit."""

    closed = Signal()
    batchChanged = Signal(str)  # the batch bar's text ("" when nothing is in hand), for the tray tooltip
    hiddenToTray = Signal()

    def __init__(self, controller: FarmController, *, keep_in_tray: bool = True) -> None:
        super().__init__()
        self.controller = controller
        self.keep_in_tray = keep_in_tray
        self.quitting = False
        self.mask_editors: list[MaskEditor] = []
        self._compared: str | None = None  # the job whose before/after the compare pane shows
        self._mask_todo: list[Path] = []  # "Paint masks for these N": the images still to paint
        self._pending_masks: list[Path] = []  # the latest drop's images without a mask
        self.models_dialog: ModelsDialog | None = None
        self.send_prompts: list[SendModelsPrompt] = []  # "Send models: ask me" questions open now
        self._dialog_tasks: set[asyncio.Future[None]] = set()
        self.ui = UiState(controller.store.path)
        self.setWindowTitle("LAN Farm")
        self.setAcceptDrops(True)  # drops anywhere on the window, not only on the drop zone
        self.resize(1180, 760)
        self.setMinimumWidth(MIN_WIDTH)

        left = self._build_left_panel()
        queue_page = self._build_queue_page()
        self._build_tabs(queue_page)
        self._build_central(left)
        self._build_toolbar()
        self._build_status_bar()

        self._connect_left_panel()
        self._connect_queue()
        self._connect_toolbar()
        self._connect_controller()
        self._show_current_state()
        self._restore_state()

    # ----------------------------------------------------------- building: left
    def _build_left_panel(self) -> QScrollArea:
        """Drop zone, edit picker and output folder, in a scroll area."""
        self._build_drop_zone()
        edit_box = self._build_edit_form()
        out_box = self._build_output_box()
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.drop_zone)
        self.paint_masks_button = QPushButton("Paint masks")
        self.paint_masks_button.setVisible(False)
        self.paint_masks_button.clicked.connect(lambda: self.paint_masks())
        left_layout.addWidget(self.paint_masks_button)
        left_layout.addWidget(edit_box)
        left_layout.addWidget(out_box)
        left_layout.addStretch(1)
        scroll = QScrollArea(widgetResizable=True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(left)
        scroll.setMinimumWidth(270)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        return scroll

    def _build_drop_zone(self) -> None:
        self.drop_zone = DropZone(start_folder=lambda: self.ui.last_folder())
        self.drop_zone.folderUsed.connect(self.ui.set_last_folder)

    def _build_edit_form(self) -> QGroupBox:
        settings = self.controller.settings
        self.edit_form = EditForm(self.controller.registry.descriptors(), engine=settings.engine)
        edit_box = QGroupBox("Edit")
        QVBoxLayout(edit_box).addWidget(self.edit_form)
        return edit_box

    def _build_output_box(self) -> QGroupBox:
        self.output_label = QLabel(wordWrap=True)
        self.output_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.output_button = QPushButton("Change…")
        out_box = QGroupBox("Output")
        out_layout = QHBoxLayout(out_box)
        out_layout.addWidget(self.output_label, 1)
        out_layout.addWidget(self.output_button)
        return out_box

    # ---------------------------------------------------------- building: queue
    def _build_queue_page(self) -> QSplitter:
        """The queue list with its action buttons above the before/after compare pane."""
        self._build_queue_list()
        self._build_queue_actions()
        actions_row = self._build_queue_buttons()
        self._build_compare_pane()
        queue_top = QWidget()
        qt_layout = QVBoxLayout(queue_top)
        qt_layout.setContentsMargins(0, 0, 0, 0)
        qt_layout.addWidget(self._build_batch_row())
        qt_layout.addWidget(self.queue_view, 1)
        qt_layout.addLayout(actions_row)
        qt_layout.addWidget(self.counts_label)
        queue_split = QSplitter(Qt.Orientation.Vertical)
        queue_split.addWidget(queue_top)
        queue_split.addWidget(self.compare)
        queue_split.setSizes([420, 300])
        return queue_split

    def _build_batch_row(self) -> QWidget:
        """The batch bar with its ETA, and the Paused notice with Resume."""
        self.batch_bar = BatchBar()
        self.paused_label = QLabel("<b>Paused</b>: no new edit starts (running ones finish)")
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(lambda: self.pause_action.setChecked(False))
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 4)
        layout.addWidget(self.batch_bar, 1)
        layout.addWidget(self.paused_label)
        layout.addWidget(self.resume_button)
        self.paused_label.setVisible(False)
        self.resume_button.setVisible(False)
        self.batch_row = row
        row.setVisible(False)
        self._batch_timer = QTimer(self, interval=1000)
        self._batch_timer.timeout.connect(self._update_batch)
        return row

    def _build_queue_list(self) -> None:
        queue = self.controller.queue
        self.queue_view = QueueView()
        self.queue_view.setModel(queue)
        self.queue_view.setItemDelegate(QueueDelegate(queue, self.queue_view))
        self.queue_view.setUniformItemSizes(True)  # needed for 10,000 rows: no per-row size queries
        self.queue_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.queue_view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.queue_view.setAlternatingRowColors(True)
        self.queue_view.viewport().setAcceptDrops(True)
        self.queue_view.viewport().installEventFilter(self)  # the biggest drop target of all

    def _build_queue_actions(self) -> None:
        """The actions on the selected jobs (context menu, buttons, shortcuts)."""
        self.cancel_action = QAction("Cancel", self, shortcut=QKeySequence(QKeySequence.StandardKey.Delete))
        self.retry_action = QAction("Retry", self)
        self.fix_action = QAction("Retry", self)  # what a failed row needs: Retry, Paint mask, Open models folder
        self.open_action = QAction("Open result", self)
        self.reveal_action = QAction("Show in folder", self)
        self.mask_job_action = QAction("Paint mask and queue again…", self)
        self.clear_action = QAction("Clear finished", self)

    def _build_queue_buttons(self) -> QHBoxLayout:
        """A button per queue action (enabled as its action is) and the job counts."""
        actions_row = QHBoxLayout()
        for action in (self.cancel_action, self.fix_action, self.open_action, self.reveal_action, self.clear_action):
            button = QPushButton(action.text())
            button.clicked.connect(action.trigger)
            action.changed.connect(lambda b=button, a=action: (b.setEnabled(a.isEnabled()), b.setText(a.text())))
            actions_row.addWidget(button)
            self.queue_view.addAction(action)
        actions_row.addStretch(1)
        self.counts_label = QLabel()  # on its own line under the buttons: the row stays narrow
        self.counts_label.setStyleSheet("color: palette(placeholder-text);")
        return actions_row

    def _build_compare_pane(self) -> None:
        self.compare = CompareView()

    # ---------------------------------------------------- building: the window
    def _build_tabs(self, queue_page: QWidget) -> None:
        """Queue, Nodes (the dashboard) and Settings."""
        self.dashboard = Dashboard(self.controller)
        self.settings_page = SettingsPage(self.controller)
        self.tabs = QTabWidget()
        self.tabs.addTab(queue_page, "Queue")
        self.tabs.addTab(self.dashboard, "Nodes")
        self.tabs.addTab(self.settings_page, "Settings")

    def _build_central(self, left: QWidget) -> None:
        """The banner over the left panel and the tabs side by side."""
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([340, 840])
        self._build_banner()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.banner)
        central_layout.addWidget(split, 1)
        self.activity = ActivityStrip(self.controller.log)
        central_layout.addWidget(self.activity)
        self.setCentralWidget(central)
        self.left_panel = left

    def _build_banner(self) -> None:
        self.banner = QLabel(wordWrap=True)
        self.banner.setVisible(False)
        self.banner.setStyleSheet(
            "background: palette(tool-tip-base); color: palette(tool-tip-text);"
            "padding: 6px 10px; border-bottom: 1px solid palette(mid);"
        )

    def _build_toolbar(self) -> None:
        bar = QToolBar("Main", movable=False)
        bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        bar.setIconSize(QSize(20, 20))
        self.addToolBar(bar)
        self.add_action = QAction("Add images…", self, shortcut=QKeySequence(QKeySequence.StandardKey.Open))
        self.paint_action = QAction("Paint mask…", self, shortcut=QKeySequence("Ctrl+M"))
        self.pause_action = QAction("Pause queue", self, checkable=True)
        self.local_action = QAction("Pause this PC", self, checkable=True)
        self.local_action.setEnabled(self.controller.settings.local_worker)
        self.folder_action = QAction("Open output folder", self)
        self.side_action = QAction("Side panel", self, checkable=True, checked=True, shortcut=QKeySequence("Ctrl+B"))
        self.side_action.setToolTip("Show or hide the drop zone and the edit form (Ctrl+B)")
        for action, name in (
            (self.side_action, "action-panel"),
            (self.add_action, "action-add"),
            (self.paint_action, "action-paint"),
            (self.pause_action, "action-pause"),
            (self.local_action, "action-pc"),
            (self.folder_action, "action-output"),
        ):
            action.setIcon(icon(name))
        self.retry_action.setIcon(icon("action-retry"))
        for action in (self.side_action, self.add_action, self.paint_action):
            bar.addAction(action)
        bar.addSeparator()
        for action in (self.pause_action, self.local_action, self.folder_action):
            bar.addAction(action)
        self.models_action = QAction("Models…", self)  # this PC's models, and "Copy to nodes"
        bar.addAction(self.models_action)

    def show_models(self) -> ModelsDialog:
        """The Models window (gui/models_dialog.py), read afresh each time it opens."""
        if self.models_dialog is None:
            self.models_dialog = ModelsDialog(self.controller.settings.models_dir, self.controller.farm, self)
        self.models_dialog.farm = self.controller.farm
        self.models_dialog.show()
        reload = asyncio.ensure_future(self.models_dialog.reload())
        self._dialog_tasks.add(reload)
        reload.add_done_callback(self._dialog_tasks.discard)
        return self.models_dialog

    async def ask_send_models(self, question: SendQuestion) -> Answer:
        """The farm asks whether to send a model (setting "ask me"): a prompt that does not block the app."""
        prompt = SendModelsPrompt(question, self)
        self.send_prompts.append(prompt)
        try:
            return await answer_of(prompt)
        finally:
            self.send_prompts.remove(prompt)
            prompt.deleteLater()

    def _build_status_bar(self) -> None:
        # statusBar() creates the bar: only when there is something to show, else at the first message
        if self.controller.registry.lite:  # an install without the AI engines: say so once, permanently
            self.statusBar().addPermanentWidget(QLabel("Lite: OpenCV engines only"))

    # ------------------------------------------------------------------ wiring
    def _connect_left_panel(self) -> None:
        self.drop_zone.pathsDropped.connect(self.add_paths)
        self.edit_form.engineChanged.connect(self._engine_changed)
        self.controller.enginesChanged.connect(self.edit_form.set_descriptors)
        self.output_button.clicked.connect(self._choose_output)

    def _connect_queue(self) -> None:
        self.queue_view.customContextMenuRequested.connect(self._queue_menu)
        self.queue_view.doubleClicked.connect(self._open_index)
        self.queue_view.selectionModel().selectionChanged.connect(self._selection_changed)
        self.cancel_action.triggered.connect(self.cancel_selected)
        self.retry_action.triggered.connect(self.retry_selected)
        self.open_action.triggered.connect(self.open_selected)
        self.reveal_action.triggered.connect(self.reveal_selected)
        self.mask_job_action.triggered.connect(self.paint_mask_selected)
        self.clear_action.triggered.connect(self.clear_finished)
        self.fix_action.triggered.connect(self.fix_selected)

    def _connect_toolbar(self) -> None:
        self.models_action.triggered.connect(self.show_models)
        self.add_action.triggered.connect(self._browse)
        self.paint_action.triggered.connect(self.paint_mask)
        self.pause_action.toggled.connect(self.controller.set_paused)
        self.local_action.toggled.connect(self.controller.set_local_paused)
        self.folder_action.triggered.connect(self.open_output_folder)
        self.side_action.toggled.connect(lambda on: self.left_panel.setVisible(on))

    def _connect_controller(self) -> None:
        controller = self.controller
        controller.asker = self.ask_send_models
        controller.message.connect(self._show_message)
        controller.countsChanged.connect(self._counts_changed)
        controller.settingsChanged.connect(self._settings_changed)
        controller.needsMask.connect(self._needs_mask)
        controller.pausedChanged.connect(self._sync_check(self.pause_action))
        controller.pausedChanged.connect(lambda _p: self._update_batch())
        controller.localPausedChanged.connect(self._sync_check(self.local_action))
        controller.queue.dataChanged.connect(self._rows_changed)

    def _show_current_state(self) -> None:
        self._settings_changed(self.controller.settings)
        self._counts_changed(self.controller.queue.counts())
        self._selection_changed()

    # ---------------------------------------------------------------- editing
    def current_spec(self) -> EditSpec:
        s = self.controller.settings
        # AppSettings keeps the format as a plain str, checked against OUTPUT_FORMATS when the settings load
        self.edit_form.output = OutputSpec(format=cast(OutputFormat, s.output_format), quality=s.quality)
        return self.edit_form.spec()

    def add_paths(self, paths: list[Path]) -> asyncio.Task[object]:
        self.ui.set_params(self.edit_form.engine_id, self.edit_form.values())
        return self.controller.spawn(self.controller.add_paths(paths, self.current_spec()), "adding images")

    # ------------------------------------------------------------ drops anywhere
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(acceptable(p) for p in local_paths(event.mimeData())):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragEnterEvent) -> None:  # type: ignore[override]
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [p for p in local_paths(event.mimeData()) if acceptable(p)]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)
        else:
            event.ignore()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Drags over the queue list are the window's (the list itself takes no drops)."""
        if watched is self.queue_view.viewport():
            if isinstance(event, QDragEnterEvent) and event.type() == QEvent.Type.DragEnter:
                self.dragEnterEvent(event)
                return True
            if event.type() == QEvent.Type.DragMove and isinstance(event, QDropEvent):
                event.acceptProposedAction()
                return True
            if event.type() == QEvent.Type.Drop and isinstance(event, QDropEvent):
                self.dropEvent(event)
                return True
        return super().eventFilter(watched, event)

    def _browse(self) -> None:
        self.drop_zone.browse.click()

    def _choose_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", str(self.controller.settings.output_dir))
        if folder:
            self.controller.update_settings(replace(self.controller.settings, output_dir=Path(folder)))

    def _engine_changed(self, engine: str) -> None:
        for name, value in self.ui.params(engine).items():  # the values last used with this engine
            if name in self.edit_form.controls:
                try:
                    self.edit_form.set_param(name, value)
                except (TypeError, ValueError):
                    continue
        if engine != self.controller.settings.engine:
            self.controller.update_settings(replace(self.controller.settings, engine=engine))

    def paint_mask(self) -> MaskEditor | None:
        rows = self._selected_rows()
        if rows:
            return self.open_mask_editor(rows[0].job.input)
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        file, _ = QFileDialog.getOpenFileName(self, "Paint a mask for…", self.ui.last_folder(), f"Images ({patterns})")
        return self.open_mask_editor(Path(file)) if file else None

    def paint_mask_selected(self) -> None:
        rows = self._selected_rows()
        if rows:
            self.open_mask_editor(rows[0].job.input)

    def open_mask_editor(self, image: Path) -> MaskEditor:
        existing = mask_path_for(image, self.controller.settings.output_dir)
        editor = MaskEditor(image, existing if existing.exists() else None, parent=self)
        editor.canvas.set_brush_size(self.ui.brush_size(editor.canvas.brush_size))
        editor.canvas.brushSizeChanged.connect(self.ui.set_brush_size)
        editor.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)  # freed on the GUI thread once closed
        spec = self.current_spec()
        editor.accepted.connect(lambda: self._mask_accepted(editor, spec))
        editor.finished.connect(lambda _r: self.mask_editors.remove(editor) if editor in self.mask_editors else None)
        editor.finished.connect(lambda _r: self._next_mask())
        self.mask_editors.append(editor)
        editor.open()
        return editor

    def _mask_accepted(self, editor: MaskEditor, spec: EditSpec) -> asyncio.Task[object]:
        mask = editor.full_mask()
        image = editor.image_path
        return self.controller.spawn(self._save_and_queue(image, mask, spec), f"mask for {image.name}")

    async def _save_and_queue(self, image: Path, mask: np.ndarray, spec: EditSpec) -> None:
        if not mask.any():
            self.controller.post(f"The mask for {image.name} is empty: nothing to edit", "warning")
            return
        path = await asyncio.to_thread(save_mask, mask, mask_path_for(image, self.controller.settings.output_dir))
        await self.controller.add_with_mask(image, path, spec)

    def _needs_mask(self, inputs: list[Path]) -> None:
        n = len(inputs)
        if n == 1:
            self.controller.post(f"{inputs[0].name} has no mask: paint one", "warning")
            self.open_mask_editor(inputs[0])
            return
        self.controller.post(
            f"{n} images have no mask (photo_mask.png beside photo.png, or masks/photo.png)", "warning"
        )
        self.paint_masks_button.setText(f"Paint masks for these {n}")
        self.paint_masks_button.setVisible(True)
        self._pending_masks = list(inputs)

    def paint_masks(self, inputs: Sequence[Path] | None = None) -> MaskEditor | None:
        """One mask editor after another, for each image that has no mask yet."""
        self._mask_todo = list(inputs if inputs is not None else self._pending_masks)
        self.paint_masks_button.setVisible(False)
        return self._next_mask()

    def _next_mask(self) -> MaskEditor | None:
        if not self._mask_todo or self.quitting:
            return None
        return self.open_mask_editor(self._mask_todo.pop(0))

    # ----------------------------------------------------------------- queue
    def _selected_rows(self) -> list[JobRow]:
        return self.controller.queue.job_rows(self.queue_view.selectionModel().selectedRows())

    def cancel_selected(self) -> None:
        self.controller.cancel([r.job.id for r in self._selected_rows() if not r.job.state.finished])

    def fix_selected(self) -> None:
        """What the selected failed row needs: run it again, paint its mask, or put the model in place."""
        rows = self._selected_rows()
        failed = [r for r in rows if r.job.state is JobState.FAILED]
        action = failed[0].fix()[1] if failed else "retry"
        if action == "models":
            folder = self.controller.settings.models_dir
            folder.mkdir(parents=True, exist_ok=True)
            open_path(folder)
        elif action == "mask":
            self.paint_masks([r.job.input for r in failed])
        elif action == "reveal":
            open_path(failed[0].job.input.parent)
        else:
            self.retry_selected()

    def clear_finished(self) -> None:
        self.controller.queue.clear_finished()
        self.queue_view.clearSelection()
        self._counts_changed(self.controller.queue.counts())
        self._selection_changed()

    def retry_selected(self) -> None:
        self.controller.retry(
            [r.job.id for r in self._selected_rows() if r.job.state in (JobState.FAILED, JobState.CANCELLED)]
        )

    def open_selected(self) -> None:
        for row in self._selected_rows()[:5]:
            if row.job.state is JobState.DONE:
                open_path(row.job.output)

    def reveal_selected(self) -> None:
        rows = self._selected_rows()
        if rows:
            job = rows[0].job
            open_path(job.output.parent if job.state is JobState.DONE else job.input.parent)

    def open_output_folder(self) -> None:
        folder = self.controller.settings.output_dir
        folder.mkdir(parents=True, exist_ok=True)
        open_path(folder)

    def _open_index(self, index: QModelIndex) -> None:
        row = self.controller.queue.job_row(index.row())
        if row.job.state is JobState.DONE:
            open_path(row.job.output)
        elif row.job.state is JobState.FAILED:
            self.fix_selected()

    def _queue_menu(self, pos: QPoint) -> None:
        menu = QMenu(self)
        for action in (
            self.open_action,
            self.reveal_action,
            None,
            self.cancel_action,
            self.retry_action,
            self.mask_job_action,
            None,
            self.clear_action,
        ):
            if action is None:
                menu.addSeparator()
            else:
                menu.addAction(action)
        menu.popup(self.queue_view.viewport().mapToGlobal(pos))

    def _selection_changed(self, *_args: object) -> None:
        rows = self._selected_rows()
        states = {r.job.state for r in rows}
        self.cancel_action.setEnabled(any(not s.finished for s in states))
        self.retry_action.setEnabled(bool(states & {JobState.FAILED, JobState.CANCELLED}))
        failed = [r for r in rows if r.job.state is JobState.FAILED]
        self.fix_action.setText(FIX_LABELS[failed[0].fix()[1]] if failed else "Retry")
        self.fix_action.setEnabled(self.retry_action.isEnabled())
        self.open_action.setEnabled(JobState.DONE in states)
        self.reveal_action.setEnabled(bool(rows))
        self.mask_job_action.setEnabled(bool(rows))
        self._update_compare(rows)

    def _update_compare(self, rows: list[JobRow]) -> None:
        if len(rows) == 1 and rows[0].job.state is JobState.DONE:
            job = rows[0].job
            self._compared = job.id
            self.compare.show_pair(job.input, job.output)
        else:
            self._compared = None
            self.compare.clear("Select a finished edit to compare before and after")

    def _rows_changed(self, top: QModelIndex, bottom: QModelIndex, roles: Sequence[int] = ()) -> None:
        rows = self._selected_rows()
        if len(rows) != 1:
            return
        job_id = rows[0].job.id
        row = self.controller.queue.row_of(job_id)
        if row is not None and top.row() <= row <= bottom.row() and self._compared != job_id:
            self._selection_changed()

    def _show_message(self, text: str) -> None:
        """Messages live in the activity strip (kept, with a history), not in a status line that fades."""

    def _counts_changed(self, counts: Counts) -> None:
        self.counts_label.setText(counts.summary())
        self._update_batch()

    def _update_batch(self) -> None:
        """The batch bar (finished of total, ETA) and the Paused notice."""
        controller = self.controller
        counts = controller.queue.counts()
        progress = controller.progress
        now = time.monotonic()
        progress.update(counts, now)
        done, total = progress.value(counts)
        paused = controller.paused
        text = progress.text(counts, now, paused=paused, running=controller.queue.running_progress())
        self.batch_bar.set_progress(done, total, text or "Nothing to do")
        self.paused_label.setVisible(paused)
        self.resume_button.setVisible(paused)
        self.batch_row.setVisible(bool(total) or paused)
        if counts.unfinished and not self._batch_timer.isActive():
            self._batch_timer.start()
        elif not counts.unfinished:
            self._batch_timer.stop()
        self.batchChanged.emit(self.batch_bar.format() if total else "")

    def _settings_changed(self, settings: AppSettings) -> None:
        self.output_label.setText(f"{settings.output_dir}  ({settings.output_format})")

    @staticmethod
    def _sync_check(action: QAction) -> Callable[[bool], None]:
        def sync(on: bool) -> None:
            if action.isChecked() != on:
                action.blockSignals(True)
                action.setChecked(on)
                action.blockSignals(False)

        return sync

    def show_banner(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.setVisible(True)

    def bring_to_front(self) -> None:
        self.show()
        self.setWindowState(self.windowState() & ~Qt.WindowState.WindowMinimized)
        self.raise_()
        self.activateWindow()

    def confirm_quit(self) -> bool:
        """Ask before quitting with unfinished edits (they resume at the next start)."""
        n = self.controller.queue.counts().unfinished
        if not n:
            return True
        answer = QMessageBox.question(
            self,
            "Quit LAN Farm?",
            f"{n} edit{'s are' if n != 1 else ' is'} not finished. Quit anyway? "
            "They resume the next time you start LAN Farm.",
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.keep_in_tray and not self.quitting:
            event.ignore()
            self.hide()
            self.hiddenToTray.emit()
            return
        if not self.quitting and not self.confirm_quit():
            event.ignore()
            return
        if not self.quitting:
            self.ui.set_geometry(self.saveGeometry())
        event.accept()
        self.closed.emit()

    def _restore_state(self) -> None:
        geometry = self.ui.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        for name, value in self.ui.params(self.edit_form.engine_id).items():
            if name in self.edit_form.controls:
                try:
                    self.edit_form.set_param(name, value)
                except (TypeError, ValueError):
                    continue

    def save_state(self) -> None:
        self.ui.set_geometry(self.saveGeometry())
        self.ui.set_params(self.edit_form.engine_id, self.edit_form.values())
