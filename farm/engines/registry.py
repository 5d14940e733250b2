"""A registry of engine entries: descriptor + factory. Loaded engines stay loaded between jobs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamValue
from farm.core.spec import EditSpec
from farm.engines.base import Engine
from farm.engines.cache import ModelCache
from farm.errors import EngineError, SpecError


class _Named(Protocol):
    @property
    def name(self) -> str: ...


ModelT = TypeVar("ModelT", bound=_Named)
EngineFactory = Callable[[str | None], Engine]


def model_factory(
    descriptor: EngineDescriptor, models: Sequence[ModelT], build: Callable[[ModelT], Engine], what: str
) -> EngineFactory:
    """A factory that builds the engine for a model name (None: the first found), or says what is missing."""
    by_name = {m.name: m for m in models}

    def make(name: str | None) -> Engine:
        model = by_name.get(name or (descriptor.models[0] if descriptor.models else ""))
        if model is None:
            raise EngineError(descriptor.unavailable_reason or f"no {what} named {name!r}")
        return build(model)

    return make


@dataclass(frozen=True, slots=True)
class EngineEntry:
    """One engine kind: what it can do, and how to build (load) it for a model."""

    descriptor: EngineDescriptor
    factory: EngineFactory


#: Engines that need no AI library and no model (OpenCV). A registry of only these, and simulated ones, is lite.
OPENCV_ENGINE_IDS = frozenset({"cv2"})

#: Engine names as people type them: each engine is named after the method it edits with (one scheme),
#: id -> name. The ids (what nodes advertise, what the queue records) stay, and are accepted as aliases.
ENGINE_NAMES: dict[str, str] = {
    "cv2": "opencv",
    "lama": "lama",
    "upscale": "esrgan",
    "sd-inpaint": "stable-diffusion",
    "sim": "sim",
}
#: More spellings people use for them (IOPaint's model names among them): alias -> id.
ENGINE_ALIASES: dict[str, str] = {
    **{name: engine_id for engine_id, name in ENGINE_NAMES.items()},
    "realesrgan": "upscale",
    "sd": "sd-inpaint",
    "sd1.5": "sd-inpaint",
    "sdxl": "sd-inpaint",
}


def engine_name(engine_id: str) -> str:
    """The name an engine is shown with (its id when it has no other)."""
    return ENGINE_NAMES.get(engine_id, engine_id)


def engine_id(name: str) -> str:
    """The engine id a typed name means: a name, an old id or an alias (case-insensitive)."""
    key = name.strip().lower()
    return ENGINE_ALIASES.get(key, name.strip())


def _of_engine(engine_id: str) -> Callable[[Hashable], bool]:
    """Whether a loaded engine's key, (engine id, model), is one of ``engine_id``'s."""
    return lambda key: isinstance(key, tuple) and key[:1] == (engine_id,)


class Registry:
    """Engines by id. Duplicate ids raise; built engines are cached per (engine, model), optionally
    under a memory cap (``memory_cap_mb``: least recently used engines are dropped first)."""

    def __init__(self, entries: Iterable[EngineEntry] = (), *, memory_cap_mb: int | None = None) -> None:
        self._entries: dict[str, EngineEntry] = {}
        self._loaded = ModelCache(memory_cap_mb)
        self._lock = threading.Lock()
        for entry in entries:
            self.add(entry)

    def add(self, entry: EngineEntry) -> None:
        if entry.descriptor.id in self._entries:
            raise ValueError(f"engine id {entry.descriptor.id!r} registered twice")
        self._entries[entry.descriptor.id] = entry

    def replace(self, entry: EngineEntry) -> None:
        """Put ``entry`` in place of the engine with its id (its models changed: one was pushed or removed).

        Loaded engines of that id are dropped, so a model file of the same name is read afresh.
        """
        engine_id = entry.descriptor.id
        with self._lock:
            self._entries[engine_id] = entry
            self._loaded.drop(_of_engine(engine_id))

    def ids(self) -> list[str]:
        return list(self._entries)

    def descriptors(self) -> list[EngineDescriptor]:
        return [e.descriptor for e in self._entries.values()]

    @property
    def lite(self) -> bool:
        """True when no AI engine is registered (only OpenCV engines, and simulated ones, can run): the one
        definition of "lite", from what is registered rather than which libraries import. An AI engine
        registered without a model file (unavailable until one is added) still makes it not lite."""
        return all(d.id in OPENCV_ENGINE_IDS or d.simulated for d in self.descriptors())

    def descriptor(self, engine_id: str) -> EngineDescriptor:
        try:
            return self._entries[engine_id].descriptor
        except KeyError:
            known = ", ".join(self._entries) or "none"
            raise EngineError(f"unknown engine {engine_id!r} (this machine has: {known})") from None

    def resolve(self, spec: EditSpec) -> tuple[EngineDescriptor, dict[str, ParamValue]]:
        """Check that ``spec`` can run here; return the descriptor and the full, typed params."""
        desc = self.descriptor(spec.engine)
        if spec.op not in desc.operations:
            raise SpecError(f"engine {desc.id!r} cannot {spec.op} (it does: {', '.join(sorted(desc.operations))})")
        if not desc.available:
            raise EngineError(f"engine {desc.id!r} is not available here: {desc.unavailable_reason}")
        if spec.model is not None and desc.models and spec.model not in desc.models:
            raise EngineError(
                f"model {spec.model!r} is not in this machine's models folder (found: {', '.join(desc.models)})"
            )
        return desc, desc.params.validate(spec.params)

    def off_cpu(self, engine_id: str) -> bool:
        """Whether this PC's edits with ``engine_id`` run off its CPU: on a GPU (as its loaded engines say;
        none loaded yet: no) or on the simulated one. The CPU then mostly idles while an edit runs."""
        entry = self._entries.get(engine_id)
        if entry is None:
            return False
        if entry.descriptor.simulated:
            return True
        # no lock: the farm asks from its event loop, and a model may be loading under the lock for seconds
        devices = self._loaded.devices(_of_engine(engine_id))
        return bool(devices - {"cpu"})

    def engine(self, engine_id: str, model: str | None = None) -> Engine:
        """The loaded engine, building it on first use (model loading happens here, once)."""
        entry = self._entries.get(engine_id)
        if entry is None:
            self.descriptor(engine_id)  # raises the friendly error
            raise AssertionError("unreachable")
        desc = entry.descriptor
        if model is None and desc.models:
            model = desc.models[0]  # so "default" and its explicit name share one loaded copy
        with self._lock:
            return self._loaded.get_or_load(
                (engine_id, model), lambda: entry.factory(model), expected_mb=desc.memory_mb
            )
