"""Small thumbnails decoded off the GUI thread (QThreadPool) and kept in a bounded cache."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QImage, QImageReader, QPixmap

from farm.imaging.codec import DEFAULT_MAX_PIXELS

# Qt refuses to decode images over 256 MB by default; the farm takes images up to its own limit
# (DEFAULT_MAX_PIXELS at 4 bytes a pixel), so the viewers must too. Larger ones are refused by name.
ALLOCATION_LIMIT_MB = max(256, (DEFAULT_MAX_PIXELS * 4 >> 20) + 64)
QImageReader.setAllocationLimit(ALLOCATION_LIMIT_MB)


def read_scaled(path: Path, box: QSize, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[QImage, str]:
    """Decode ``path`` scaled to fit ``box`` (JPEG decodes at reduced size); (null image, why) on failure."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if not size.isValid() and not reader.canRead():
        return QImage(), f"{path.name} is not an image this app can read"
    if size.isValid() and size.width() * size.height() > max_pixels:
        mp = size.width() * size.height() / 1e6
        return QImage(), f"{path.name} is {mp:.0f} MP, over the farm's limit of {max_pixels / 1e6:.0f} MP"
    if size.isValid() and (size.width() > box.width() or size.height() > box.height()):
        reader.setScaledSize(size.scaled(box, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if image.isNull():
        return image, f"cannot read {path.name}: {reader.errorString()}"
    if image.width() > box.width() or image.height() > box.height():
        image = image.scaled(box, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
    return image, ""


def load_scaled(path: Path, box: QSize) -> QImage:
    """Decode ``path`` scaled to fit ``box``; a null image on failure."""
    return read_scaled(path, box)[0]


class _Emitter(QObject):
    done = Signal(str, QImage)
    failed = Signal(str, str)


class _Load(QRunnable):
    def __init__(self, key: str, path: Path, box: QSize, emitter: _Emitter) -> None:
        super().__init__()
        self.key, self.path, self.box, self.emitter = key, path, box, emitter

    def run(self) -> None:
        image, error = read_scaled(self.path, self.box)
        if error:
            self.emitter.failed.emit(self.key, error)
        self.emitter.done.emit(self.key, image)


class ImageLoader(QObject):
    """``request(path)`` decodes in a pool thread and emits ``loaded(key, QImage)`` on the GUI thread."""

    loaded = Signal(str, QImage)
    failed = Signal(str, str)  # key, why (emitted just before ``loaded`` with a null image)

    def __init__(self, box: QSize, *, threads: int = 2, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.box = box
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._emitter = _Emitter(self)
        self._emitter.done.connect(self.loaded)
        self._emitter.failed.connect(self.failed)

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
