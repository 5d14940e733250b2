"""Regenerate the sample images and masks (deterministic; the project owns them).

Each sample is a synthetic photo-like scene with a caption stamped on it; its mask covers the caption,
so the inpaint removes it. Run: ``python resources/samples/generate.py``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).parent
SCENES = [
    ("harbour", (40, 90, 160), "LAN FARM"),
    ("meadow", (60, 140, 70), "SAMPLE"),
    ("dusk", (120, 60, 150), "(c) 2026"),
    ("studio", (150, 150, 150), "PROOF"),
]


def scene(seed: int, base: tuple[int, int, int], text: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    h, w = 480, 640
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    img = (np.array(base, np.float32) * (0.6 + 0.6 * y) + rng.normal(0, 6, (h, w, 3))).clip(0, 255)
    img = img.astype(np.uint8)
    for _ in range(12):
        c = tuple(int(v) for v in rng.integers(0, 255, 3))
        cv2.circle(
            img, (int(rng.integers(0, w)), int(rng.integers(0, h))), int(rng.integers(10, 80)), c, -1, cv2.LINE_AA
        )
    img = cv2.GaussianBlur(img, (0, 0), 1.2)
    mask = np.zeros((h, w), np.uint8)
    org = (int(rng.integers(20, 200)), int(rng.integers(120, 440)))
    for canvas, colour in ((img, (255, 255, 255)), (mask, 255)):
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_DUPLEX, 2.0, colour, 5, cv2.LINE_AA)
    mask = cv2.dilate(mask, np.ones((9, 9), np.uint8))
    return img, mask


def main() -> None:
    for i, (name, base, text) in enumerate(SCENES):
        img, mask = scene(i, base, text)
        cv2.imwrite(str(HERE / f"{name}.png"), img)
        cv2.imwrite(str(HERE / "masks" / f"{name}.png"), mask)


if __name__ == "__main__":
    main()
