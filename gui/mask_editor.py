"""Mask editor: paint the inpainting mask over the image (brush, eraser, undo/redo, zoom, pan).

Shortcuts follow IOPaint: ``[`` / ``]`` brush size, Ctrl+Z / Ctrl+Shift+Z undo/redo, space-drag (or the
middle button) pans, the wheel zooms at the cursor, B brush, E eraser, Ctrl+0 fit. The mask is saved
as a PNG under the output folder's ``.masks/`` (never beside or over the inputs).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import QPoint, QPointF, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QColor,
    QImage,
    QImageReader,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QShortcut,
    QUndoCommand,
    QUndoStack,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QSlider,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

from farm.local.files import write_atomic
from gui.thumbnails import ImageLoader

MASK_COLOUR = QColor(255, 48, 96, 150)
MIN_BRUSH, MAX_BRUSH = 1, 400
EDIT_SIZE = QSize(6000, 6000)  # painted at most this big (36 MP); the saved mask is scaled back up


def fit_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A mask painted on a scaled-down image, at the image's own (width, height); 0/255 kept."""
    w, h = size
    if mask.shape[1] == w and mask.shape[0] == h:
        return mask
    big = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(big >= 128, 255, 0).astype(np.uint8)


def mask_path_for(image: Path, out_dir: Path) -> Path:
    """Where a painted mask for ``image`` is kept: ``OUT/.masks/STEM-HASH_mask.png`` (unique per input)."""
    digest = hashlib.sha256(str(image.resolve()).encode()).hexdigest()[:8]
    return out_dir / ".masks" / f"{image.stem}-{digest}_mask.png"


