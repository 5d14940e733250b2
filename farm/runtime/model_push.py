"""Push one model to one node in chunks that survive a dropped connection or a node restart.

The node says which chunks it still needs (``POST /v1/models/uploads``); each chunk goes with its
sha256 in the path and is checked before the node records it; ``finish`` makes the node hash each
file whole and load the model before it offers it. When the node stops answering mid-push, the
push waits for it (``retry_for`` seconds) and asks again which chunks are missing: only chunks cut
short are sent twice. Chunks go one after another on one connection while the next one is read and
hashed, so the link stays busy (docs/protocol.md, "Pushing a model").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from farm.engines.catalogue import ModelIndex, classify, sha256_of
from farm.engines.model_ids import manifest_id
from farm.errors import FarmError
from farm.runtime.client import NodeClient, NodeRejected, NodeUnavailable

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 16 << 20
#: finish hashes the whole model and loads it on the node: big checkpoints take a while.
FINISH_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5, sock_read=900)
CHUNK_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_connect=5, sock_read=60)

Progress = Callable[[int, int], None]  # (bytes the node has, bytes in all)


class PushError(FarmError):
    """A node refused a model (``code`` is its machine word: not_a_model, hash_mismatch, disk_full...)."""

    def __init__(self, message: str, code: str = "refused", result: PushResult | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.result = result  # what was sent before the refusal


@dataclass(frozen=True, slots=True)
class PushFile:
    wire: str  # the path the node stores it under (the model name, or name/relative for a folder)
    path: Path
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class ModelPackage:
    """A local model ready to push: its content id and its files with their hashes."""

    name: str
    id: str
    kind: str
    files: tuple[PushFile, ...]

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self, chunk_size: int) -> dict[str, object]:
        return {
            "name": self.name,
            "id": self.id,
            "chunk_size": chunk_size,
            "files": [{"path": f.wire, "size": f.size, "sha256": f.sha256} for f in self.files],
        }


def package(path: Path, index: ModelIndex | None = None) -> ModelPackage:
    """Hash a model file or diffusers folder for a push (blocking; a file's hash is cached by the index)."""
    model = classify(path)
    if model is None or model.kind == "unknown" or model.note:
        why = model.note if model is not None and model.note else "not a model file or diffusers folder"
        raise PushError(f"{path}: {why}", "not_a_model")
    if path.is_file():
        index = index or ModelIndex()
        sha = index.get(model).get("sha256")
        if not isinstance(sha, str):
            sha = sha256_of(path)
            index.put(model, sha256=sha)
            with contextlib.suppress(OSError, FarmError):  # a read-only cache costs only speed next time
                index.save()
        return ModelPackage(model.name, sha, model.kind, (PushFile(model.name, path, model.size_bytes, sha),))
    files = []
    for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).parts):
        rel = file.relative_to(path).as_posix()
        files.append(PushFile(f"{model.name}/{rel}", file, file.stat().st_size, sha256_of(file)))
    model_id = manifest_id((f.wire.removeprefix(model.name + "/"), f.sha256) for f in files)
    return ModelPackage(model.name, model_id, model.kind, tuple(files))


@dataclass(slots=True)
class PushResult:
    """What one push did: ``already`` when the node had the model; chunk counts for the resume check."""

    node: str
    name: str
    id: str
    size: int
    already: bool = False
    chunks: int = 0  # chunks in the model
    sent: int = 0  # chunk requests made
    resent: int = 0  # of those, chunks sent before (cut short by a drop or a restart)
    bytes_sent: int = 0
    seconds: float = 0.0
    restarts: int = 0  # times the push had to wait for the node and ask again
    model: dict[str, object] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """Bytes per second of chunk data while sending (0 when nothing was sent)."""
        return self.bytes_sent / self.seconds if self.seconds > 0 and self.bytes_sent else 0.0


