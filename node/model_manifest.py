"""What a model push announces (``POST /v1/models/uploads``), parsed and checked, pure.

A push names the model (``name``: the file or diffusers folder name people use), its content id
(``id``), its files with their sizes and sha256, and the chunk size it sends them in. The id must be
what the files make: the one file's sha256, or for a folder the manifest hash of
:func:`farm.engines.model_ids.manifest_id`. Chunk ``i`` of a file covers bytes ``i * chunk_size``
up to the next chunk or the end of the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from farm.engines.catalogue import IOPAINT_LAMA_NAME, WEIGHT_SUFFIXES
from farm.engines.model_ids import manifest_id
from node.errors import Invalid

SHA_RE = re.compile(r"[0-9a-f]{64}")
MIN_CHUNK, MAX_CHUNK = 64 << 10, 64 << 20
DEFAULT_CHUNK = 16 << 20
MAX_FILES = 10_000


class NotAModel(Invalid):
    code = "not_a_model"


@dataclass(frozen=True, slots=True)
class ManifestFile:
    path: str  # relative posix path; the model's name for a single file, ``name/...`` in a folder
    size: int
    sha256: str
    chunks: tuple[str, ...] = ()  # sha256 of each chunk, when announced (needed to stream chunks)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A valid push announcement."""

    name: str
    id: str
    files: tuple[ManifestFile, ...]
    chunk_size: int

    @property
    def folder(self) -> bool:
        return len(self.files) != 1 or self.files[0].path != self.name

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def chunks(self, file: int) -> int:
        """How many chunks file number ``file`` goes in (an empty file: one empty chunk)."""
        return max(1, -(-self.files[file].size // self.chunk_size))

    def chunk_span(self, file: int, index: int) -> tuple[int, int]:
        """(offset, length) of a chunk; Invalid for a chunk the manifest does not have."""
        if not 0 <= file < len(self.files) or not 0 <= index < self.chunks(file):
            raise Invalid(f"no chunk {file}/{index} in this upload")
        offset = index * self.chunk_size
        return offset, min(self.chunk_size, self.files[file].size - offset)

    def all_chunks(self) -> Iterator[tuple[int, int]]:
        for f in range(len(self.files)):
            for i in range(self.chunks(f)):
                yield f, i

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "chunk_size": self.chunk_size,
            "files": [
                {"path": f.path, "size": f.size, "sha256": f.sha256, **({"chunks": list(f.chunks)} if f.chunks else {})}
                for f in self.files
            ],
        }


def check_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or name.startswith(".") or "/" in name or "\\" in name:
        raise Invalid("a model's name is a file or folder name (1-255 characters, no '/', not starting with '.')")
    return name


def parse_manifest(body: Any) -> Manifest:
    """Check a push announcement; Invalid (or NotAModel) says what is wrong."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object with name, id, files and chunk_size")
    unknown = sorted(set(body) - {"name", "id", "files", "chunk_size"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r} in the upload")
    name = check_name(body.get("name"))
    model_id = body.get("id")
    if not isinstance(model_id, str) or not SHA_RE.fullmatch(model_id):
        raise Invalid("id must be the model's content id: 64 lower-case hex digits")
    chunk = body.get("chunk_size", DEFAULT_CHUNK)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not MIN_CHUNK <= chunk <= MAX_CHUNK:
        raise Invalid(f"chunk_size must be a whole number of bytes from {MIN_CHUNK} to {MAX_CHUNK}")
    raw = body.get("files")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_FILES:
        raise Invalid(f"files must be a list of 1 to {MAX_FILES} {{path, size, sha256}}")
    files = tuple(_file(f) for f in raw)
    if len({f.path for f in files}) != len(files):
        raise Invalid("files lists a path twice")
    manifest = Manifest(name, model_id, files, chunk)
    for i, f in enumerate(files):
        if f.chunks and len(f.chunks) != manifest.chunks(i):
            raise Invalid(f"{f.path}: {len(f.chunks)} chunk hashes for {manifest.chunks(i)} chunks of {chunk} bytes")
    if not manifest.folder:
        if not (name == IOPAINT_LAMA_NAME or PurePosixPath(name).suffix.lower() in WEIGHT_SUFFIXES):
            raise NotAModel(
                f"{name} is not a model file: expected a .safetensors, .pth or .ckpt file, "
                f"IOPaint's {IOPAINT_LAMA_NAME}, or a diffusers folder with model_index.json"
            )
        expected = files[0].sha256
    else:
        prefix = name + "/"
        if not all(f.path.startswith(prefix) for f in files):
            raise Invalid(f"every file of the folder {name} must be under {prefix}")
        rels = [(f.path.removeprefix(prefix), f.sha256) for f in files]
        if "model_index.json" not in {r for r, _ in rels}:
            raise NotAModel(f"{name} is not a diffusers folder: it has no model_index.json")
        expected = manifest_id(rels)
    if expected != model_id:
        raise Invalid(f"id {model_id} is not the content id of the files announced ({expected})")
    return manifest


def _file(value: Any) -> ManifestFile:
    if not isinstance(value, dict):
        raise Invalid("each file is {path, size, sha256}")
    unknown = sorted(set(value) - {"path", "size", "sha256", "chunks"})
    if unknown:
        raise Invalid(f"unknown field {unknown[0]!r} in a file of the upload")
    path, size, sha = value.get("path"), value.get("size"), value.get("sha256")
    if not isinstance(path, str) or not path or len(path) > 1024:
        raise Invalid("a file's path must be a relative path")
    parts = PurePosixPath(path).parts
    if path.startswith("/") or "\\" in path or any(p in ("..", ".", "") for p in path.split("/")) or not parts:
        raise Invalid(f"a file's path must be a plain relative path, not {path!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise Invalid(f"{path}: size must be a whole number of bytes")
    if not isinstance(sha, str) or not SHA_RE.fullmatch(sha):
        raise Invalid(f"{path}: sha256 must be 64 lower-case hex digits")
    chunks = value.get("chunks", [])
    if not isinstance(chunks, list) or not all(isinstance(c, str) and SHA_RE.fullmatch(c) for c in chunks):
        raise Invalid(f"{path}: chunks must be a list of 64-hex-digit sha256")
    return ManifestFile(path, size, sha, tuple(chunks))
