"""Turning command-line or dropped paths into jobs: input discovery, mask matching, output names.

Mask convention (IOPaint's batch rule, plus side-car rules for drops): with a mask *file*, that mask
is used for every input; with a mask *folder*, the mask of ``photo.jpg`` is the file there with stem
``photo`` (or ``photo_mask``); without ``--mask``, a file ``photo_mask.*`` beside the input is used,
else ``masks/photo.*`` (or ``masks/photo_mask.*``) in the input's folder. A mask folder, and any
folder named ``masks``, is never input.

Output names mirror the folders: ``shoot/day1/a.jpg`` given as ``shoot`` is written to
``OUT/day1/a.png`` (with ``--format keep``, the default, ``a.jpg`` keeps ``.jpg``); a file given by itself to
``OUT/a.png``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from farm.core.spec import OutputSpec

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MASK_SUFFIX = "_mask"
MASKS_DIR = "masks"  # a folder of masks beside the images: never input, used when no --mask is given


@dataclass(frozen=True, slots=True)
class Problem:
    """A path that cannot become a job, and why (one line for a person). ``skipped``: not an image,
    left out on purpose (counted, not a failure)."""

    path: Path
    reason: str
    skipped: bool = False

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Planned:
    """An input with its matched mask and the output it will be written to. ``current``: an earlier
    run already wrote that output from this input and edit and it still matches (nothing to do)."""

    input: Path
    mask: Path | None
    output: Path
    current: bool = False


#: Asked for each input before its output is named: (input, mask, output folder) -> the output an
#: earlier run wrote there from the same input, mask and edit that is still up to date, or None.
UpToDate = Callable[[Path, Path | None, Path], Path | None]


def is_mask_name(path: Path) -> bool:
    return path.stem.endswith(MASK_SUFFIX)


def is_masks_folder(path: Path) -> bool:
    return path.name.lower() == MASKS_DIR


def collect_inputs(paths: Iterable[Path], *, skip: Sequence[Path] = ()) -> tuple[list[Path], list[Problem]]:
    """Files as given, plus the images inside folders (recursively, sorted; masks, ``masks/`` folders
    and hidden files left out; other files listed as skipped Problems)."""
    found, problems = collect_relative(paths, skip=skip)
    return [f for f, _rel in found], problems


def collect_relative(
    paths: Iterable[Path], *, skip: Sequence[Path] = ()
) -> tuple[list[tuple[Path, Path]], list[Problem]]:
    """Like :func:`collect_inputs`, each file with the folder its output goes to, relative to the output
    folder (``Path()`` for a file given by itself and for the top of a given folder)."""
    files: list[tuple[Path, Path]] = []
    problems: list[Problem] = []
    skip_resolved = {p.resolve() for p in skip}
    for path in paths:
        if path.is_dir():
            _walk(path, Path(), files, problems, skip_resolved)
        elif path.exists():
            files.append((path, Path()))
        else:
            problems.append(Problem(path, "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f, rel in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((f, rel))
    return unique, problems


def _walk(folder: Path, rel: Path, files: list[tuple[Path, Path]], problems: list[Problem], skip: set[Path]) -> None:
    if folder.resolve() in skip:
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        problems.append(Problem(folder, f"cannot read folder ({exc.strerror or exc})"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not is_masks_folder(path):
                _walk(path, rel / entry.name, files, problems, skip)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            if not is_mask_name(path):
                files.append((path, rel))
        else:
            problems.append(Problem(path, "not an image", skipped=True))


def match_mask(image: Path, mask: Path | None) -> Path | Problem | None:
    """The mask for ``image`` under the convention above; a Problem when a mask folder lacks it."""
    if mask is None:
        beside = _find_by_stem(image.parent, image.stem + MASK_SUFFIX)
        if beside is not None:
            return beside
        folder = image.parent / MASKS_DIR
        if folder.is_dir():
            return _find_by_stem(folder, image.stem) or _find_by_stem(folder, image.stem + MASK_SUFFIX)
        return None
    if not mask.is_dir():
        return mask
    found = _find_by_stem(mask, image.stem) or _find_by_stem(mask, image.stem + MASK_SUFFIX)
    return found or Problem(image, f"no mask named {image.stem}.* in {mask}")


def _find_by_stem(folder: Path, stem: str) -> Path | None:
    for suffix in (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"):
        for candidate in (folder / (stem + suffix), folder / (stem + suffix.upper())):
            if candidate.is_file():
                return candidate
    return None


def input_format(path: Path) -> str | None:
    """The format named in an image file's header (Pillow's name: ``JPEG``, ``PNG`` ...), None if unreadable.
    Only a regular file is opened (a pipe named ``x.png`` never blocks planning)."""
    if not os.path.isfile(path):
        return None
    try:
        with Image.open(path) as im:
            return im.format
    except Exception:  # unreadable: the job reports it properly
        return None


def output_suffix(image: Path, output: OutputSpec) -> str:
    """The suffix of ``image``'s output: the format's, or with ``keep`` the one its own format keeps."""
    return output.suffix if output.format != "keep" else output.suffix_for(input_format(image))


class OutputNamer:
    """Output names in one folder that never hit an input, another output of the batch, or (unless
    ``overwrite``) an existing file: ``photo.png``, then ``photo-1.png``, ``photo-2.png`` ...

    ``output``: a fixed suffix, or the output spec (``keep`` gives each image its own format's suffix).
    """

    def __init__(
        self, out_dir: Path, output: str | OutputSpec, *, overwrite: bool = False, protected: Iterable[Path] = ()
    ) -> None:
        self.out_dir = out_dir
        self.output = output
        self.overwrite = overwrite
        self._taken: set[Path] = {p.resolve() for p in protected}

    def suffix(self, image: Path) -> str:
        return self.output if isinstance(self.output, str) else output_suffix(image, self.output)

    def natural(self, image: Path, subdir: Path = Path()) -> Path:
        """The name ``image``'s output has when nothing is in the way."""
        return self.out_dir / subdir / f"{image.stem}{self.suffix(image)}"

    def reserve(self, path: Path) -> bool:
        """Take ``path`` for this batch; False when an input or another output has it."""
        key = path.resolve()
        if key in self._taken:
            return False
        self._taken.add(key)
        return True

    def name_for(self, image: Path, subdir: Path = Path()) -> Path:
        n = 0
        suffix = self.suffix(image)
        while True:
            candidate = self.out_dir / subdir / f"{image.stem}{'' if n == 0 else f'-{n}'}{suffix}"
            key = candidate.resolve()
            if key not in self._taken and (self.overwrite or not candidate.exists()):
                self._taken.add(key)
                return candidate
            n += 1


def plan(
    inputs: Sequence[Path],
    mask: Path | None,
    out_dir: Path,
    output: str | OutputSpec,
    *,
    overwrite: bool = False,
    up_to_date: UpToDate | None = None,
) -> tuple[list[Planned], list[Problem]]:
    """Match masks and name outputs for each input; inputs that cannot run become Problems.

    Subfolders of a given folder are mirrored under ``out_dir`` (created here).
    ``up_to_date`` marks inputs whose output an earlier run wrote and that still matches
    (``Planned.current``): they keep that output and need no job.
    """
    skip = [out_dir] + ([mask] if mask is not None and mask.is_dir() else [])
    found, problems = collect_relative(inputs, skip=skip)
    namer = OutputNamer(out_dir, output, overwrite=overwrite, protected=[f for f, _rel in found])
    planned: list[Planned] = []
    for f, rel in found:
        m = match_mask(f, mask)
        if isinstance(m, Problem):
            problems.append(m)
            continue
        kept = up_to_date(f, m, out_dir / rel) if up_to_date is not None else None
        if kept is not None and namer.reserve(kept):
            planned.append(Planned(f, m, kept, current=True))
            continue
        if rel != Path():
            (out_dir / rel).mkdir(parents=True, exist_ok=True)
        planned.append(Planned(f, m, namer.name_for(f, rel)))
    return planned, problems