async def push_model(
    client: NodeClient,
    pkg: ModelPackage,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: Progress | None = None,
    retry_for: float = 60.0,
    on_chunk: Callable[[int, int], None] | None = None,
) -> PushResult:
    """Push ``pkg`` to the node behind ``client``; PushError when it refuses, NodeUnavailable when it
    stayed away longer than ``retry_for`` seconds."""
    result = PushResult(client.base_url, pkg.name, pkg.id, pkg.size)
    sent: set[tuple[int, int]] = set()
    waited_since: float | None = None
    delay = 0.2
    while True:
        try:
            done = await _attempt(client, pkg, chunk_size, result, sent, progress, on_chunk)
            if done:
                return result
        except NodeUnavailable as exc:
            now = time.monotonic()
            waited_since = waited_since if waited_since is not None else now
            if now - waited_since > retry_for:
                raise
            result.restarts += 1
            log.info("%s: push of %s paused (%s); resuming", client.base_url, pkg.name, exc.reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            continue
        except NodeRejected as exc:
            raise PushError(str(exc), exc.code, result) from None
        waited_since = None


async def _attempt(
    client: NodeClient,
    pkg: ModelPackage,
    chunk_size: int,
    result: PushResult,
    sent: set[tuple[int, int]],
    progress: Progress | None,
    on_chunk: Callable[[int, int], None] | None,
) -> bool:
    state = await client.call("POST", "/v1/models/uploads", json=pkg.manifest(chunk_size))
    if state.get("state") == "installed":
        result.already = not result.sent
        result.model = dict(state.get("model") or {})
        if progress:
            progress(pkg.size, pkg.size)
        return True
    result.chunks = int(state.get("chunks") or 0)
    missing = [(int(f), int(i)) for f, i in state.get("missing") or []]
    have = pkg.size - sum(_span(pkg, chunk_size, f, i)[1] for f, i in missing)
    if progress:
        progress(have, pkg.size)
    started = time.monotonic()
    nxt: asyncio.Future[tuple[bytes, str]] | None = None
    try:
        for n, (f, i) in enumerate(missing):
            current = nxt if nxt is not None else asyncio.ensure_future(asyncio.to_thread(_read, pkg, chunk_size, f, i))
            data, sha = await current
            nxt = None
            if n + 1 < len(missing):  # read and hash the next chunk while this one travels
                nf, ni = missing[n + 1]
                nxt = asyncio.ensure_future(asyncio.to_thread(_read, pkg, chunk_size, nf, ni))
            if (f, i) in sent:
                result.resent += 1
            sent.add((f, i))
            result.sent += 1
            await client.call(
                "PUT",
                f"/v1/models/uploads/{pkg.id}/{f}/{i}/{sha}",
                data=data,
                headers={"Content-Type": "application/octet-stream"},
                timeout=CHUNK_TIMEOUT,
            )
            result.bytes_sent += len(data)
            result.seconds += time.monotonic() - started
            started = time.monotonic()
            have += len(data)
            if progress:
                progress(have, pkg.size)
            if on_chunk:
                on_chunk(f, i)
    finally:
        if nxt is not None:
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)
    final = await client.call("POST", f"/v1/models/uploads/{pkg.id}/finish", timeout=FINISH_TIMEOUT)
    result.model = dict(final.get("model") or {})
    return True


def _span(pkg: ModelPackage, chunk_size: int, file: int, index: int) -> tuple[int, int]:
    offset = index * chunk_size
    return offset, max(0, min(chunk_size, pkg.files[file].size - offset))


def _read(pkg: ModelPackage, chunk_size: int, file: int, index: int) -> tuple[bytes, str]:
    offset, length = _span(pkg, chunk_size, file, index)
    with pkg.files[file].path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    if len(data) != length:
        raise PushError(f"{pkg.files[file].path} changed while it was being pushed", "changed")
    return data, hashlib.sha256(data).hexdigest()


__all__ = ["DEFAULT_CHUNK", "ModelPackage", "PushError", "PushResult", "package", "push_model"]
