"""The engine contract: a torch-free descriptor the scheduler plans with, and ``run``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from farm.core.params import ParamSchema, ParamValue
from farm.errors import JobCancelled

ProgressFn = Callable[[float], None]


def no_progress(_fraction: float) -> None:
    """A ProgressFn that drops reports."""


class CancelToken:
    """Set from any thread; engines call :meth:`check` between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise JobCancelled("cancelled")


@dataclass(frozen=True, slots=True)
class EngineDescriptor:
    """What callers plan with: operations, params, devices, memory need, size rules, availability."""

    id: str
    title: str
    operations: frozenset[str]
    params: ParamSchema = field(default_factory=ParamSchema)
    devices: tuple[str, ...] = ("cpu",)
    memory_mb: int = 256
    needs_mask: bool = True
    size_multiple: int = 1
    scale: int = 1
    models: tuple[str, ...] = ()
    available: bool = True
    unavailable_reason: str = ""
    simulated: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON form, as /v1/info and the GUI's edit picker use it."""
        return {
            "id": self.id,
            "title": self.title,
            "operations": sorted(self.operations),
            "params": self.params.to_schema(),
            "devices": list(self.devices),
            "memory_mb": self.memory_mb,
            "needs_mask": self.needs_mask,
            "size_multiple": self.size_multiple,
            "scale": self.scale,
            "models": list(self.models),
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
            "simulated": self.simulated,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineDescriptor:
        """The inverse of :meth:`to_dict`: an engine as a node describes it. Raises SpecError/KeyError."""
        return cls(
            id=str(data["id"]),
            title=str(data.get("title") or data["id"]),
            operations=frozenset(data.get("operations") or ()),
            params=ParamSchema.from_schema(data.get("params")),
            devices=tuple(data.get("devices") or ("cpu",)),
            memory_mb=int(data.get("memory_mb") or 0),
            needs_mask=bool(data.get("needs_mask", True)),
            size_multiple=int(data.get("size_multiple") or 1),
            scale=int(data.get("scale") or 1),
            models=tuple(data.get("models") or ()),
            available=bool(data.get("available", True)),
            unavailable_reason=str(data.get("unavailable_reason") or ""),
            simulated=bool(data.get("simulated", False)),
        )


def merge_descriptors(local: Sequence[EngineDescriptor], remote: Sequence[EngineDescriptor]) -> list[EngineDescriptor]:
    """The engines a farm offers: this PC's, plus what only nodes have; an engine available anywhere
    is available, with the models of every worker that has it."""
    merged: dict[str, EngineDescriptor] = {d.id: d for d in local}
    for d in remote:
        have = merged.get(d.id)
        if have is None or (d.available and not have.available):
            base = d
        elif d.available:
            base = have
        else:
            continue
        models = tuple(dict.fromkeys((*(have.models if have else ()), *d.models)))
        merged[d.id] = replace(base, models=models)
    return list(merged.values())


class Engine(Protocol):
    """A loaded engine. ``run`` takes 8-bit BGR pixels and an HxW 0/255 mask (None for upscaling)."""

    descriptor: EngineDescriptor

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, ParamValue],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray: ...
