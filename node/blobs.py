"""Content-addressed blob cache on disk: atomic writes, a byte budget, LRU eviction that spares pinned blobs.

Bookkeeping (sizes, LRU order, pins) lives on the event loop; file I/O happens in worker threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from node.errors import HashMismatch, Invalid, TooLarge

log = logging.getLogger(__name__)

#: Runs a blocking call off the loop: ``await run_io(fn, *args)``.
RunIO = Callable[..., Awaitable[Any]]

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1 << 20


def check_sha(text: str) -> str:
    """A lower-case hex SHA-256, or Invalid."""
    sha = text.lower()
    if not SHA256_RE.match(sha):
        raise Invalid("a blob name is the 64-character hex SHA-256 of its bytes")
    return sha


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Blobs named by their SHA-256 in ``folder``; at most ``budget`` bytes unless pinned blobs need more."""

    def __init__(self, folder: Path, *, budget: int, max_size: int) -> None:
        self.folder = folder
        self.budget = budget
        self.max_size = max_size
        self._sizes: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._pins: Counter[str] = Counter()
        folder.mkdir(parents=True, exist_ok=True)
        self._scan()

    def _scan(self) -> None:
        found = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(".part"):
                os.unlink(entry.path)  # a write cut short by a crash
            elif SHA256_RE.match(entry.name):
                st = entry.stat()
                found.append((st.st_mtime, entry.name, st.st_size))
        for _mtime, name, size in sorted(found):
            self._sizes[name] = size

    @property
    def total(self) -> int:
        return sum(self._sizes.values())

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, sha: object) -> bool:
        return sha in self._sizes

    def path(self, sha: str) -> Path:
        return self.folder / sha

    def has(self, sha: str) -> bool:
        """Whether the blob is here; a hit counts as a use."""
        if sha in self._sizes:
            self._sizes.move_to_end(sha)
            return True
        return False

    def size(self, sha: str) -> int:
        return self._sizes[sha]

    def pin(self, shas: Iterable[str]) -> None:
        for sha in shas:
            self._pins[sha] += 1

    def unpin(self, shas: Iterable[str]) -> None:
        for sha in shas:
            self._pins[sha] -= 1
            if self._pins[sha] <= 0:
                del self._pins[sha]

    def pinned(self, sha: str) -> bool:
        return self._pins[sha] > 0

    def added(self, sha: str, size: int) -> None:
        """Record a blob written to ``path(sha)`` (by :meth:`receive` or :func:`write_blob`), then evict."""
        self._sizes[sha] = size
        self._sizes.move_to_end(sha)
        self.evict()

    def evict(self) -> list[str]:
        """Drop least recently used unpinned blobs until the budget holds; return their names."""
        gone: list[str] = []
        total = self.total
        for sha in list(self._sizes):
            if total <= self.budget:
                break
            if self.pinned(sha):
                continue
            total -= self._sizes.pop(sha)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(sha))
            gone.append(sha)
        if gone:
            log.debug("evicted %d blobs", len(gone))
        return gone

    async def receive(self, sha: str, chunks: AsyncIterator[bytes], *, declared: int | None,
                      run_io: RunIO) -> int:
        """Stream a body into the store, checking size as it comes and the hash at the end.

        ``declared`` (Content-Length) over the limit is refused before a byte is read.
        """
        if declared is not None and declared > self.max_size:
            raise TooLarge(self._too_large(declared))
        tmp = self.folder / f".{sha}.{os.getpid()}.{os.urandom(4).hex()}.part"
        fh = await run_io(open, tmp, "xb")
        digest = hashlib.sha256()
        size = 0
        ok = False
        pending: list[bytes] = []
        buffered = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_size:
                    raise TooLarge(self._too_large(size, streaming=True))
                pending.append(chunk)
                buffered += len(chunk)
                if buffered >= CHUNK:  # one thread hop per MB, not per network read
                    await run_io(_write_hashed, fh, digest, b"".join(pending))
                    pending, buffered = [], 0
            await run_io(_write_hashed, fh, digest, b"".join(pending))
            await run_io(_close_synced, fh)
            got = digest.hexdigest()
            if got != sha:
                raise HashMismatch(f"the bytes sent hash to {got}, not {sha}; the upload was corrupted "
                                   "or the name is wrong")
            await run_io(os.replace, tmp, self.path(sha))
            ok = True
        finally:
            if not fh.closed:
                await run_io(fh.close)
            if not ok:
                await run_io(_unlink_quiet, tmp)
        self.added(sha, size)
        return size

    def _too_large(self, size: int, *, streaming: bool = False) -> str:
        limit = self.max_size / (1 << 20)
        what = "more than" if streaming else f"{size / (1 << 20):.1f} MB,"
        return (f"upload is {what} {limit:g} MB, this node's limit; raise it with --max-upload-mb "
                "if you trust the senders")


def _write_hashed(fh: BinaryIO, digest: Any, chunk: bytes) -> None:
    digest.update(chunk)
    fh.write(chunk)


def _close_synced(fh: BinaryIO) -> None:
    fh.flush()
    os.fsync(fh.fileno())
    fh.close()


def _unlink_quiet(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_blob(folder: Path, data: bytes) -> str:
    """Write ``data`` atomically as a blob in ``folder`` (any thread); return its SHA-256."""
    sha = sha256_hex(data)
    path = folder / sha
    if not path.exists():
        tmp = folder / f".{sha}.{os.getpid()}.{os.urandom(4).hex()}.part"
        try:
            with open(tmp, "xb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        finally:
            _unlink_quiet(tmp)
    return sha


def read_blob(folder: Path, sha: str) -> bytes:
    return (folder / sha).read_bytes()
