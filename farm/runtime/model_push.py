"""Push one model to one node in chunks that survive a dropped connection or a node restart.

The node says which chunks it still needs (``POST /v1/models/uploads``); each chunk goes with its
sha256 in the path and is checked before the node records it; ``finish`` makes the node hash each
file whole and load the model before it offers it. When the node stops answering mid-push, the
push waits for it (``retry_for`` seconds) and asks again what is missing: the node keeps what
arrived of a chunk cut short, and the push sends only the rest of it (farm/core/push_resume.py).
Chunks go one after another on one connection while the next one is read, so the link stays busy
(docs/protocol.md, "Pushing a model").
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import aiohttp

from farm.core.push_resume import Stream, bytes_held, chunk_span, streams
from farm.engines.catalogue import ModelIndex, classify
from farm.engines.model_ids import manifest_id
from farm.errors import FarmError
from farm.runtime.client import NodeClient, NodeRejected, NodeUnavailable

log = logging.getLogger(__name__)

DEFAULT_CHUNK = 16 << 20
#: A chunk goes to the connection in slices this big: a TLS transport encrypts what it is given in one
#: go on the loop, and a whole 16 MiB chunk at once held the loop long enough for the socket's buffer
#: to run dry (the link idled while the next chunk was encrypted).
WRITE_SLICE = 1 << 20
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
    chunks: tuple[str, ...] = ()  # each chunk's sha256, at the package's chunk size


@dataclass(frozen=True, slots=True)
class ModelPackage:
    """A local model ready to push: its content id and its files with their hashes."""

    name: str
    id: str
    kind: str
    files: tuple[PushFile, ...]
    chunk_size: int = DEFAULT_CHUNK

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def manifest(self, chunk_size: int | None = None) -> dict[str, object]:
        """The announcement; chunk hashes go with it at the package's own chunk size."""
        size = chunk_size or self.chunk_size
        return {
            "name": self.name,
            "id": self.id,
            "chunk_size": size,
            "files": [
                {
                    "path": f.wire,
                    "size": f.size,
                    "sha256": f.sha256,
                    **({"chunks": list(f.chunks)} if f.chunks and size == self.chunk_size else {}),
                }
                for f in self.files
            ],
        }


def package(path: Path, index: ModelIndex | None = None, chunk_size: int = DEFAULT_CHUNK) -> ModelPackage:
    """Hash a model file or diffusers folder for a push, whole and chunk by chunk (blocking; a file's
    hashes are cached by the index, so a second push of the same file reads nothing)."""
    model = classify(path)
    if model is None or model.kind == "unknown" or model.note:
        why = model.note if model is not None and model.note else "not a model file or diffusers folder"
        raise PushError(f"{path}: {why}", "not_a_model")
    if path.is_file():
        index = index or ModelIndex()
        cached, key = index.get(model), f"chunks_{chunk_size}"
        sha, chunks = cached.get("sha256"), cached.get(key)
        if not isinstance(sha, str) or not isinstance(chunks, list):
            sha, chunks = hash_chunks(path, chunk_size)
            index.put(model, sha256=sha, **{key: chunks})
            with contextlib.suppress(OSError, FarmError):  # a read-only cache costs only speed next time
                index.save()
        only = PushFile(model.name, path, model.size_bytes, sha, tuple(chunks))
        return ModelPackage(model.name, sha, model.kind, (only,), chunk_size)
    files = []
    for file in sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.relative_to(path).parts):
        rel = file.relative_to(path).as_posix()
        sha, chunks = hash_chunks(file, chunk_size)
        files.append(PushFile(f"{model.name}/{rel}", file, file.stat().st_size, sha, tuple(chunks)))
    model_id = manifest_id((f.wire.removeprefix(model.name + "/"), f.sha256) for f in files)
    return ModelPackage(model.name, model_id, model.kind, tuple(files), chunk_size)


