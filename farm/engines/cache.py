"""Loaded engines kept between jobs, least recently used out first when a memory cap is passed."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable

from farm.engines.base import Engine


class ModelCache:
    """Engines by key. With ``cap_mb``, the sum of their descriptors' ``memory_mb`` stays under it
    (one engine bigger than the cap is still kept: the job that asked for it must run)."""

    def __init__(self, cap_mb: int | None = None) -> None:
        self.cap_mb = cap_mb
        self._engines: OrderedDict[Hashable, Engine] = OrderedDict()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._engines

    def __len__(self) -> int:
        return len(self._engines)

    @property
    def used_mb(self) -> int:
        return sum(e.descriptor.memory_mb for e in self._engines.values())

    def get_or_load(self, key: Hashable, load: Callable[[], Engine], expected_mb: int = 0) -> Engine:
        """The engine for ``key``, loading it (after making room for ``expected_mb``) if absent."""
        engine = self._engines.get(key)
        if engine is not None:
            self._engines.move_to_end(key)
            return engine
        self._evict(expected_mb)
        engine = load()
        self._engines[key] = engine
        self._evict(0, keep=key)
        return engine

    def devices(self, keys: Callable[[Hashable], bool]) -> set[str]:
        """The devices the loaded engines whose key matches run on (from a snapshot: safe without the
        registry's lock, which a thread loading a model holds for seconds)."""
        loaded = list(self._engines.items())  # one C-level copy under the GIL
        return {d for key, engine in loaded if keys(key) for d in engine.descriptor.devices}

    def drop(self, keys: Callable[[Hashable], bool]) -> None:
        """Forget the engines whose key matches (their model file changed or went away)."""
        for key in [k for k in self._engines if keys(k)]:
            del self._engines[key]

    def _evict(self, incoming_mb: int, keep: Hashable = None) -> None:
        if self.cap_mb is None:
            return
        # Dropping the reference frees the weights once no running job still holds the engine.
        while self.used_mb + incoming_mb > self.cap_mb:
            victim = next((k for k in self._engines if k != keep), None)
            if victim is None:
                return
            del self._engines[victim]
