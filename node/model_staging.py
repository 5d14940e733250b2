"""A pushed model on its way in, on disk: ``<models>/.incoming/<id>/`` (hidden, so never listed as a model).

- ``manifest.json``: what the push announced;
- ``data/<path>``: each file, made at full size up front and filled chunk by chunk at its offset;
- ``chunks.log``: one line ``<file> <index> <sha256>`` per chunk written and checked, appended after
  its bytes are written, so after a crash or restart the node knows which chunks it has. The whole
  file is hashed again before it is installed;
- ``partial.log``: one line ``<file> <index> <bytes>`` each time more of an unfinished chunk is on disk
  (appended after those bytes are written; the last line of a chunk counts), so a chunk cut short by
  a dropped connection or a restart resumes at that byte: the sender sends only the rest, and the
  chunk is hashed whole (the kept prefix read back, then the rest) before it goes into ``chunks.log``.

Installing is one ``os.replace`` of ``data/<name>`` onto ``<models>/<name>`` (the same disk): a
model is either all there or not there. Every function here blocks (call it in a worker thread).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from node.errors import HashMismatch
from node.model_manifest import Manifest, parse_manifest

LOG = "chunks.log"
PARTIAL = "partial.log"
MANIFEST = "manifest.json"
#: Unfinished pushes older than this are removed when the node starts.
STALE_SECONDS = 7 * 24 * 3600.0


@dataclass(slots=True)
class Staged:
    """One upload in the staging folder: its manifest, the chunks already written and checked, and the
    bytes on disk of unfinished chunks (``partial``: the first so many bytes of the chunk)."""

    folder: Path
    manifest: Manifest
    have: set[tuple[int, int]] = field(default_factory=set)
    partial: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def missing(self) -> list[tuple[int, int]]:
        return [c for c in self.manifest.all_chunks() if c not in self.have]

    def file_path(self, file: int) -> Path:
        return self.data / self.manifest.files[file].path

    @property
    def model_path(self) -> Path:
        """The staged file or folder, under its model name (what is renamed into the models folder)."""
        return self.data / self.manifest.name


def open_staged(staging: Path, manifest: Manifest) -> Staged:
    """The staged upload of ``manifest.id``, resumed if one with the same manifest is there, else new."""
    folder = staging / manifest.id
    try:
        old = parse_manifest(json.loads((folder / MANIFEST).read_text("utf-8")))
    except (OSError, ValueError):
        old = None
    except Exception:  # an unreadable old manifest (Invalid): start again
        old = None
    if old == manifest:
        have = _read_log(folder / LOG, manifest)
        return Staged(folder, manifest, have, _read_partial(folder / PARTIAL, manifest, have))
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "data").mkdir(parents=True)
    staged = Staged(folder, manifest)
    for i, f in enumerate(manifest.files):
        path = staged.file_path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            fh.truncate(f.size)  # sparse: the disk fills as the chunks come
    (folder / MANIFEST).write_text(json.dumps(manifest.to_dict()), "utf-8")  # last: marks it complete
    return staged


def open_file(staged: Staged, file: int) -> int:
    """A descriptor to write a staged file at offsets (``os.pwrite``); close it with ``os.close``."""
    return os.open(staged.file_path(file), os.O_WRONLY)


def record_chunk(staged: Staged, file: int, index: int, sha: str) -> None:
    """A chunk's bytes are written and checked: log it (from now on it survives a restart)."""
    with (staged.folder / LOG).open("a", encoding="utf-8") as log:
        log.write(f"{file} {index} {sha}\n")
    staged.have.add((file, index))
    staged.partial.pop((file, index), None)


def record_prefix(staged: Staged, file: int, index: int, size: int) -> None:
    """The first ``size`` bytes of an unfinished chunk are written (0: none are kept): log it."""
    with (staged.folder / PARTIAL).open("a", encoding="utf-8") as log:
        log.write(f"{file} {index} {size}\n")
    if size:
        staged.partial[(file, index)] = size
    else:
        staged.partial.pop((file, index), None)


def read_prefix(staged: Staged, file: int, index: int, size: int) -> bytes:
    """The first ``size`` bytes of a chunk as they are on disk (to hash a resumed chunk whole)."""
    offset, _length = staged.manifest.chunk_span(file, index)
    fd = os.open(staged.file_path(file), os.O_RDONLY)
    try:
        data = os.pread(fd, size, offset)
    finally:
        os.close(fd)
    if len(data) != size:
        raise OSError(f"{staged.file_path(file)}: {len(data)} of the {size} bytes kept of chunk {file}/{index}")
    return data


def verify(staged: Staged) -> None:
    """Hash every staged file whole; HashMismatch (naming the file) if one is not what was announced."""
    for i, f in enumerate(staged.manifest.files):
        digest = hashlib.sha256()
        with staged.file_path(i).open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
        got = digest.hexdigest()
        if got != f.sha256:
            raise HashMismatch(
                f"{f.path}: the file received hashes to {got}, not the {f.sha256} announced; "
                "the push was corrupted or announced the wrong hash (nothing was installed)"
            )


def remove(staged_folder: Path) -> None:
    shutil.rmtree(staged_folder, ignore_errors=True)


def clean_stale(staging: Path, now: float | None = None) -> list[str]:
    """Remove unfinished pushes not touched for :data:`STALE_SECONDS`; return their ids."""
    now = time.time() if now is None else now
    gone = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(staging):
            if entry.is_dir() and now - _touched(Path(entry.path)) > STALE_SECONDS:
                shutil.rmtree(entry.path, ignore_errors=True)
                gone.append(entry.name)
    return gone


def _touched(folder: Path) -> float:
    """When an upload last changed: its folder, manifest or log (chunks append to the log)."""
    times = [folder.stat().st_mtime]
    for name in (MANIFEST, LOG):
        with contextlib.suppress(OSError):
            times.append((folder / name).stat().st_mtime)
    return max(times)


def _read_log(path: Path, manifest: Manifest) -> set[tuple[int, int]]:
    have: set[tuple[int, int]] = set()
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError:
        return have
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            continue  # a line cut short by a crash: that chunk is asked for again
        chunk = (int(parts[0]), int(parts[1]))
        if chunk[0] < len(manifest.files) and chunk[1] < manifest.chunks(chunk[0]):
            have.add(chunk)
    return have


def _read_partial(path: Path, manifest: Manifest, have: set[tuple[int, int]]) -> dict[tuple[int, int], int]:
    """The bytes kept of each unfinished chunk: the last whole line of each counts."""
    kept: dict[tuple[int, int], int] = {}
    try:
        lines = path.read_text("utf-8").split("\n")[:-1]  # after the last newline: a line cut short by a crash
    except OSError:
        return kept
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue
        file, index, size = (int(p) for p in parts)
        if file < len(manifest.files) and index < manifest.chunks(file):
            kept[(file, index)] = size
    length = manifest.chunk_span
    return {c: n for c, n in kept.items() if c not in have and 0 < n < length(*c)[1]}
