"""Model identity: every model file and diffusers folder named by its content, hashed once.

A model's id is the sha256 of its file, or for a diffusers folder the sha256 of its manifest (each
file's relative path and sha256, see :func:`farm.engines.catalogue.sha256_of` and
:func:`manifest_id`). Two different files that share a name have different ids, so a job that names
its model by id never runs on the wrong one. Ids are cached by (path, size, mtime) in the
:class:`~farm.engines.catalogue.ModelIndex`, so listing a folder does not rehash it. Torch-free.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from farm.engines.catalogue import ModelFile, ModelIndex, describe, scan_models
from farm.errors import OutputError


@dataclass(frozen=True, slots=True)
class ModelCard:
    """A model as the farm names it: content id, the name people use, engine kind and what loading told."""

    id: str
    name: str
    kind: str
    format: str
    size: int
    architecture: str | None = None
    scale: int | None = None
    path: Path | None = None

    def to_dict(self) -> dict[str, object]:
        """The ``/v1/info`` form of one model."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "format": self.format,
            "architecture": self.architecture,
            "scale": self.scale,
            "size": self.size,
        }


def manifest_id(files: Iterable[tuple[str, str]]) -> str:
    """The id of a folder from its files' (relative posix path, sha256): as ``sha256_of`` hashes a folder."""
    digest = hashlib.sha256()
    for rel, sha in sorted(files, key=lambda f: f[0].split("/")):  # the order sha256_of walks a folder
        digest.update(f"{rel}\0{sha}\n".encode())
    return digest.hexdigest()


class ModelIds:
    """The models of one folder with their content ids; thread-safe, blocking (call it off the loop)."""

    def __init__(self, folder: Path, index: ModelIndex | None = None) -> None:
        self.folder = folder
        self.index = index or ModelIndex()
        self._lock = threading.Lock()

    def cards(self) -> list[ModelCard]:
        """Every usable model in the folder, sorted by name; hashes only what changed since last time."""
        with self._lock:
            models = [m for m in scan_models(self.folder) if not m.note and m.kind != "unknown"]
            details = describe(models, self.index, inspect=None, hashes=True)
            with contextlib.suppress(OSError, OutputError):  # a read-only cache costs only speed next time
                self.index.save()
        return [
            ModelCard(
                id=d.sha256 or "",
                name=d.model.name,
                kind=d.model.kind,
                format=d.model.format,
                size=d.model.size_bytes,
                architecture=d.architecture,
                scale=d.scale,
                path=d.model.path,
            )
            for d in details
        ]

    def find(self, model_id: str) -> ModelCard | None:
        return next((c for c in self.cards() if c.id == model_id), None)

    def named(self, name: str) -> ModelCard | None:
        return next((c for c in self.cards() if c.name == name), None)

    def record(
        self, model: ModelFile, sha256: str, *, architecture: str | None = None, scale: int | None = None
    ) -> None:
        """Remember an id already checked (a pushed model was hashed as it arrived): no rehash."""
        values: dict[str, object] = {"sha256": sha256}
        if architecture is not None:
            values.update(architecture=architecture, scale=scale, error=None)
        with self._lock:
            self.index.put(model, **values)
            with contextlib.suppress(OSError, OutputError):
                self.index.save()


def ids_by_kind(cards: Sequence[ModelCard]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for card in cards:
        out.setdefault(card.kind, set()).add(card.id)
    return {kind: frozenset(ids) for kind, ids in out.items()}


__all__ = ["ModelCard", "ModelIds", "ids_by_kind", "manifest_id"]
