"""One big upscale split into tiles for many workers, and the results stitched back without seams.

The public surface (the dispatcher cuts, sends, saves and writes; nothing here knows of nodes)::

    Tile(index, row, col, core: Box, window: Box)        # core: pixels it owns; window: core + context
    plan_tiles(width, height, *, tile, overlap, multiple=1) -> list[Tile]   # the in-node rule
    grid_for(width, height, parts, *, overlap, multiple=1, min_tile=256) -> list[Tile]  # about `parts`
    cut_tile(picture, tile) -> bytes                      # the window as a lossless 8-bit BGR PNG
    stitch = Stitch(staging_dir, width, height, tiles, scale)
    stitch.save(index, result_bytes)                      # validated, staged on disk, any order
    stitch.missing -> list[int]
    stitch.write(output, source, output_spec, overwrite=False)  # once, atomically
    stitch.discard()                                      # the staging folder goes

**The grid** is :func:`farm.core.tiling.tile_windows` on each axis, with the tile rounded down and the
overlap rounded up to the model's size multiple, exactly as ``UpscaleEngine.run`` tiles inside a node:
a farm tile sees the context an in-node tile would. A worker upscales the window (tiling it again
inside if it must) and returns ``window * scale`` pixels.

**Staging.** :meth:`Stitch.save` decodes a result once (refusing any other size, naming the tile)
and writes its raw 8-bit BGR pixels to ``staging_dir/tile-NNNNN.bgr`` (temp file, then rename), so
results arriving from several PCs in any order never wait in memory, and a stitch survives a restart
of this process (a new ``Stitch`` on the same folder sees what was saved). The folder holds about
the output's raw size plus the overlaps.

**The blend.** Along each axis, two neighbouring windows share a strip of up to ``2 * overlap`` pixels
around their core boundary. A linear ramp runs over the middle half of that strip (so every pixel
that counts had at least half the overlap of context in its tile), nowhere at the image border; per
axis, the weights are normalised to sum to one, and a tile's weight is the product of its row and
column weights. Identical data therefore stitches to itself exactly, and with a receptive field
within half the overlap the result is a hard-cut tiling's to float rounding.

**Streaming.** :meth:`Stitch.write` makes the output in bands of :data:`BAND_ROWS` output rows: for
each band it reads the rows it needs from the staged tiles touching it, blends them into a float32
band, and hands the finished 8-bit band on. In memory at once: one float band (``BAND_ROWS`` x
output width x 3 x 4 bytes) and the tiles' rows for it, whatever the height of the image.

- PNG output (``--format png``, or ``keep`` on a PNG input): the band goes to
  :class:`farm.imaging.png_stream.PngWriter`, so nothing of the size of the output is ever held.
- JPEG/WebP/TIFF output: the bands are assembled into a disk-backed ``numpy.memmap`` in the staging
  folder, then :func:`farm.imaging.codec.encode_image` encodes it with the same metadata rules as any
  output (EXIF, quality, ICC). The encoder reads the whole map, and its own buffers (plus, for an image
  with alpha or ICC/EXIF, the full-size copies ``encode_image`` makes) are as big as the output.

**Alpha.** An upscale's alpha is the source alpha resized with cubic interpolation, as
``pipeline._scaled`` does; here it is resized band by band (each band from its source rows plus a
margin beyond the cubic's reach, which gives the whole-image resize's pixels).

The output is written once: to a hidden temp file in the output folder, renamed into place only when
complete (:func:`farm.local.files.atomic_file`); without ``overwrite`` an existing file is refused.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from farm.core.spec import OutputSpec
from farm.core.tiling import round_overlap, round_tile, tile_windows
from farm.errors import ImageError
from farm.imaging.codec import Picture, decode_image, encode_image, resolve_output, to_uint8
from farm.imaging.pipeline import Box
from farm.imaging.png_stream import PngWriter
from farm.local.files import atomic_file

BAND_ROWS = 64  # output rows blended at once
_ALPHA_MARGIN = 3  # source rows beyond a band that the cubic resize reads (it reaches 2)


@dataclass(frozen=True, slots=True)
class Tile:
    """One tile of a grid: ``core`` the source pixels it owns, ``window`` the core with its overlap of
    context on each side (clipped to the image): what a worker upscales."""

    index: int
    row: int
    col: int
    core: Box
    window: Box

    @property
    def width(self) -> int:
        """The window's width: what the worker gets (times the scale: what it returns)."""
        return self.window.x1 - self.window.x0

    @property
    def height(self) -> int:
        """The window's height."""
        return self.window.y1 - self.window.y0

    def describe(self) -> str:
        """How errors name the tile."""
        return f"tile {self.index} (row {self.row}, column {self.col})"