def save_mask(mask: np.ndarray, path: Path) -> Path:
    """Write a 0/255 mask as PNG (atomically; call off the GUI thread)."""
    ok, buf = cv2.imencode(".png", mask)
    if not ok:
        raise OSError(f"could not encode the mask for {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buf.tobytes(), overwrite=True)
    return path


class StrokeCommand(QUndoCommand):
    """One stroke (or a clear): the overlay pixels of ``rect`` before and after."""

    def __init__(self, canvas: MaskCanvas, rect: QRect, before: QImage, after: QImage, text: str) -> None:
        super().__init__(text)
        self.canvas, self.rect, self.before, self.after = canvas, rect, before, after
        self._applied = True  # painted already while the mouse moved

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.canvas.put_patch(self.rect, self.after)

    def undo(self) -> None:
        self.canvas.put_patch(self.rect, self.before)


class MaskCanvas(QWidget):
    """The image with the mask as a translucent overlay; all coordinates in image pixels."""

    changed = Signal()
    brushSizeChanged = Signal(int)
    zoomChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setMinimumSize(400, 300)
        self.image = QImage()
        self.overlay = QImage()
        self.undo_stack = QUndoStack(self)
        self.tool = "brush"
        self.brush_size = 40
        self.error = ""  # why the image cannot be painted on (shown instead of it)
        self.zoom = 1.0
        self.offset = QPointF(0, 0)
        self._stroke: tuple[QImage, QRect, QPointF] | None = None  # snapshot, dirty rect, last point
        self._pan_from: QPointF | None = None
        self._space = False
        self._hover: QPointF | None = None
        self._fitted = False

    # ------------------------------------------------------------------ contents
    def set_image(self, image: QImage, mask: np.ndarray | None = None) -> None:
        self.image = image.convertToFormat(QImage.Format.Format_RGB32)
        self.overlay = QImage(self.image.size(), QImage.Format.Format_ARGB32_Premultiplied)
        self.overlay.fill(Qt.GlobalColor.transparent)
        if mask is not None and mask.shape == (image.height(), image.width()):
            self._load_mask(mask)
        self.undo_stack.clear()
        self._fitted = False
        self.fit()

    def _load_mask(self, mask: np.ndarray) -> None:
        view = self._overlay_array()
        colour = np.array([MASK_COLOUR.blue(), MASK_COLOUR.green(), MASK_COLOUR.red(), MASK_COLOUR.alpha()], np.float32)
        premultiplied = (colour[:3] * colour[3] / 255).round().astype(np.uint8).tolist() + [MASK_COLOUR.alpha()]
        view[mask > 0] = premultiplied

    def _overlay_array(self) -> np.ndarray:
        """A writable numpy view of the overlay pixels (BGRA bytes, premultiplied)."""
        h, w = self.overlay.height(), self.overlay.width()
        buf = np.frombuffer(self.overlay.bits(), np.uint8).reshape(h, self.overlay.bytesPerLine())
        return buf[:, : w * 4].reshape(h, w, 4)

    def mask_array(self) -> np.ndarray:
        """The mask: 255 where painted, 0 elsewhere (HxW uint8). Not ``mask()``: that is QWidget's QRegion."""
        if self.overlay.isNull():
            return np.zeros((0, 0), np.uint8)
        h, w = self.overlay.height(), self.overlay.width()
        buf = np.frombuffer(self.overlay.constBits(), np.uint8).reshape(h, self.overlay.bytesPerLine())
        alpha = buf[:, : w * 4].reshape(h, w, 4)[:, :, 3]
        return np.where(alpha > 0, 255, 0).astype(np.uint8)

    def put_patch(self, rect: QRect, patch: QImage) -> None:
        painter = QPainter(self.overlay)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.drawImage(rect.topLeft(), patch)
        painter.end()
        self.update()
        self.changed.emit()

    def clear_mask(self) -> None:
        if self.overlay.isNull():
            return
        before = self.overlay.copy()
        self.overlay.fill(Qt.GlobalColor.transparent)
        self.undo_stack.push(StrokeCommand(self, self.overlay.rect(), before, self.overlay.copy(), "clear"))
        self.update()
        self.changed.emit()

    # ------------------------------------------------------------------ view
    def set_tool(self, tool: str) -> None:
        self.tool = tool
        self.update()

    def set_brush_size(self, size: int) -> None:
        size = max(MIN_BRUSH, min(MAX_BRUSH, int(size)))
        if size != self.brush_size:
            self.brush_size = size
            self.brushSizeChanged.emit(size)
            self.update()

    def grow_brush(self, factor: float) -> None:
        step = max(1, round(self.brush_size * abs(factor - 1)))
        self.set_brush_size(self.brush_size + (step if factor > 1 else -step))

    def fit(self) -> None:
        if self.image.isNull() or self.width() < 2:
            return
        zoom = min(self.width() / self.image.width(), self.height() / self.image.height()) * 0.96
        self._set_view(
            zoom,
            QPointF((self.width() - self.image.width() * zoom) / 2, (self.height() - self.image.height() * zoom) / 2),
        )
        self._fitted = True

    def zoom_at(self, factor: float, at: QPointF) -> None:
        zoom = max(0.02, min(32.0, self.zoom * factor))
        image_point = self.to_image(at)
        self._set_view(zoom, at - image_point * zoom)

    def _set_view(self, zoom: float, offset: QPointF) -> None:
        self.zoom, self.offset = zoom, offset
        self.zoomChanged.emit(zoom)
        self.update()

    def to_image(self, pos: QPointF) -> QPointF:
        return (pos - self.offset) / self.zoom

    def to_widget(self, pos: QPointF) -> QPointF:
        return pos * self.zoom + self.offset

    # ---------------------------------------------------------------- painting
    def _paint_segment(self, a: QPointF, b: QPointF) -> QRect:
        painter = QPainter(self.overlay)
        if self.tool == "eraser":
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Clear)
        else:
            painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        pen = QPen(
            MASK_COLOUR, self.brush_size, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin
        )
        painter.setPen(pen)
        if a == b:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(MASK_COLOUR)
            r = self.brush_size / 2
            painter.drawEllipse(a, r, r)
        else:
            painter.drawLine(a, b)
        painter.end()
        r = int(self.brush_size / 2) + 2
        return QRect(
            QPoint(int(min(a.x(), b.x())) - r, int(min(a.y(), b.y())) - r),
            QPoint(int(max(a.x(), b.x())) + r, int(max(a.y(), b.y())) + r),
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if self.image.isNull():
            return
        pos = event.position()
        if event.button() == Qt.MouseButton.MiddleButton or (
            event.button() == Qt.MouseButton.LeftButton and self._space
        ):
            self._pan_from = pos
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        elif event.button() == Qt.MouseButton.LeftButton:
            p = self.to_image(pos)
            snapshot = self.overlay.copy()
            rect = self._paint_segment(p, p)
            self._stroke = (snapshot, rect, p)
            self.update()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        self._hover = pos
        if self._pan_from is not None:
            self._set_view(self.zoom, self.offset + (pos - self._pan_from))
            self._pan_from = pos
        elif self._stroke is not None:
            snapshot, rect, last = self._stroke
            p = self.to_image(pos)
            rect = rect.united(self._paint_segment(last, p))
            self._stroke = (snapshot, rect, p)
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            self._pan_from = None
            self.setCursor(Qt.CursorShape.OpenHandCursor if self._space else Qt.CursorShape.CrossCursor)
            return
        if self._stroke is None:
            return
        snapshot, rect, _ = self._stroke
        self._stroke = None
        rect = rect.intersected(self.overlay.rect())
        if rect.isEmpty():
            return
        self.undo_stack.push(
            StrokeCommand(
                self, rect, snapshot.copy(rect), self.overlay.copy(rect), "erase" if self.tool == "eraser" else "paint"
            )
        )
        self.changed.emit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_at(1.15**steps, event.position())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.setCursor(Qt.CursorShape.OpenHandCursor)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.setCursor(Qt.CursorShape.CrossCursor)
        else:
            super().keyReleaseEvent(event)

    def leaveEvent(self, event: object) -> None:
        self._hover = None
        self.update()

    def resizeEvent(self, event: object) -> None:
        if not self._fitted:
            self.fit()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(38, 40, 44))
        if self.image.isNull():
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(
                self.rect().adjusted(20, 20, -20, -20),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self.error or "Loading image…",
            )
            return
        painter.save()
        painter.translate(self.offset)
        painter.scale(self.zoom, self.zoom)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.zoom < 1)
        painter.drawImage(0, 0, self.image)
        painter.drawImage(0, 0, self.overlay)
        painter.restore()
        if self._hover is not None and self._pan_from is None and not self._space:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            r = self.brush_size * self.zoom / 2
            painter.setPen(QPen(QColor(255, 255, 255, 220), 1.5))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._hover, r, r)
            painter.setPen(QPen(QColor(0, 0, 0, 160), 1))
            painter.drawEllipse(self._hover, r + 1.5, r + 1.5)


