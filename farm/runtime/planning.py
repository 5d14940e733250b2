"""Turning command-line or dropped paths into jobs: input discovery, mask matching, output names.

Mask convention (IOPaint's batch rule, plus a side-car rule for drops): with a mask *file*, that mask
is used for every input; with a mask *folder*, the mask of ``photo.jpg`` is the file there with stem
``photo`` (or ``photo_mask``); without ``--mask``, a file ``photo_mask.*`` beside the input is used.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})
MASK_SUFFIX = "_mask"


@dataclass(frozen=True, slots=True)
class Problem:
    """A path that cannot become a job, and why (one line for a person)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class Planned:
    """An input with its matched mask and the output it will be written to."""

    input: Path
    mask: Path | None
    output: Path


def is_mask_name(path: Path) -> bool:
    return path.stem.endswith(MASK_SUFFIX)


def collect_inputs(paths: Iterable[Path], *, skip: Sequence[Path] = ()) -> tuple[list[Path], list[Problem]]:
    """Files as given, plus the images inside folders (recursively, sorted; masks and hidden files skipped)."""
    files: list[Path] = []
    problems: list[Problem] = []
    skip_resolved = {p.resolve() for p in skip}
    for path in paths:
        if path.is_dir():
            _walk(path, files, problems, skip_resolved)
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem(path, "no such file or folder"))
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, problems


def _walk(folder: Path, files: list[Path], problems: list[Problem], skip: set[Path]) -> None:
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
            _walk(path, files, problems, skip)
        elif path.suffix.lower() in IMAGE_SUFFIXES and not is_mask_name(path):
            files.append(path)


def match_mask(image: Path, mask: Path | None) -> Path | Problem | None:
    """The mask for ``image`` under the convention above; a Problem when a mask folder lacks it."""
    if mask is None:
        return _find_by_stem(image.parent, image.stem + MASK_SUFFIX)
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


class OutputNamer:
    """Output names in one folder that never hit an input, another output of the batch, or (unless
    ``overwrite``) an existing file: ``photo.png``, then ``photo-1.png``, ``photo-2.png`` ..."""

    def __init__(self, out_dir: Path, suffix: str, *, overwrite: bool = False, protected: Iterable[Path] = ()) -> None:
        self.out_dir = out_dir
        self.suffix = suffix
        self.overwrite = overwrite
        self._taken: set[Path] = {p.resolve() for p in protected}

    def name_for(self, image: Path) -> Path:
        n = 0
        while True:
            candidate = self.out_dir / f"{image.stem}{'' if n == 0 else f'-{n}'}{self.suffix}"
            key = candidate.resolve()
            if key not in self._taken and (self.overwrite or not candidate.exists()):
                self._taken.add(key)
                return candidate
            n += 1


def plan(
    inputs: Sequence[Path], mask: Path | None, out_dir: Path, suffix: str, *, overwrite: bool = False
) -> tuple[list[Planned], list[Problem]]:
    """Match masks and name outputs for each input; inputs that cannot run become Problems."""
    skip = [out_dir] + ([mask] if mask is not None and mask.is_dir() else [])
    files, problems = collect_inputs(inputs, skip=skip)
    namer = OutputNamer(out_dir, suffix, overwrite=overwrite, protected=files)
    planned: list[Planned] = []
    for f in files:
        m = match_mask(f, mask)
        if isinstance(m, Problem):
            problems.append(m)
            continue
        planned.append(Planned(f, m, namer.name_for(f)))
    return planned, problems