def plan_tiles(width: int, height: int, *, tile: int, overlap: int, multiple: int = 1) -> list[Tile]:
    """Square tiles of ``tile`` source pixels, the in-node upscale's grid (``UpscaleEngine.run``)."""
    side = round_tile(tile, multiple)
    return _grid(width, height, side, side, round_overlap(overlap, multiple))


def grid_for(
    width: int, height: int, parts: int, *, overlap: int, multiple: int = 1, min_tile: int = 256
) -> list[Tile]:
    """About ``parts`` tiles, as near square as the image allows, none under ``min_tile`` a side
    (unless the image itself is); the overlap is rounded up to the size multiple."""
    max_rows, max_cols = max(1, height // min_tile), max(1, width // min_tile)
    parts = max(1, parts)
    best: tuple[float, int, int] | None = None
    for rows in range(1, min(parts, max_rows) + 1):
        for cols in range(1, min(2 * parts, max_cols) + 1):
            count_off = abs(math.log(rows * cols / parts))
            shape_off = abs(math.log((width / cols) / (height / rows)))
            score = (count_off + 0.5 * shape_off, rows, cols)
            best = score if best is None or score < best else best
    assert best is not None
    _, rows, cols = best
    tile_w = _round_up(-(-width // cols), multiple)
    tile_h = _round_up(-(-height // rows), multiple)
    return _grid(width, height, tile_w, tile_h, round_overlap(overlap, multiple))


def cut_tile(picture: Picture, tile: Tile) -> bytes:
    """The tile's window as a lossless PNG of 8-bit BGR, the pixels the upscale engine would see."""
    w = tile.window
    ok, buf = cv2.imencode(".png", to_uint8(picture.color[w.y0 : w.y1, w.x0 : w.x1]))
    if not ok:
        raise ImageError(f"could not encode {tile.describe()}")
    return buf.tobytes()


class Stitch:
    """The results of one tiled image: staged on disk as they come, written out once when all are in."""

    def __init__(self, staging_dir: Path, width: int, height: int, tiles: Sequence[Tile], scale: int) -> None:
        if scale < 1:
            raise ValueError(f"scale {scale}")
        if sum((t.core.x1 - t.core.x0) * (t.core.y1 - t.core.y0) for t in tiles) != width * height or any(
            t.core.x0 < 0 or t.core.y0 < 0 or t.core.x1 > width or t.core.y1 > height for t in tiles
        ):
            raise ValueError(f"the tiles' cores do not cover a {width}x{height} image")
        self.staging_dir = staging_dir
        self.width, self.height, self.scale = width, height, scale
        self.tiles = {t.index: t for t in tiles}
        cols = {t.col: (t.core.x0, t.core.x1, t.window.x0, t.window.x1) for t in tiles}
        rows = {t.row: (t.core.y0, t.core.y1, t.window.y0, t.window.y1) for t in tiles}
        self._cols, self._rows = _Axis.of(cols, width, scale), _Axis.of(rows, height, scale)
        self._grid = {(t.row, t.col): t for t in tiles}
        self._progress: Callable[[float], None] | None = None
        staging_dir.mkdir(parents=True, exist_ok=True)

    def save(self, index: int, result: bytes) -> None:
        """Check a worker's result for tile ``index`` (an image of window x scale) and stage its pixels.

        Raises ImageError naming the tile when it is not that size or not an image; saving a tile
        twice keeps the last (a retried tile is the same pixels).
        """
        tile = self.tiles.get(index)
        if tile is None:
            raise ImageError(f"no tile {index} in this image (it has {len(self.tiles)})")
        want_w, want_h = tile.width * self.scale, tile.height * self.scale
        try:
            pic = decode_image(result, max_pixels=4 * want_w * want_h)  # a bomb is refused from the header
        except ImageError as exc:
            raise ImageError(f"{tile.describe()}: {exc}") from None
        if (pic.width, pic.height) != (want_w, want_h):
            raise ImageError(f"{tile.describe()}: result is {pic.width}x{pic.height}, expected {want_w}x{want_h}")
        pixels = np.ascontiguousarray(to_uint8(pic.color))
        path = self._path(index)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(4).hex()}.part")
        try:
            with tmp.open("wb") as fh:
                fh.write(pixels.data)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @property
    def missing(self) -> list[int]:
        """Indices of the tiles not saved yet."""
        return [i for i, t in sorted(self.tiles.items()) if not self._staged(t)]

    def write(
        self,
        output: Path,
        source: Picture,
        output_spec: OutputSpec,
        *,
        overwrite: bool = False,
        progress: Callable[[float], None] | None = None,
    ) -> None:
        """Blend the staged tiles into ``output``, encoded per ``output_spec`` with ``source``'s alpha
        (resized), ICC, grey and source format (for ``keep``); written once, atomically.

        Raises ImageError when a tile is missing or ``source`` is not the tiled image's size,
        FileExistsError when ``output`` exists and ``overwrite`` is False, OutputError when it cannot
        be written.
        """
        missing = self.missing
        if missing:
            raise ImageError(f"cannot stitch: tiles {', '.join(map(str, missing))} have no result yet")
        if (source.width, source.height) != (self.width, self.height):
            raise ImageError(f"source is {source.width}x{source.height}, the tiles are of {self.width}x{self.height}")
        resolved, _, _ = resolve_output(source, output_spec)
        self._progress = progress  # told the share of the output's rows blended, band by band
        if resolved.format == "png":
            self._write_png(output, source, overwrite)
        else:
            self._write_encoded(output, source, output_spec, overwrite)

    def discard(self) -> None:
        """Remove the staging folder and all it holds."""
        shutil.rmtree(self.staging_dir, ignore_errors=True)

    # --- making the output -------------------------------------------------------------------------

    @property
    def out_width(self) -> int:
        return self.width * self.scale

    @property
    def out_height(self) -> int:
        return self.height * self.scale

    def _write_png(self, output: Path, source: Picture, overwrite: bool) -> None:
        channels = 4 if source.alpha is not None else 1 if source.grey else 3
        # Deflate (in a thread: zlib lets go of the GIL) runs while the next band is blended; at most
        # one band waits for it.
        with atomic_file(output, overwrite=overwrite) as fh, ThreadPoolExecutor(1, "lanfarm-png") as deflate:
            png = PngWriter(fh, self.out_width, self.out_height, channels, icc=source.icc)
            pending: Future[None] | None = None
            for _, band in self._bands(source):
                if pending is not None:
                    pending.result()
                pending = deflate.submit(png.write_rows, band)
            if pending is not None:
                pending.result()
            png.close()

    def _write_encoded(self, output: Path, source: Picture, output_spec: OutputSpec, overwrite: bool) -> None:
        if not overwrite and os.path.lexists(output):  # before the work, not only at the rename
            raise FileExistsError(errno.EEXIST, "file exists", str(output))
        shape = (self.out_height, self.out_width)
        color_path = self.staging_dir / "output.color"
        alpha_path = self.staging_dir / "output.alpha"
        try:
            color = np.memmap(color_path, np.uint8, "w+", shape=(*shape, 3))
            alpha = None if source.alpha is None else np.memmap(alpha_path, np.uint8, "w+", shape=shape)
            for y0, band in self._bands(source, grey_as_one=False):
                y1 = y0 + band.shape[0]
                color[y0:y1] = band[:, :, :3]
                if alpha is not None:
                    alpha[y0:y1] = band[:, :, 3]
            pic = Picture(color=color, alpha=alpha, icc=source.icc, grey=source.grey, source=source.source)
            data = encode_image(pic, output_spec)
            del pic, color, alpha
            with atomic_file(output, overwrite=overwrite) as fh:
                fh.write(data)
        finally:
            color_path.unlink(missing_ok=True)
            alpha_path.unlink(missing_ok=True)

    def _bands(self, source: Picture, *, grey_as_one: bool = True) -> Iterator[tuple[int, np.ndarray]]:
        """(first row, rows) of the output, top to bottom: BGR, BGRA with alpha, or grey (channel 0)."""
        alpha = None if source.alpha is None else to_uint8(source.alpha)
        for y0 in range(0, self.out_height, BAND_ROWS):
            y1 = min(self.out_height, y0 + BAND_ROWS)
            color = self._blend(y0, y1)
            if alpha is not None:
                yield y0, np.dstack([color, self._alpha_rows(alpha, y0, y1)])
            elif source.grey and grey_as_one:
                yield y0, np.ascontiguousarray(color[:, :, 0])
            else:
                yield y0, color
            if self._progress is not None:
                self._progress(y1 / self.out_height)

    def _blend(self, y0: int, y1: int) -> np.ndarray:
        """Output rows [y0, y1) from the staged tiles: copied where one tile owns a pixel outright,
        feathered (in float) only in the strips where several share it."""
        out = np.empty((y1 - y0, self.out_width, 3), np.uint8)
        read: dict[int, tuple[int, np.ndarray]] = {}  # tile index -> (first row, its rows in this band)

        def pixels(tile: Tile, ra: int, rb: int, ca: int, cb: int) -> np.ndarray:
            if tile.index not in read:
                start, weights = self._rows.weights[tile.row]
                a, b = max(y0, start), min(y1, start + len(weights))
                read[tile.index] = (
                    a,
                    self._read_rows(tile, a - tile.window.y0 * self.scale, b - tile.window.y0 * self.scale),
                )
            first, rows = read[tile.index]
            x0 = tile.window.x0 * self.scale
            return rows[ra - first : rb - first, ca - x0 : cb - x0]

        for ra, rb, row_keys in self._rows.segments_in(y0, y1):
            for ca, cb, col_keys in self._cols.segments:
                if len(row_keys) == 1 and len(col_keys) == 1:
                    out[ra - y0 : rb - y0, ca:cb] = pixels(self._grid[row_keys[0], col_keys[0]], ra, rb, ca, cb)
                    continue
                acc = np.zeros((rb - ra, cb - ca, 3), np.float32)
                for r in row_keys:
                    wy = self._rows.weights_at(r, ra, rb)
                    for c in col_keys:
                        part = pixels(self._grid[r, c], ra, rb, ca, cb).astype(np.float32)
                        part *= (wy[:, None] * self._cols.weights_at(c, ca, cb)[None, :])[:, :, None]
                        acc += part
                np.clip(acc, 0, 255, out=acc)
                out[ra - y0 : rb - y0, ca:cb] = np.rint(acc)
        return out

    def _alpha_rows(self, alpha: np.ndarray, y0: int, y1: int) -> np.ndarray:
        """Output rows [y0, y1) of the source alpha resized by the scale (cubic), from a band of it."""
        s = self.scale
        if s == 1:
            return alpha[y0:y1]
        a = max(0, y0 // s - _ALPHA_MARGIN)
        b = min(self.height, (y1 - 1) // s + 1 + _ALPHA_MARGIN)
        band = cv2.resize(alpha[a:b], (self.out_width, (b - a) * s), interpolation=cv2.INTER_CUBIC)
        return band[y0 - a * s : y1 - a * s]

    def _read_rows(self, tile: Tile, r0: int, r1: int) -> np.ndarray:
        """Rows [r0, r1) of a staged result (its own coordinates), as (n, width * scale, 3) uint8."""
        row_bytes = tile.width * self.scale * 3
        with self._path(tile.index).open("rb") as fh:
            fh.seek(r0 * row_bytes)
            data = fh.read((r1 - r0) * row_bytes)
        if len(data) != (r1 - r0) * row_bytes:
            raise ImageError(f"{tile.describe()}: its staged result is truncated")
        return np.frombuffer(data, np.uint8).reshape(r1 - r0, tile.width * self.scale, 3)

    def _path(self, index: int) -> Path:
        return self.staging_dir / f"tile-{index:05d}.bgr"

    def _staged(self, tile: Tile) -> bool:
        with contextlib.suppress(OSError):
            return self._path(tile.index).stat().st_size == tile.width * tile.height * self.scale**2 * 3
        return False


def _grid(width: int, height: int, tile_w: int, tile_h: int, overlap: int) -> list[Tile]:
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    rows, cols = tile_windows(height, tile_h, overlap), tile_windows(width, tile_w, overlap)
    return [
        Tile(r * len(cols) + c, r, c, Box(x0, y0, x1, y1), Box(wx0, wy0, wx1, wy1))
        for r, (y0, y1, wy0, wy1) in enumerate(rows)
        for c, (x0, x1, wx0, wx1) in enumerate(cols)
    ]


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


@dataclass(frozen=True, slots=True)
class _Axis:
    """The blend along one axis of the output: per row (or column) of tiles, where its weight starts and
    the weights from there; and the axis cut into segments, each with the tiles that weigh there (one
    tile: it owns the segment outright, weight 1)."""

    weights: dict[int, tuple[int, np.ndarray]]
    segments: list[tuple[int, int, tuple[int, ...]]]

    @classmethod
    def of(cls, spans: dict[int, tuple[int, int, int, int]], length: int, scale: int) -> _Axis:
        """From (core start, core end, window start, window end) in source pixels per row or column."""
        weights = _axis_weights(spans, length, scale)
        cuts = sorted({p for start, w in weights.values() for p in (start, start + len(w))})
        segments = []
        for a, b in itertools.pairwise(cuts):
            keys = tuple(k for k, (start, w) in sorted(weights.items()) if start <= a < start + len(w))
            segments.append((a, b, keys))
        return cls(weights, segments)

    def segments_in(self, a: int, b: int) -> Iterator[tuple[int, int, tuple[int, ...]]]:
        for sa, sb, keys in self.segments:
            if sa < b and sb > a:
                yield max(a, sa), min(b, sb), keys

    def weights_at(self, key: int, a: int, b: int) -> np.ndarray:
        start, w = self.weights[key]
        return w[a - start : b - start]


def _axis_weights(
    spans: dict[int, tuple[int, int, int, int]], length: int, scale: int
) -> dict[int, tuple[int, np.ndarray]]:
    """Per span (core start, core end, window start, window end, in source pixels) along one axis:
    (first output pixel with weight, the weights from there), normalised to sum to one everywhere."""
    order = sorted(spans, key=lambda k: spans[k][0])
    raw: dict[int, np.ndarray] = {}
    for pos, key in enumerate(order):
        c0, c1, w0, w1 = spans[key]
        centres = np.arange(w0 * scale, w1 * scale, dtype=np.float64) + 0.5
        weight = np.ones_like(centres)
        if pos > 0:  # the strip shared with the previous window: [w0, its window's end)
            shared_end = spans[order[pos - 1]][3]
            weight = np.minimum(weight, _ramp(centres, c0, min(c0 - w0, shared_end - c0), scale))
        if pos < len(order) - 1:
            shared_start = spans[order[pos + 1]][2]
            weight = np.minimum(weight, 1.0 - _ramp(centres, c1, min(c1 - shared_start, w1 - c1), scale))
        raw[key] = weight
    total = np.zeros(length * scale, np.float64)
    for key, weight in raw.items():
        start = spans[key][2] * scale
        total[start : start + len(weight)] += weight
    out: dict[int, tuple[int, np.ndarray]] = {}
    for key, weight in raw.items():
        start = spans[key][2] * scale
        weight = weight / total[start : start + len(weight)]
        used = np.flatnonzero(weight > 0)
        lo, hi = int(used[0]), int(used[-1]) + 1
        out[key] = (start + lo, weight[lo:hi].astype(np.float32))
    return out


def _ramp(centres: np.ndarray, boundary: int, shared: int, scale: int) -> np.ndarray:
    """0 to 1 across the middle half of a strip of ``2 * shared`` pixels around ``boundary``
    (source pixels), rising through ``boundary``; a step there when nothing is shared."""
    half = shared * scale / 2
    at = boundary * scale
    if half <= 0:
        return (centres >= at).astype(np.float64)
    return np.clip((centres - (at - half)) / (2 * half), 0.0, 1.0)
