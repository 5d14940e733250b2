"""What the farm measured in earlier batches, kept for the next one (pure: no files; time passed in).

A node's engine speed and link rate are known only once a job has run there. A farm that starts from
nothing sends a node's first input whole (its upload measures the link), queues no job ahead on a node
until something is timed, and cannot weigh transfers yet. A small batch pays for it most: 3 photos beside
two nodes 8x slower than this PC end 25 % later than this PC alone would, the nodes' jobs backed up once
they are found slow (``bench/remembered_start.py``). The figures of earlier batches stand in until this
batch's first timings replace them (:meth:`farm.core.scheduler.Scheduler.recall`):

- each worker's seconds per megapixel, per edit (:func:`edit_key`: the engine, its model and params, and
  the HD strategy; another edit is another figure);
- each node's link rate, per address (the same PC on Wi-Fi, or moved, is another link).

Not this PC's cost of cutting crops for nodes: timed on the clock, it says how busy this PC's cores were
at the end of the last batch more than what a cut takes, and recalled at the start of the next one it
sent whole photos over a 100 Mbit/s link that crops would have crossed sooner (the LAN lab, 2 cores).

A figure older than ``MAX_AGE`` is forgotten; so is anything of a shape this version does not know.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from farm.core.spec import EditSpec

VERSION = 1
MAX_AGE = 30 * 24 * 3600.0  # seconds: a month-old figure says little about today's PC or network
#: Figures kept per worker (the newest): a farm used for many kinds of edit does not grow without end.
MAX_PER_WORKER = 32

Figures = dict[str, tuple[float, float]]  # key -> (value, when measured: seconds since the epoch)


def edit_key(spec: EditSpec) -> str:
    """What a speed figure is for: the same engine with other params (steps, a model) is another speed."""
    what = {"engine": spec.engine, "model": spec.model_id or spec.model, "params": dict(spec.params)}
    return json.dumps({**what, "hd": spec.hd.to_dict()}, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(slots=True)
class Remembered:
    """Worker id -> its figures: ``speeds`` by :func:`edit_key`, ``links`` by the node's host."""

    speeds: dict[str, Figures] = field(default_factory=dict)
    links: dict[str, Figures] = field(default_factory=dict)

    def speed(self, worker_id: str, key: str, now: float) -> float | None:
        return _fresh(self.speeds.get(worker_id, {}).get(key), now)

    def link(self, worker_id: str, host: str, now: float) -> float | None:
        return _fresh(self.links.get(worker_id, {}).get(host), now)

    def note_speed(self, worker_id: str, key: str, seconds_per_mp: float, now: float) -> None:
        _note(self.speeds.setdefault(worker_id, {}), key, seconds_per_mp, now)

    def note_link(self, worker_id: str, host: str, rate: float, now: float) -> None:
        _note(self.links.setdefault(worker_id, {}), host, rate, now)

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON form, without the figures that are too old by ``now``."""

        def live(table: Mapping[str, Figures]) -> dict[str, dict[str, list[float]]]:
            out = {w: {k: [v, t] for k, (v, t) in figs.items() if _fresh((v, t), now)} for w, figs in table.items()}
            return {w: figs for w, figs in out.items() if figs}

        return {"version": VERSION, "speeds": live(self.speeds), "links": live(self.links)}

    @classmethod
    def from_dict(cls, data: object) -> Remembered:
        """The inverse of :meth:`to_dict`; whatever is not of the known shape is left out (never an error:
        these are hints, and a farm without them only starts slower)."""
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return cls()
        return cls(speeds=_table(data.get("speeds")), links=_table(data.get("links")))


def _usable(value: float) -> bool:
    return isinstance(value, float | int) and math.isfinite(value) and value > 0


def _fresh(entry: tuple[float, float] | None, now: float) -> float | None:
    if entry is None:
        return None
    value, when = entry
    return value if 0 <= now - when <= MAX_AGE else None


def _note(figures: Figures, key: str, value: float, now: float) -> None:
    if not _usable(value):
        return
    figures.pop(key, None)  # the newest last: the oldest go first past MAX_PER_WORKER
    figures[key] = (float(value), now)
    while len(figures) > MAX_PER_WORKER:
        del figures[next(iter(figures))]


def _pair(item: object) -> tuple[float, float] | None:
    if isinstance(item, list) and len(item) == 2 and all(isinstance(v, float | int) for v in item):
        value, when = float(item[0]), float(item[1])
        if _usable(value) and math.isfinite(when):
            return value, when
    return None


def _table(data: object) -> dict[str, Figures]:
    if not isinstance(data, dict):
        return {}
    out: dict[str, Figures] = {}
    for worker_id, figures in data.items():
        if not isinstance(worker_id, str) or not isinstance(figures, dict):
            continue
        kept = {k: pair for k, v in figures.items() if isinstance(k, str) and (pair := _pair(v)) is not None}
        if kept:
            out[worker_id] = dict(list(kept.items())[-MAX_PER_WORKER:])
    return out
