"""One big edit as many small jobs: cut it into parts, run each as an ordinary job, put it back once.

A big upscale is cut into overlapping tiles (:mod:`farm.imaging.tiles`); each tile is a job of its own
for the scheduler (speed-aware, retried elsewhere when its worker dies, cancelled with the rest). The
edit the user asked for stays one job (the *parent*): it is what the app, ``lanfarm run`` and the
queue show and count, its progress is the sum of its parts', and its output is written once,
atomically, when the last part is in. A part's input and result live in the parent's staging folder
(in the cache folder), which is removed when the parent ends, however it ends.

This module is the bookkeeping and the CPU work (cutting, assembling) run off the loop; the
dispatcher (:mod:`farm.runtime.dispatch`) drives it from its job events.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from PIL import Image

from farm.core.job import Job, JobState
from farm.core.scheduler import JobRequest
from farm.core.spec import EditSpec, HdStrategy, OutputSpec
from farm.errors import ImageError
from farm.imaging import regions
from farm.imaging.codec import DEFAULT_MAX_PIXELS, decode_image, decode_mask, encode_image
from farm.imaging.pipeline import EngineView
from farm.imaging.regions import find_regions, worth_cutting
from farm.imaging.tiles import Stitch, Tile, cut_tile, grid_for
from farm.local.files import read_bytes, write_atomic
from farm.local.paths import cache_dir


class Assembly(Protocol):
    """Where the parts' results go, and how the parent's output is made of them."""

    def save(self, index: int, result: bytes) -> None: ...

    def write(self, output: Path, *, overwrite: bool, progress: Callable[[float], None]) -> None: ...


@dataclass(eq=False)
class Cut:
    """A parent cut into parts: each part's input file (and mask), the spec the parts run with."""

    staging: Path
    assembly: Assembly
    inputs: list[tuple[Path, Path | None]]
    spec: EditSpec
    what: str  # "tile" or "region": how a part is named for people


@dataclass(eq=False)
class Split:
    """A parent job in flight as parts."""

    parent: Job
    request: JobRequest  # the parent as the scheduler would see it whole (a region cut may find nothing to cut)
    count: int  # how many tiles it was asked to be cut into, or REGIONS
    cut: Cut | None = None  # None while it is being cut
    parts: list[Job] = field(default_factory=list)
    progress: dict[str, float] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    saving: set[asyncio.Future[None]] = field(default_factory=set)  # its cut, assembly and parts' saves in flight
    ended: bool = False  # done, failed or cancelled: late part events change nothing
    assembling: bool = False  # every part is in and the output is being written (a cancel waits for it)

    def index(self, part: Job) -> int:
        return self.parts.index(part)

    joined: float = 0.0  # how much of the output is written (the assembly's progress)

    @property
    def fraction(self) -> float:
        """The parent's progress: its parts' (each part the same share), then putting them together."""
        if not self.parts:
            return 0.0
        parts = sum(1.0 if p.id in self.done else self.progress.get(p.id, 0.0) for p in self.parts) / len(self.parts)
        return PARTS_SHARE * parts + (1 - PARTS_SHARE) * self.joined

    def describe(self) -> str:
        """What the parent is made of, for its queue row: "6 tiles on 3 PCs", "joining 6 tiles"."""
        assert self.cut is not None
        what = f"{len(self.parts)} {self.cut.what}s"
        if self.assembling:
            return f"joining {what}"
        pcs = {p.worker for p in self.parts if p.worker and p.state is not JobState.QUEUED}
        return f"{what} on {len(pcs)} PC{'s' if len(pcs) != 1 else ''}" if pcs else what

    @property
    def complete(self) -> bool:
        return bool(self.parts) and len(self.done) == len(self.parts)


def staging_for(job: Job) -> Path:
    """The parent's staging folder (in the cache folder: never beside the user's files)."""
    return cache_dir() / "splits" / job.id


