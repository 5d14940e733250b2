"""Padding images to the sizes an engine accepts (and nothing else)."""

from __future__ import annotations

import cv2
import numpy as np


def pad_to(
    image: np.ndarray, mask: np.ndarray | None, minimum: int, multiple: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pad right/bottom so each side is >= ``minimum`` and a multiple of ``multiple``.

    The image is mirrored into the padding (its edge repeated where it is too small to mirror);
    the mask is padded with 0, so nothing there is edited. Crop the result back to the input's size.
    """
    h, w = image.shape[:2]
    th = -(-max(h, minimum) // multiple) * multiple
    tw = -(-max(w, minimum) // multiple) * multiple
    if (th, tw) == (h, w):
        return image, mask
    border = cv2.BORDER_REFLECT_101 if th - h < h and tw - w < w else cv2.BORDER_REPLICATE
    image = cv2.copyMakeBorder(image, 0, th - h, 0, tw - w, border)
    if mask is not None:
        mask = cv2.copyMakeBorder(mask, 0, th - h, 0, tw - w, cv2.BORDER_CONSTANT, value=0)
    return image, mask
