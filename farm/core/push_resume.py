"""Where a model push resumes, pure: from what the node says it still needs, the streams to send.

A node answers an upload's state with the chunks it still needs (``missing``: ``[file, chunk]``) and the
bytes it kept of unfinished ones (``partial``: ``[file, chunk, bytes]``, the first so many bytes of that
chunk are on its disk). Each file with missing chunks goes in one stream from its first missing chunk
to its end, starting at the byte the node kept of that chunk: a cut push re-sends only what was still
on its way (docs/protocol.md, "Pushing a model").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Stream:
    """One body to send: file ``file`` from byte ``skip`` of chunk ``first`` to the file's end."""

    file: int
    first: int
    skip: int
    start: int  # the file's byte the body starts at
    length: int  # bytes in the body


def chunk_span(size: int, chunk_size: int, index: int) -> tuple[int, int]:
    """(offset, length) of chunk ``index`` of a file of ``size`` bytes."""
    offset = index * chunk_size
    return offset, max(0, min(chunk_size, size - offset))


def streams(
    sizes: Sequence[int],
    chunk_size: int,
    missing: Sequence[Sequence[int]],
    partial: Sequence[Sequence[int]] = (),
) -> list[Stream]:
    """The streams that complete an upload, in file order. A ``partial`` entry counts only for the first
    missing chunk of its file (the one a stream can start inside) and only within that chunk."""
    firsts: dict[int, int] = {}
    for f, i in sorted((int(f), int(i)) for f, i in missing):
        firsts.setdefault(f, i)
    kept = {(int(f), int(i)): int(n) for f, i, n in partial}
    out = []
    for f, first in firsts.items():
        offset, length = chunk_span(sizes[f], chunk_size, first)
        skip = kept.get((f, first), 0)
        skip = skip if 0 < skip < length else 0
        out.append(Stream(f, first, skip, offset + skip, max(0, sizes[f] - offset - skip)))
    return out


def bytes_held(sizes: Sequence[int], chunk_size: int, missing: Sequence[Sequence[int]], plan: Sequence[Stream]) -> int:
    """What the node has of the upload: all but the missing chunks, plus the kept prefixes the plan skips."""
    lacking = sum(chunk_span(sizes[int(f)], chunk_size, int(i))[1] for f, i in missing)
    return sum(sizes) - lacking + sum(s.skip for s in plan)
