"""Before/after view of a finished edit: the result left of a draggable split, the original right."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QWheelEvent
from PySide6.QtWidgets import QWidget

from gui.thumbnails import ImageLoader

MAX_SIDE = 2048  # decoded preview size: enough for a screen, small in memory


class CompareView(QWidget):
    """``show_pair(before, after)`` decodes both off the GUI thread; ``ready`` fires when both arrived."""

    ready = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumSize(240, 160)
        self.setMouseTracking(True)
        self.split = 0.5
        self.zoom = 1.0  # wheel to zoom at the cursor, double-click to fit again
        self.centre = QPointF(0.5, 0.5)  # the picture's point (as fractions) at the view's centre
        self.before = QImage()
        self.after = QImage()
        self._want: tuple[str, str] | None = None
        self._loader = ImageLoader(QSize(MAX_SIDE, MAX_SIDE), threads=1, parent=self)
        self._loader.loaded.connect(self._loaded)
        self._loader.failed.connect(self._failed)
        self.placeholder = "Select a finished edit to compare before and after"
        self.error = ""  # why the pair cannot be shown ("" when it can, or while it loads)

    def show_pair(self, before: Path, after: Path) -> None:
        self.before, self.after = QImage(), QImage()
        self.zoom, self.centre = 1.0, QPointF(0.5, 0.5)
        self.error = ""
        self.placeholder = "Loading before and after…"
        self._want = (f"before:{before}", f"after:{after}")
        self._loader.request(before, self._want[0])
        self._loader.request(after, self._want[1])
        self.update()

    def clear(self, text: str | None = None) -> None:
        self._want = None
        self.error = ""
        self.before, self.after = QImage(), QImage()
        if text is not None:
            self.placeholder = text
        self.update()

    @property
    def is_ready(self) -> bool:
        return not self.before.isNull() and not self.after.isNull()

    def set_split(self, fraction: float) -> None:
        self.split = min(1.0, max(0.0, fraction))
        self.update()

    def image_rect(self) -> QRectF:
        """Where the picture is drawn: fitted to the view, times the zoom, around the zoom centre."""
        if self.after.isNull():
            return QRectF()
        size = self.after.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        w, h = size.width() * self.zoom, size.height() * self.zoom
        x = self.width() / 2 - w * self.centre.x()
        y = self.height() / 2 - h * self.centre.y()
        return QRectF(x, y, w, h)

    def visible_rect(self) -> QRectF:
        """The part of the picture on screen (the split is a fraction of this)."""
        return self.image_rect().intersected(QRectF(self.rect()))

    def zoom_at(self, factor: float, at: QPointF) -> None:
        """Zoom by ``factor`` (1x to 16x) keeping the picture's point under ``at`` where it is."""
        rect = self.image_rect()
        if not rect.isValid():
            return
        fx = (at.x() - rect.left()) / rect.width()
        fy = (at.y() - rect.top()) / rect.height()
        self.zoom = min(16.0, max(1.0, self.zoom * factor))
        fitted = self.after.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        w, h = fitted.width() * self.zoom, fitted.height() * self.zoom
        cx = fx - (at.x() - self.width() / 2) / w
        cy = fy - (at.y() - self.height() / 2) / h
        self.centre = QPointF(min(1.0, max(0.0, cx)), min(1.0, max(0.0, cy))) if self.zoom > 1 else QPointF(0.5, 0.5)
        self.update()

    def reset_zoom(self) -> None:
        self.zoom, self.centre = 1.0, QPointF(0.5, 0.5)
        self.update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.zoom_at(1.25 ** (event.angleDelta().y() / 120), event.position())

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        self.reset_zoom()

    def _loaded(self, key: str, image: QImage) -> None:
        if self._want is None or key not in self._want:
            return
        if key == self._want[0]:
            self.before = image
        else:
            self.after = image
        self.update()
        if self.is_ready:
            self.ready.emit()

    def _failed(self, key: str, error: str) -> None:
        if self._want is not None and key in self._want:
            self.error = error
            self.placeholder = error
            self.update()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._drag(event.position())

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        rect = self.visible_rect()
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event.position())
        elif rect.isValid():
            near = abs(event.position().x() - (rect.left() + rect.width() * self.split)) < 8
            self.setCursor(Qt.CursorShape.SplitHCursor if near else Qt.CursorShape.ArrowCursor)

    def _drag(self, pos: QPointF) -> None:
        rect = self.visible_rect()
        if rect.isValid():
            self.set_split((pos.x() - rect.left()) / rect.width())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        rect = self.image_rect()
        if not self.is_ready:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        shown = self.visible_rect()
        x = shown.left() + shown.width() * self.split
        painter.save()
        painter.setClipRect(QRectF(shown.left(), shown.top(), x - shown.left(), shown.height()))
        painter.drawImage(rect, self.after)
        painter.setClipRect(QRectF(x, shown.top(), shown.right() - x, shown.height()))
        painter.drawImage(rect, self.before)
        painter.restore()
        rect = shown
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(QColor(255, 255, 255, 230), 2))
        painter.drawLine(QPointF(x, rect.top()), QPointF(x, rect.bottom()))
        painter.setBrush(QColor(255, 255, 255, 230))
        painter.setPen(QPen(QColor(0, 0, 0, 90), 1))
        painter.drawEllipse(QPointF(x, rect.center().y()), 9, 9)
        for label, left in (("after", True), ("before", False)):
            box = QRectF(rect.left() + 8 if left else rect.right() - 68, rect.top() + 8, 60, 20)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(0, 0, 0, 140))
            painter.drawRoundedRect(box, 6, 6)
            painter.setPen(QColor("white"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, label)