def hash_chunks(path: Path, chunk_size: int) -> tuple[str, list[str]]:
    """The file's sha256 and each chunk's, in one read."""
    whole = hashlib.sha256()
    chunks = []
    with path.open("rb") as fh:
        for _ in range(max(1, -(-path.stat().st_size // chunk_size))):
            block = fh.read(chunk_size)
            whole.update(block)
            chunks.append(hashlib.sha256(block).hexdigest())
    return whole.hexdigest(), chunks


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
    resent: int = 0  # of those, chunks sent before (cut short by a drop or a restart; maybe only their rest)
    bytes_sent: int = 0  # chunk bytes written to the connection (beyond ``size``: sent twice, or lost on the way)
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
    chunk_size: int | None = None,
    progress: Progress | None = None,
    retry_for: float = 60.0,
    on_chunk: Callable[[int, int], None] | None = None,
) -> PushResult:
    """Push ``pkg`` to the node behind ``client``; PushError when it refuses, NodeUnavailable when it
    stayed away longer than ``retry_for`` seconds. ``chunk_size`` other than the package's rehashes
    the chunks first; ``on_chunk(file, index)`` is called as each chunk is handed to the connection."""
    if chunk_size is not None and chunk_size != pkg.chunk_size:
        pkg = await asyncio.to_thread(rechunk, pkg, chunk_size)
    result = PushResult(client.base_url, pkg.name, pkg.id, pkg.size)
    sent: set[tuple[int, int]] = set()
    waited_since: float | None = None
    delay = 0.2
    moved = 0
    while True:
        try:
            await _attempt(client, pkg, result, sent, progress, on_chunk)
            return result
        except NodeRejected as exc:
            if exc.code != "offset_mismatch" or moved >= 3:
                raise PushError(str(exc), exc.code, result) from None
            moved += 1  # what the node kept changed since it said (another push of it): ask again
        except NodeUnavailable as exc:
            now = time.monotonic()
            waited_since = waited_since if waited_since is not None else now
            if now - waited_since > retry_for:
                raise
            result.restarts += 1
            log.info("%s: push of %s paused (%s); resuming", client.base_url, pkg.name, exc.reason)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def rechunk(pkg: ModelPackage, chunk_size: int) -> ModelPackage:
    """The package with its chunk hashes taken at another chunk size (blocking)."""
    files = tuple(replace(f, chunks=tuple(hash_chunks(f.path, chunk_size)[1])) for f in pkg.files)
    return replace(pkg, files=files, chunk_size=chunk_size)


async def _attempt(
    client: NodeClient,
    pkg: ModelPackage,
    result: PushResult,
    sent: set[tuple[int, int]],
    progress: Progress | None,
    on_chunk: Callable[[int, int], None] | None,
) -> None:
    """Announce, send what the node lacks (each file in one streamed body from its first missing chunk),
    finish. Raises NodeUnavailable when the node goes away, to be resumed."""
    state = await client.call("POST", "/v1/models/uploads", json=pkg.manifest())
    if state.get("state") == "installed":
        result.already = not result.sent
        result.model = dict(state.get("model") or {})
        if progress:
            progress(pkg.size, pkg.size)
        return
    result.chunks = int(state.get("chunks") or 0)
    sizes = [f.size for f in pkg.files]
    missing = [(int(f), int(i)) for f, i in state.get("missing") or []]
    plan = streams(sizes, pkg.chunk_size, missing, state.get("partial") or [])
    meter = _Meter(pkg, result, sent, progress, on_chunk)
    meter.have = bytes_held(sizes, pkg.chunk_size, missing, plan)
    meter.report()
    for stream in plan:
        query = f"?offset={stream.skip}" if stream.skip else ""
        started = time.monotonic()
        await client.call(
            "PUT",
            f"/v1/models/uploads/{pkg.id}/stream/{stream.file}/{stream.first}{query}",
            data=_body(pkg, stream, meter),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(stream.length)},
            timeout=CHUNK_TIMEOUT,
        )
        result.seconds += time.monotonic() - started
    final = await client.call("POST", f"/v1/models/uploads/{pkg.id}/finish", timeout=FINISH_TIMEOUT)
    result.model = dict(final.get("model") or {})


class _Meter:
    """Counts what a push hands to the connection: chunks sent (twice: ``resent``), bytes, progress."""

    def __init__(
        self,
        pkg: ModelPackage,
        result: PushResult,
        sent: set[tuple[int, int]],
        progress: Progress | None,
        on_chunk: Callable[[int, int], None] | None,
    ) -> None:
        self.pkg, self.result, self.sent = pkg, result, sent
        self.progress, self.on_chunk = progress, on_chunk
        self.have = 0

    def report(self) -> None:
        if self.progress:
            self.progress(min(self.have, self.pkg.size), self.pkg.size)

    def starting(self, f: int, i: int) -> None:
        """A chunk is about to go: it counts as sent (twice, if an earlier attempt sent it too)."""
        if (f, i) in self.sent:
            self.result.resent += 1
        self.sent.add((f, i))
        self.result.sent += 1

    def wrote(self, size: int) -> None:
        """A slice of a chunk is written to the connection."""
        self.result.bytes_sent += size
        self.have += size
        self.report()

    def handed(self, f: int, i: int) -> None:
        """A chunk is written to the connection, all of it."""
        if self.on_chunk:
            self.on_chunk(f, i)


async def _body(pkg: ModelPackage, stream: Stream, meter: _Meter) -> AsyncIterator[memoryview]:
    """A file's chunks from byte ``skip`` of chunk ``first`` to its end, each read in a thread while the one
    before travels."""
    f, first = stream.file, stream.first
    count = max(1, -(-pkg.files[f].size // pkg.chunk_size))
    nxt: asyncio.Future[bytes] | None = asyncio.ensure_future(asyncio.to_thread(_read, pkg, f, first))
    try:
        for i in range(first, count):
            assert nxt is not None
            data = await nxt
            nxt = asyncio.ensure_future(asyncio.to_thread(_read, pkg, f, i + 1)) if i + 1 < count else None
            meter.starting(f, i)
            view = memoryview(data)[stream.skip if i == first else 0 :]
            for at in range(0, len(view), WRITE_SLICE):  # see WRITE_SLICE
                piece = view[at : at + WRITE_SLICE]
                yield piece
                meter.wrote(len(piece))
            meter.handed(f, i)
    finally:
        if nxt is not None:
            nxt.cancel()
            await asyncio.gather(nxt, return_exceptions=True)


def _read(pkg: ModelPackage, file: int, index: int) -> bytes:
    offset, length = chunk_span(pkg.files[file].size, pkg.chunk_size, index)
    with pkg.files[file].path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(length)
    if len(data) != length:
        raise PushError(f"{pkg.files[file].path} changed while it was being pushed", "changed")
    return data


__all__ = ["DEFAULT_CHUNK", "ModelPackage", "PushError", "PushResult", "package", "push_model"]