class MaskEditor(QDialog):
    """The canvas with its tools; ``accepted`` then :meth:`mask` gives the painted mask."""

    loaded = Signal()
    failed = Signal(str)  # why the image cannot be opened

    def __init__(self, image_path: Path, mask_path: Path | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image_path = image_path
        self.setWindowTitle(f"Paint mask — {image_path.name}")
        self.resize(1000, 720)
        self.canvas = MaskCanvas()
        self.canvas.setCursor(Qt.CursorShape.CrossCursor)
        stack = self.canvas.undo_stack

        bar = QToolBar()
        group = QActionGroup(self)
        self.brush_action = QAction(
            "Brush",
            self,
            checkable=True,
            checked=True,
            shortcut=QKeySequence("B"),
            toolTip="Paint the area to edit (B)",
        )
        self.eraser_action = QAction(
            "Eraser", self, checkable=True, shortcut=QKeySequence("E"), toolTip="Erase the mask (E)"
        )
        for action, tool in ((self.brush_action, "brush"), (self.eraser_action, "eraser")):
            group.addAction(action)
            action.triggered.connect(lambda _=False, t=tool: self.canvas.set_tool(t))
            bar.addAction(action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Size "))
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(MIN_BRUSH, MAX_BRUSH)
        self.size_slider.setValue(self.canvas.brush_size)
        self.size_slider.setToolTip("Brush size ([ and ])")
        self.size_slider.setFixedWidth(160)
        self.size_label = QLabel(f" {self.canvas.brush_size} px ")
        self.size_slider.valueChanged.connect(self.canvas.set_brush_size)
        self.canvas.brushSizeChanged.connect(self._brush_changed)
        bar.addWidget(self.size_slider)
        bar.addWidget(self.size_label)
        bar.addSeparator()
        self.undo_action = stack.createUndoAction(self, "Undo")
        self.undo_action.setShortcut(QKeySequence("Ctrl+Z"))
        self.redo_action = stack.createRedoAction(self, "Redo")
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.clear_action = QAction("Clear", self, toolTip="Clear the whole mask")
        self.clear_action.triggered.connect(self.canvas.clear_mask)
        self.fit_action = QAction("Fit", self, shortcut=QKeySequence("Ctrl+0"), toolTip="Fit to window (Ctrl+0)")
        self.fit_action.triggered.connect(self.canvas.fit)
        for action in (self.undo_action, self.redo_action, self.clear_action, self.fit_action):
            bar.addAction(action)
            self.addAction(action)
        self.zoom_label = QLabel()
        self.canvas.zoomChanged.connect(lambda z: self.zoom_label.setText(f"  {z:.0%}"))
        bar.addWidget(self.zoom_label)
        QShortcut(QKeySequence("["), self, lambda: self.canvas.grow_brush(1 / 1.2))
        QShortcut(QKeySequence("]"), self, lambda: self.canvas.grow_brush(1.2))
        self.addAction(self.brush_action)
        self.addAction(self.eraser_action)

        hint = QLabel(
            "Paint over what should be replaced.  [ ] brush size · space-drag pan · wheel zoom · "
            "Ctrl+Z / Ctrl+Shift+Z undo/redo"
        )
        hint.setStyleSheet("color: palette(placeholder-text); padding: 2px 6px;")
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.save_button = buttons.addButton("Save mask and queue", QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setEnabled(False)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(bar)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(hint)
        layout.addWidget(buttons)

        self._mask_path = mask_path
        reader = QImageReader(str(image_path))
        self.image_size = (reader.size().width(), reader.size().height())  # (-1, -1): unreadable
        self._loader = ImageLoader(EDIT_SIZE, threads=1, parent=self)
        self._loader.loaded.connect(self._loaded)
        self._loader.failed.connect(self._failed)
        self._loader.request(image_path, "image")
        if mask_path is not None:
            self._loader.request(mask_path, "mask")
        self._parts: dict[str, QImage] = {}

    def mask_array(self) -> np.ndarray:
        """The painted mask (HxW uint8, 255 where painted); see :meth:`MaskCanvas.mask_array`."""
        return self.canvas.mask_array()

    def full_mask(self) -> np.ndarray:
        """The painted mask at the image's own size (a big image is painted scaled down)."""
        mask = self.mask_array()
        return fit_mask(mask, self.image_size) if min(self.image_size) > 0 else mask

    def _brush_changed(self, size: int) -> None:
        self.size_label.setText(f" {size} px ")
        self.size_slider.blockSignals(True)
        self.size_slider.setValue(size)
        self.size_slider.blockSignals(False)

    def _failed(self, key: str, error: str) -> None:
        if key == "image":
            self.canvas.error = error
            self.canvas.update()
            self.failed.emit(error)

    def _loaded(self, key: str, image: QImage) -> None:
        self._parts[key] = image
        if "image" not in self._parts or (self._mask_path is not None and "mask" not in self._parts):
            return
        picture = self._parts["image"]
        if picture.isNull():
            self.canvas.image = QImage()
            self.canvas.error = self.canvas.error or f"Cannot read {self.image_path.name}"
            self.canvas.update()
            self.setWindowTitle(f"Cannot read {self.image_path.name}")
            return
        mask = None
        if not self._parts.get("mask", QImage()).isNull():
            grey = self._parts["mask"].convertToFormat(QImage.Format.Format_Grayscale8)
            buf = np.frombuffer(grey.constBits(), np.uint8).reshape(grey.height(), grey.bytesPerLine())
            mask = buf[:, : grey.width()].copy()
        self.canvas.set_image(picture, mask)
        self.save_button.setEnabled(True)
        self.canvas.setFocus()
        self.loaded.emit()
