"""Whether one big edit is worth cutting into tiles for several workers, and into how many.

Pure arithmetic on what the farm knows: the job's size, each capable worker's measured engine speed
(seconds per input megapixel; unknown ones borrow the others' or a prior) and link rate, and how much
other work is queued. Splitting pays when the tiles, spread over the workers with each tile's transfer
and fixed cost, end clearly sooner than the whole job on the single worker that would finish it first.
The tiles' end is estimated as the scheduler places them: each goes to the slot that would end it
first, so a slot too slow to help gets none. When the queue already holds a job for every worker, the
batch keeps them busy on its own and nothing is split.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

TILES_OFF = "off"
TILES_AUTO = "auto"
#: a guess of seconds per input megapixel while no worker has measured the engine (a 4x upscale on a
#: mid-range GPU; on a CPU it is far slower, which only makes splitting pay more)
PRIOR_SECONDS_PER_MP = 1.0
#: what each tile costs besides its engine time: a request, a cut and a paste here, a model warm-up share
TILE_OVERHEAD_SECONDS = 0.3
#: split only when the estimate drops below this share of the single-worker time
WORTH = 0.8
#: and only jobs that take at least this long in one piece (a short job is not worth the bookkeeping)
MIN_SECONDS = 4.0
TILES_PER_WORKER = 2  # a few more tiles than workers, so a slow or lost worker delays only a small part


@dataclass(frozen=True, slots=True)
class Candidate:
    """A worker that could run the tiles: its engine speed and link as measured (None: not yet)."""

    seconds_per_mp: float | None
    link_bytes_per_second: float | None = None  # None: this PC (nothing travels) or not measured
    local: bool = False
    slots: int = 1


def parse_tiles(text: str) -> str | int:
    """``auto``, ``off`` or a number of tiles (1 means off); raises ValueError for anything else."""
    value = text.strip().lower()
    if value in (TILES_AUTO, TILES_OFF):
        return value
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"--tiles takes auto, off or a number of tiles, not {text!r}") from None
    if not 1 <= count <= 1024:
        raise ValueError(f"--tiles takes 1 to 1024 tiles, not {count}")
    return count


def tile_count(
    setting: str | int,
    megapixels: float,
    transfer_bytes: float,
    candidates: Sequence[Candidate],
    *,
    max_tiles: int,
    queued_elsewhere: int = 0,
) -> int:
    """How many tiles to cut the job into (1: run it whole).

    ``transfer_bytes``: what the whole job moves to and from a node (input up, result down);
    ``max_tiles``: the most tiles the image allows (its size over the smallest tile);
    ``queued_elsewhere``: other jobs waiting for the same workers.
    """
    if setting == TILES_OFF or max_tiles < 2:
        return 1
    if isinstance(setting, int):
        return max(1, min(setting, max_tiles))
    workers = sum(max(1, c.slots) for c in candidates)
    if workers < 2 or queued_elsewhere + 1 >= len(candidates):  # a job for each PC keeps them all busy
        return 1
    speeds = _speeds(candidates)
    single = min(_one_piece(rate, c, megapixels, transfer_bytes) for rate, c in zip(speeds, candidates, strict=True))
    if single < MIN_SECONDS:
        return 1
    best, best_seconds = 1, WORTH * single
    for parts in sorted({min(max_tiles, k * workers) for k in range(1, TILES_PER_WORKER + 1)}):
        seconds = split_seconds(speeds, candidates, megapixels, transfer_bytes, parts)
        if seconds < best_seconds:
            best, best_seconds = parts, seconds
    return best


def split_seconds(
    speeds: Sequence[float], candidates: Sequence[Candidate], megapixels: float, transfer_bytes: float, parts: int
) -> float:
    """When ``parts`` equal tiles would all be done, each tile going to the slot that ends it first.

    A slot's tile time is its engine time plus the fixed cost per tile; on a node, the tile's bytes
    travel while the previous tile computes, so the slower of the two sets its pace.
    """
    per_tile_mp = megapixels / parts
    per_tile_bytes = transfer_bytes / parts
    slots: list[tuple[float, float]] = []  # (when it is free, seconds per tile)
    for rate, c in zip(speeds, candidates, strict=True):
        seconds = rate * per_tile_mp + TILE_OVERHEAD_SECONDS
        if not c.local and c.link_bytes_per_second:
            seconds = max(seconds, per_tile_bytes / c.link_bytes_per_second)
        slots += [(seconds, seconds)] * max(1, c.slots)
    heapq.heapify(slots)
    end = 0.0
    for _ in range(parts):
        free, step = heapq.heappop(slots)
        end = max(end, free)
        heapq.heappush(slots, (free + step, step))
    return end


def _one_piece(rate: float, c: Candidate, megapixels: float, transfer_bytes: float) -> float:
    travel = 0.0 if c.local or not c.link_bytes_per_second else transfer_bytes / c.link_bytes_per_second
    return rate * megapixels + travel


def _speeds(candidates: Sequence[Candidate]) -> list[float]:
    """Each candidate's seconds per megapixel; unmeasured ones take the median of the measured (or the prior)."""
    known = sorted(c.seconds_per_mp for c in candidates if c.seconds_per_mp)
    guess = known[len(known) // 2] if known else PRIOR_SECONDS_PER_MP
    return [c.seconds_per_mp or guess for c in candidates]
