"""Small thumbnails decoded off the GUI thread (QThreadPool) and kept in a bounded cache."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap


def load_scaled(path: Path, box: QSize) -> QImage:
    """Decode ``path`` scaled to fit ``box`` (JPEG decodes at reduced size); a null image on failure."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and (size.width() > box.width() or size.height() > box.height()):
        reader.setScaledSize(size.scaled(box, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return image
    if image.width() > box.width() or image.height() > box.height():
        image = image.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image


class _Emitter(QObject):
    done = Signal(str, QImage)


class _Load(QRunnable):
    def __init__(self, key: str, path: Path, box: QSize, emitter: _Emitter) -> None:
        super().__init__()
        self.key, self.path, self.box, self.emitter = key, path, box, emitter

    def run(self) -> None:
        self.emitter.done.emit(self.key, load_scaled(self.path, self.box))


class ImageLoader(QObject):
    """``request(path)`` decodes in a pool thread and emits ``loaded(key, QImage)`` on the GUI thread."""

    loaded = Signal(str, QImage)

    def __init__(self, box: QSize, *, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.box = box
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._emitter = _Emitter(self)
        self._emitter.done.connect(self.loaded)

    def request(self, path: Path, key: str | None = None) -> None:
        self.pool.start(_Load(key or str(path), path, self.box, self._emitter))

    def wait(self, msecs: int = 5000) -> bool:
        return self.pool.waitForDone(msecs)


class ThumbnailCache(QObject):
    """Pixmaps by file path, at most ``capacity``; a miss starts one background load and returns None."""

    ready = Signal(str)  # the path whose thumbnail arrived

    def __init__(self, size: int = 48, capacity: int = 600, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.size = size
        self.capacity = capacity
        self._cache: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._failed: set[str] = set()
        self._loader = ImageLoader(QSize(size, size), threads=2, parent=self)
        self._loader.loaded.connect(self._on_loaded)

    def get(self, path: Path) -> QPixmap | None:
        key = str(path)
        pixmap = self._cache.get(key)
        if pixmap is not None:
            self._cache.move_to_end(key)
            return pixmap
        if key not in self._pending and key not in self._failed:
            self._pending.add(key)
            self._loader.request(path, key)
        return None

    def wait(self, msecs: int = 5000) -> bool:
        return self._loader.wait(msecs)

    def _on_loaded(self, key: str, image: QImage) -> None:
        self._pending.discard(key)
        if image.isNull():
            self._failed.add(key)
            return
        self._cache[key] = QPixmap.fromImage(image)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(key)
