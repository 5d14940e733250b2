"""``lanfarm run --concat``: replace each output with image | mask | result side by side (IOPaint's
``--concat``), written atomically over the output it replaces."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from farm.core.spec import OutputSpec
from farm.imaging.codec import DEFAULT_MAX_PIXELS, Picture, decode_image, decode_mask, encode_image, to_uint8
from farm.local.files import read_bytes, write_atomic


def concat_output(
    image: Path, mask: Path | None, output: Path, spec: OutputSpec, *, max_pixels: int = DEFAULT_MAX_PIXELS
) -> None:
    """``output`` becomes image | mask | result (image | result without a mask), at the result's size."""
    result = decode_image(read_bytes(output), max_pixels=max_pixels * 16)
    height, width = result.height, result.width
    panels = [_bgr(decode_image(read_bytes(image), max_pixels=max_pixels), width, height)]
    if mask is not None:
        grey = decode_mask(read_bytes(mask), width, height, resize=True, max_pixels=max_pixels * 16)
        panels.append(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR))
    panels.append(_bgr(result, width, height))
    write_atomic(output, encode_image(Picture(np.hstack(panels)), spec), overwrite=True)


def _bgr(pic: Picture, width: int, height: int) -> np.ndarray:
    color = to_uint8(pic.color)
    if pic.grey or color.ndim == 2:
        color = cv2.cvtColor(color if color.ndim == 2 else color[:, :, 0], cv2.COLOR_GRAY2BGR)
    if color.shape[:2] != (height, width):
        color = cv2.resize(color, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(color[:, :, :3])
