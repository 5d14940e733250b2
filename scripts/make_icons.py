"""Regenerate the app icon's PNG sizes, .ico and .icns from resources/icons/lanfarm.svg.

Run with a Python that has PySide6 and Pillow: ``python scripts/make_icons.py``. The outputs are
committed; the build never runs this.
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SVG = ICONS / "lanfarm.svg"
SIZES = (16, 32, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def render(size: int) -> bytes:
    """The SVG rendered to a size x size PNG (antialiased, transparent corners)."""
    from PySide6.QtCore import QBuffer, QIODevice
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(0)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    buf = QBuffer()
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buf, "PNG")
    return bytes(buf.data())


def main() -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    _app = QGuiApplication(sys.argv[:1])
    rendered = {size: render(size) for size in {*SIZES, *ICO_SIZES, *ICNS_SIZES}}
    for size in SIZES:
        (ICONS / f"lanfarm-{size}.png").write_bytes(rendered[size])
    images = {size: Image.open(io.BytesIO(data)).convert("RGBA") for size, data in rendered.items()}
    # Pillow picks each size from the largest image, so hand it every size drawn by Qt.
    images[256].save(
        ICONS / "lanfarm.ico", sizes=[(s, s) for s in ICO_SIZES], append_images=[images[s] for s in ICO_SIZES]
    )
    images[1024].save(ICONS / "lanfarm.icns", append_images=[images[s] for s in ICNS_SIZES])
    print(f"wrote {len(SIZES)} PNGs, lanfarm.ico and lanfarm.icns to {ICONS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
