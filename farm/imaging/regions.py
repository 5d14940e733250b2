"""An inpaint whose mask has separate regions, as one crop per region (IOPaint's crop strategy).

IOPaint's crop strategy runs the model once per box around each part of the mask. Here each region's
crop can go to another worker: :func:`find_regions` groups the mask's connected parts into boxes that
do not touch (each grown by the strategy's margin), :func:`cut_regions` cuts one engine view per box
(the same :func:`farm.imaging.pipeline.engine_view` a whole crop uses, so resizing a big region works
the same), and :func:`paste_regions` puts every edited crop back into the full picture; only masked
pixels change. Pure: arrays and bytes in, arrays and bytes out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from farm.core.spec import HdStrategy
from farm.errors import ImageError
from farm.imaging.codec import Picture
from farm.imaging.pipeline import Box, EngineView, engine_view, merge

#: cut regions apart only when their boxes together hold at most this share of the one box around them
#: all (else one crop costs about the same and needs no paste of many)
WORTH_SHARE = 0.5


@dataclass(frozen=True, slots=True, eq=False)
class RegionCut:
    """One region: what its engine sees (``view``) and what travels, as lossless PNGs."""

    view: EngineView
    image: bytes
    mask: bytes


def find_regions(mask: np.ndarray, hd: HdStrategy) -> list[Box]:
    """Boxes around the mask's connected parts, each grown by ``hd.margin`` and clipped to the image;
    boxes that overlap are merged until none do. Empty mask: no box."""
    h, w = mask.shape[:2]
    count, _labels, stats, _ = cv2.connectedComponentsWithStats((mask > 0).astype(np.uint8), connectivity=8)
    boxes = [
        Box(max(0, x - hd.margin), max(0, y - hd.margin), min(w, x + bw + hd.margin), min(h, y + bh + hd.margin))
        for x, y, bw, bh, _area in stats[1:count]
    ]
    merged = True
    while merged:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                if _touch(boxes[i], boxes[j]):
                    boxes[i] = _union(boxes[i], boxes[j])
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return sorted(boxes, key=lambda b: (b.y0, b.x0))


def worth_cutting(boxes: Sequence[Box]) -> bool:
    """Whether several boxes are worth running apart: two or more, holding clearly less than their union."""
    if len(boxes) < 2:
        return False
    outer = Box(min(b.x0 for b in boxes), min(b.y0 for b in boxes), max(b.x1 for b in boxes), max(b.y1 for b in boxes))
    return sum(_area(b) for b in boxes) <= WORTH_SHARE * _area(outer)


def cut_regions(pic: Picture, mask: np.ndarray, boxes: Sequence[Box], hd: HdStrategy) -> list[RegionCut]:
    """One engine view per box (its own part of the mask only), each encoded as PNG image and mask."""
    cuts = []
    for box in boxes:
        own = np.zeros_like(mask)
        own[box.y0 : box.y1, box.x0 : box.x1] = mask[box.y0 : box.y1, box.x0 : box.x1]
        strategy = HdStrategy("crop", trigger=0, margin=hd.margin, resize_limit=hd.resize_limit)
        view = engine_view(pic, own, strategy)
        cuts.append(RegionCut(view, _png(view.image), _png(view.mask)))
    return cuts


def paste_regions(pic: Picture, views: Sequence[EngineView], edited: Sequence[bytes]) -> Picture:
    """Every region's edited crop back into ``pic`` (only the masked pixels of each box change).

    Raises ImageError naming the region when a result is not the crop that was cut.
    """
    for i, (view, data) in enumerate(zip(views, edited, strict=True)):
        pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if pixels is None:
            raise ImageError(f"region {i + 1}: the result is not an image")
        try:
            pic = merge(pic, view, pixels)
        except ImageError as exc:
            raise ImageError(f"region {i + 1}: {exc}") from None
    return pic


def _touch(a: Box, b: Box) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _union(a: Box, b: Box) -> Box:
    return Box(min(a.x0, b.x0), min(a.y0, b.y0), max(a.x1, b.x1), max(a.y1, b.y1))


def _area(b: Box) -> int:
    return (b.x1 - b.x0) * (b.y1 - b.y0)


def _png(pixels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", pixels)
    if not ok:
        raise ImageError("could not encode a region")
    return buf.tobytes()
