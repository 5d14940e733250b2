"""A drop target for image files and folders (masks are matched later by ``farm.runtime.planning``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QPainter, QPalette, QPen
from PySide6.QtWidgets import QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from farm.runtime.planning import IMAGE_SUFFIXES


def local_paths(mime: QMimeData) -> list[Path]:
    """Local files and folders among the dropped URLs (remote URLs are ignored)."""
    if not mime.hasUrls():
        return []
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile() and url.toLocalFile()]


def acceptable(path: Path) -> bool:
    """Folders and image files (checked by name only: no disk access while dragging)."""
    return path.suffix.lower() in IMAGE_SUFFIXES or not path.suffix


class DropZone(QFrame):
    """Emits ``pathsDropped`` with the dropped files and folders; a button opens a file dialog instead."""

    pathsDropped = Signal(list)
    folderUsed = Signal(Path)  # the folder a dialog picked from (the next dialog opens there)

    def __init__(self, parent: QWidget | None = None, *, start_folder: Callable[[], str] = str) -> None:
        super().__init__(parent)
        self.start_folder = start_folder
        self.setAcceptDrops(True)
        self.setMinimumHeight(150)
        self._hover = False
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.title = QLabel("Drop images or folders here", alignment=Qt.AlignmentFlag.AlignCenter)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.2)
        font.setBold(True)
        self.title.setFont(font)
        self.hint = QLabel(
            "Or anywhere on this window. Masks are found by name: photo.jpg uses photo_mask.png or masks/photo.png",
            wordWrap=True,
            alignment=Qt.AlignmentFlag.AlignCenter,
        )
        self.hint.setStyleSheet("color: palette(placeholder-text);")
        self.browse = QPushButton("Add images…")
        self.browse.clicked.connect(self._browse)
        self.browse_folder = QPushButton("Add folder…")
        self.browse_folder.clicked.connect(self._browse_folder)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.browse)
        buttons.addWidget(self.browse_folder)
        buttons.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        layout.addStretch(1)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(acceptable(p) for p in local_paths(event.mimeData())):
            event.acceptProposedAction()
            self._set_hover(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        event.acceptProposedAction()

    def dragLeaveEvent(self, event: object) -> None:
        self._set_hover(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_hover(False)
        paths = [p for p in local_paths(event.mimeData()) if acceptable(p)]
        if paths:
            event.acceptProposedAction()
            self.pathsDropped.emit(paths)
        else:
            event.ignore()

    def _set_hover(self, on: bool) -> None:
        self._hover = on
        self.update()

    def _browse(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        files, _ = QFileDialog.getOpenFileNames(self, "Add images", self.start_folder(), f"Images ({patterns})")
        if files:
            self.folderUsed.emit(Path(files[0]).parent)
            self.pathsDropped.emit([Path(f) for f in files])

    def _browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of images", self.start_folder())
        if folder:
            self.folderUsed.emit(Path(folder).parent)
            self.pathsDropped.emit([Path(folder)])

    def paintEvent(self, event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        colour = pal.color(QPalette.ColorRole.Highlight if self._hover else QPalette.ColorRole.Mid)
        if self._hover:
            fill = pal.color(QPalette.ColorRole.Highlight)
            fill.setAlpha(30)
            painter.setBrush(fill)
        pen = QPen(colour, 2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.drawRoundedRect(self.rect().adjusted(2, 2, -2, -2), 10, 10)
