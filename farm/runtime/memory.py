"""The farm's memory at work: what earlier batches measured goes to the scheduler as this batch starts,
and what this batch measures is kept for the next (the figures: :mod:`farm.core.remembered`; the file:
:mod:`farm.local.measurements`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from farm.core.remembered import Remembered, edit_key
from farm.core.scheduler import Scheduler
from farm.core.spec import EditSpec


class FarmMemory:
    """Recalls figures into ``scheduler`` and notes the measured ones back."""

    def __init__(self, scheduler: Scheduler, remembered: Remembered, wall: Callable[[], float] = time.time) -> None:
        self.scheduler = scheduler
        self.remembered = remembered
        self.wall = wall
        self._keys: dict[str, str] = {}  # engine -> the edit key of the latest edit queued with it
        self._hosts: dict[str, str] = {}  # worker id -> its host ("" for this PC, which has no link)

    def worker_added(self, worker_id: str, host: str) -> bool:
        """A worker joined: its link rate to this host, and its speed for the edits queued so far. True if
        any figure was recalled (the queue may then be placed anew)."""
        self._hosts[worker_id] = host
        now = self.wall()
        rate = self.remembered.link(worker_id, host, now) if host else None
        recalled = rate is not None and self.scheduler.recall_link(worker_id, rate)
        for engine, key in self._keys.items():
            recalled = self._recall_speed(worker_id, engine, key, now) or recalled
        return recalled

    def edits_queued(self, specs: Iterable[EditSpec]) -> None:
        """Jobs of these edits were queued: every worker's speed for a new edit, where it is remembered."""
        now = self.wall()
        for spec in {s.engine: s for s in specs}.values():
            key = edit_key(spec)
            if self._keys.get(spec.engine) == key:
                continue
            self._keys[spec.engine] = key
            for worker_id in self._hosts:
                self._recall_speed(worker_id, spec.engine, key, now)

    def keep(self) -> Remembered:
        """Note what the scheduler has timed so far (under the latest edit queued with each engine)."""
        now = self.wall()
        for worker_id, host in self._hosts.items():
            speeds, rate = self.scheduler.measured(worker_id)
            for engine, seconds_per_mp in speeds.items():
                key = self._keys.get(engine)
                if key is not None:
                    self.remembered.note_speed(worker_id, key, seconds_per_mp, now)
            if rate is not None and host:
                self.remembered.note_link(worker_id, host, rate, now)
        return self.remembered

    def _recall_speed(self, worker_id: str, engine: str, key: str, now: float) -> bool:
        seconds_per_mp = self.remembered.speed(worker_id, key, now)
        return seconds_per_mp is not None and self.scheduler.recall(worker_id, engine, seconds_per_mp)
