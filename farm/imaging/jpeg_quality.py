"""The quality a JPEG was saved at, read back from its quantisation tables (so that an edit of a JPEG can be
saved as a JPEG of about the same quality and size: ``--format keep``).

Encoders that follow libjpeg (OpenCV, Pillow, Photoshop's "baseline" export, most cameras' firmware) scale
the Annex K luminance table by a factor that depends on the quality; the factor is recovered from the sum
of the file's first table (the sum does not depend on the order the table is stored in).
"""

from __future__ import annotations

from collections.abc import Sequence

#: ITU T.81 Annex K, table K.1 (luminance), the table libjpeg scales.
ANNEX_K_LUMINANCE = (
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
)  # fmt: skip


def estimate_quality(luminance: Sequence[int]) -> int:
    """libjpeg's 1-100 quality for a 64-entry luminance table (clamped to 1..100)."""
    if len(luminance) != 64:
        raise ValueError(f"a JPEG quantisation table has 64 entries, not {len(luminance)}")
    if all(q <= 1 for q in luminance):
        return 100
    scale = 100.0 * sum(luminance) / sum(ANNEX_K_LUMINANCE)  # libjpeg: table = (K * scale + 50) / 100
    quality = (200.0 - scale) / 2.0 if scale <= 100.0 else 5000.0 / scale
    return max(1, min(100, round(quality)))