def max_tiles(megapixels: float) -> int:
    """The most tiles an image of ``megapixels`` allows (tiles no smaller than MIN_TILE a side)."""
    return int(megapixels * 1e6 // (MIN_TILE * MIN_TILE))


def part_spec(spec: EditSpec) -> EditSpec:
    """What a part (tile or region) runs: the same engine, model and params, all of it, a lossless PNG back."""
    return replace(spec, hd=HdStrategy("original"), output=OutputSpec("png"))


PARTS_SHARE = 0.9  # of a split edit's progress; the rest is stitching or pasting the results together
MIN_TILE = 256  # the smallest tile side the farm cuts (smaller ones cost more in requests than they save)
REGIONS = -1  # Split.count of an inpaint cut into one crop per region of its mask
DEFAULT_OVERLAP = 32  # context pixels around a tile when the engine's params name none


def cut_tiles(job: Job, count: int, *, multiple: int, overlap: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> Cut:
    """Cut ``job``'s input into about ``count`` tiles in its staging folder (CPU and disk: off the loop).

    Raises ImageError for an unreadable input, OutputError when the staging folder cannot be written.
    """
    staging = staging_for(job)
    shutil.rmtree(staging, ignore_errors=True)  # a cut of an earlier try of this job
    (staging / "results").mkdir(parents=True)
    try:
        picture = decode_image(read_bytes(job.input), max_pixels=max_pixels)
        tiles = grid_for(picture.width, picture.height, count, overlap=overlap, multiple=multiple, min_tile=MIN_TILE)
        inputs: list[tuple[Path, Path | None]] = []
        for tile in tiles:
            path = staging / f"tile-{tile.index:04d}.png"
            write_atomic(path, cut_tile(picture, tile))
            inputs.append((path, None))
        stitch = _StitchInto(
            staging / "results", (picture.width, picture.height), tiles, job.input, max_pixels, job.spec.output
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return Cut(staging, stitch, inputs, part_spec(job.spec), "tile")


def cut_regions(job: Job, *, max_pixels: int = DEFAULT_MAX_PIXELS, resize_mask: bool = False) -> Cut | None:
    """Cut an inpaint into one crop per region of its mask, or None when that is not worth it (one region,
    or regions that fill most of the box around them all: the job then runs whole)."""
    if job.mask is None:
        return None
    picture = decode_image(read_bytes(job.input), max_pixels=max_pixels)
    mask = decode_mask(read_bytes(job.mask), picture.width, picture.height, resize=resize_mask, max_pixels=max_pixels)
    if max(picture.width, picture.height) <= job.spec.hd.trigger:
        return None  # the engine sees the whole picture: nothing to cut
    boxes = find_regions(mask, job.spec.hd)
    if not worth_cutting(boxes):
        return None
    staging = staging_for(job)
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "results").mkdir(parents=True)
    try:
        cuts = regions.cut_regions(picture, mask, boxes, job.spec.hd)
        inputs: list[tuple[Path, Path | None]] = []
        for i, cut in enumerate(cuts):
            image, region_mask = staging / f"region-{i:04d}.png", staging / f"region-{i:04d}_mask.png"
            write_atomic(image, cut.image)
            write_atomic(region_mask, cut.mask)
            inputs.append((image, region_mask))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    assembly = _PasteInto(staging / "results", [c.view for c in cuts], job.input, max_pixels, job.spec.output)
    return Cut(staging, assembly, inputs, part_spec(job.spec), "region")


def part_jobs(parent: Job, cut: Cut) -> list[Job]:
    """The parts of ``parent`` as ordinary jobs (same priority; named after the parent)."""
    n = len(cut.inputs)
    return [
        Job(
            input=image,
            spec=cut.spec,
            output=cut.staging / "results" / image.name,
            mask=mask,
            priority=parent.priority,
            parent=parent.id,
            label=f"{parent.name} {cut.what} {i + 1}/{n}",
        )
        for i, (image, mask) in enumerate(cut.inputs)
    ]


def discard(split: Split) -> None:
    """Remove the staging folder of ``split`` (its parts' inputs and results)."""
    shutil.rmtree(staging_for(split.parent), ignore_errors=True)


class _PasteInto:
    """The regions' edited crops, kept as files until the last is in, pasted into the input once."""

    def __init__(self, folder: Path, views: list[EngineView], source: Path, max_pixels: int, output: OutputSpec):
        self._folder = folder
        self._views = views
        self._source = source
        self._max_pixels = max_pixels
        self._output = output

    def _path(self, index: int) -> Path:
        return self._folder / f"region-{index:04d}.png"

    def save(self, index: int, result: bytes) -> None:
        write_atomic(self._path(index), result, overwrite=True)

    def write(self, output: Path, *, overwrite: bool, progress: Callable[[float], None]) -> None:
        picture = decode_image(read_bytes(self._source), max_pixels=self._max_pixels)
        edited = [read_bytes(self._path(i)) for i in range(len(self._views))]
        progress(0.5)
        write_atomic(
            output, encode_image(regions.paste_regions(picture, self._views, edited), self._output), overwrite=overwrite
        )


class _StitchInto:
    """The tiles' Stitch with what the parent's output needs besides them (the input's metadata).

    The upscale factor is the model's, which only the worker that loaded it knows for sure: it is read
    from the first result (its size over its tile's), and every later result must agree.
    """

    def __init__(
        self, folder: Path, size: tuple[int, int], tiles: list[Tile], source: Path, max_pixels: int, output: OutputSpec
    ) -> None:
        self._folder = folder
        self._size = size
        self._tiles = tiles
        self._source = source
        self._max_pixels = max_pixels
        self._output = output
        self._stitch: Stitch | None = None
        self._lock = threading.Lock()  # results may arrive from two threads at once

    def save(self, index: int, result: bytes) -> None:
        with self._lock:  # one at a time: a save decodes its tile whole (4 at once of 48 MP took 3x the memory)
            if self._stitch is None:
                self._stitch = Stitch(self._folder, *self._size, self._tiles, _scale_of(self._tiles[index], result))
            self._stitch.save(index, result)

    def write(self, output: Path, *, overwrite: bool, progress: Callable[[float], None]) -> None:
        if self._stitch is None:
            raise ImageError("no tile has a result yet")
        picture = decode_image(read_bytes(self._source), max_pixels=self._max_pixels)
        self._stitch.write(output, picture, self._output, overwrite=overwrite, progress=progress)


def _scale_of(tile: Tile, result: bytes) -> int:
    """The upscale factor a tile's result shows (from its header); ImageError when it is not a whole one."""
    try:
        with Image.open(io.BytesIO(result)) as im:
            width, height = im.size
    except Exception:
        raise ImageError(f"{tile.describe()}: the result is not an image") from None
    scale = width // tile.width
    if scale < 1 or (width, height) != (tile.width * scale, tile.height * scale):
        raise ImageError(
            f"{tile.describe()}: result is {width}x{height}, not a whole multiple of {tile.width}x{tile.height}"
        )
    return scale
