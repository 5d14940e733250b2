"""Content-addressed blob cache on disk: atomic writes, a byte budget, LRU eviction that spares pinned blobs.

Bookkeeping (sizes, LRU order, pins) lives on the event loop; file I/O happens in worker threads.

Nothing here is fsynced. Every blob is a cache entry that can be made again: an upload is checked
against its SHA-256 before it is renamed into place (a crash leaves at most a ``.part`` file, dropped
at the next start) and the farm uploads it again if the node lost it; a result is re-computable (the
farm runs a job again when its node answers 404 for the result). Durability would cost a disk flush
per blob (milliseconds per MB) for nothing.

What eviction spares, when the cache is over its budget:

- blobs pinned as the input of a queued or running job;
- blobs used less than ``grace`` seconds ago: an upload (or a PUT/HEAD that found the blob here) and
  the job's POST that follows it, a result and the farm's GET that follows it;
- results held for their retention time, as long as held results take at most ``result_share`` of
  the budget; beyond that the oldest results go first (GET result then answers 404 "evicted").
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

from farm.errors import EngineError
from farm.local.files import sha256_hex, write_atomic
from node.errors import HashMismatch, Invalid, TooLarge

log = logging.getLogger(__name__)

#: Runs a blocking call off the loop: ``await run_io(fn, *args)``.
RunIO = Callable[..., Awaitable[Any]]

SHA256_RE = re.compile(r"[0-9a-f]{64}")  # whole names only: used with fullmatch
CHUNK = 1 << 20
#: The node's grace period: a blob used this recently (uploaded, found by a PUT/HEAD, or a fresh result)
#: is not evicted, so the job POST or result GET that follows finds it.
GRACE = 60.0


def check_sha(text: str) -> str:
    """A lower-case hex SHA-256, or Invalid."""
    sha = text.lower()
    if not SHA256_RE.fullmatch(sha):
        raise Invalid("a blob name is the 64-character hex SHA-256 of its bytes")
    return sha


class BlobStore:
    """Blobs named by their SHA-256 in ``folder``; at most ``budget`` bytes unless pinned or fresh blobs need more.

    ``clock`` (seconds; any origin) dates uses for the grace period ``grace`` (0: plain LRU; the node
    uses :data:`GRACE`).
    """

    def __init__(
        self,
        folder: Path,
        *,
        budget: int,
        max_size: int,
        clock: Callable[[], float] = time.monotonic,
        grace: float = 0.0,
        result_share: float = 0.5,
    ) -> None:
        self.folder = folder
        self.budget = budget
        self.max_size = max_size
        self.clock = clock
        self.grace = grace
        self.result_share = result_share
        self._sizes: OrderedDict[str, int] = OrderedDict()  # least recently used first
        self._total = 0
        self._pins: Counter[str] = Counter()  # inputs of active jobs: never evicted
        self._held: OrderedDict[str, int] = OrderedDict()  # results kept for retention, oldest first
        self._used: dict[str, float] = {}  # last use, while it may still be within the grace period
        folder.mkdir(parents=True, exist_ok=True)
        self._scan()

    def _scan(self) -> None:
        found = []
        for entry in os.scandir(self.folder):
            if entry.name.endswith(".part"):
                os.unlink(entry.path)  # a write cut short by a crash
            elif SHA256_RE.fullmatch(entry.name):
                st = entry.stat()
                found.append((st.st_mtime, entry.name, st.st_size))
        for _mtime, name, size in sorted(found):
            self._sizes[name] = size
            self._total += size

    @property
    def total(self) -> int:
        return self._total

    @property
    def held_total(self) -> int:
        """Bytes of results held for retention."""
        return sum(self._sizes.get(sha, 0) for sha in self._held)

    def __len__(self) -> int:
        return len(self._sizes)

    def __contains__(self, sha: object) -> bool:
        return sha in self._sizes

    def path(self, sha: str) -> Path:
        return self.folder / sha

    def has(self, sha: str) -> bool:
        """Whether the blob is here; a hit counts as a use (LRU, and the grace period starts again)."""
        if sha in self._sizes:
            self._sizes.move_to_end(sha)
            self._used[sha] = self.clock()
            return True
        return False

    def discard(self, sha: str) -> None:
        """Forget a blob whose file is gone or damaged (a later upload stores it afresh)."""
        if sha in self._sizes:
            self._drop(sha, [])

    def size(self, sha: str) -> int:
        return self._sizes[sha]

    def pin(self, shas: Iterable[str]) -> None:
        """Keep these (a job's inputs) until unpinned, whatever the budget."""
        for sha in shas:
            self._pins[sha] += 1

    def unpin(self, shas: Iterable[str]) -> None:
        for sha in shas:
            self._pins[sha] -= 1
            if self._pins[sha] <= 0:
                del self._pins[sha]

    def pinned(self, sha: str) -> bool:
        """Pinned as an input, or held as a result."""
        return self._pins[sha] > 0 or sha in self._held

    def added(self, sha: str, size: int) -> None:
        """Record a blob written to ``path(sha)`` (by :meth:`receive` or :func:`write_blob`), then evict."""
        self._total += size - self._sizes.get(sha, 0)
        self._sizes[sha] = size
        self._sizes.move_to_end(sha)
        self._used[sha] = self.clock()
        self.evict()

    def add_result(self, sha: str, size: int) -> None:
        """Record a job's result (written by :func:`write_blob`) and hold it until :meth:`release_result`."""
        self._held[sha] = self._held.get(sha, 0) + 1
        self._held.move_to_end(sha)
        self.added(sha, size)

    def release_result(self, sha: str) -> None:
        """A job no longer needs its result kept (retention over); a result already evicted is fine."""
        holds = self._held.get(sha)
        if holds is None:
            return
        if holds <= 1:
            del self._held[sha]
        else:
            self._held[sha] = holds - 1

    def evict(self, now: float | None = None) -> list[str]:
        """Bring the cache within its budget as far as the rules allow; return the names dropped.

        First least recently used blobs that are neither pinned, held nor fresh; then, while held
        results take more than ``result_share`` of the budget, the oldest held results that are not
        fresh and not a job's input.
        """
        now = self.clock() if now is None else now
        self._used = {sha: t for sha, t in self._used.items() if now - t < self.grace and sha in self._sizes}
        gone: list[str] = []
        if self._total <= self.budget:
            return gone
        for sha in list(self._sizes):
            if self._total <= self.budget:
                break
            if not self._pins[sha] and sha not in self._held and sha not in self._used:
                self._drop(sha, gone)
        if self._total > self.budget and self._held:
            held = self.held_total
            cap = self.budget * self.result_share
            for sha in list(self._held):
                if self._total <= self.budget or held <= cap:
                    break
                if not self._pins[sha] and sha not in self._used and sha in self._sizes:
                    held -= self._sizes[sha]
                    del self._held[sha]
                    self._drop(sha, gone)
        if gone:
            log.debug("evicted %d blobs", len(gone))
        return gone

    def _drop(self, sha: str, gone: list[str]) -> None:
        self._total -= self._sizes.pop(sha)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(sha))
        gone.append(sha)

    async def receive(self, sha: str, chunks: AsyncIterator[bytes], *, declared: int | None, run_io: RunIO) -> int:
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
            await run_io(fh.close)  # no fsync: see the module's docstring
            got = digest.hexdigest()
            if got != sha:
                raise HashMismatch(
                    f"the bytes sent hash to {got}, not {sha}; the upload was corrupted or the name is wrong"
                )
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
        return (
            f"upload is {what} {limit:g} MB, this node's limit; raise it with --max-upload-mb if you trust the senders"
        )


def _write_hashed(fh: BinaryIO, digest: Any, chunk: bytes) -> None:
    digest.update(chunk)
    fh.write(chunk)


def _unlink_quiet(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def write_blob(folder: Path, data: bytes) -> str:
    """Write ``data`` atomically as a blob in ``folder`` (any thread); return its SHA-256.

    Not fsynced: results are re-computable (see the module's docstring).
    """
    sha = sha256_hex(data)
    path = folder / sha
    if not path.exists():
        write_atomic(path, data, overwrite=True)
    return sha


class DamagedBlob(EngineError):
    """A stored blob's bytes no longer hash to its name (a write cut short by a crash, a bad disk).

    This node's fault, not the job's: the blob is dropped, so the farm's next upload repairs it.
    """

    def __init__(self, sha: str) -> None:
        super().__init__(f"the stored blob {sha[:12]}... was damaged on this node's disk; upload it again")
        self.sha = sha


def read_blob(folder: Path, sha: str) -> bytes:
    """A blob's bytes, checked against its name (any thread); DamagedBlob (file removed) if they differ."""
    path = folder / sha
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha:
        _unlink_quiet(path)
        raise DamagedBlob(sha)
    return data
