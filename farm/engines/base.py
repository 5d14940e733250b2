"""The engine contract: a torch-free descriptor the scheduler plans with, and ``run``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from farm.errors import JobCancelled
from farm.params import ParamSchema, ParamValue

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
        return {"id": self.id, "title": self.title, "operations": sorted(self.operations),
                "params": self.params.to_schema(), "devices": list(self.devices),
                "memory_mb": self.memory_mb, "needs_mask": self.needs_mask,
                "size_multiple": self.size_multiple, "scale": self.scale,
                "models": list(self.models), "available": self.available,
                "unavailable_reason": self.unavailable_reason, "simulated": self.simulated}


class Engine(Protocol):
    """A loaded engine. ``run`` takes 8-bit BGR pixels and an HxW 0/255 mask (None for upscaling)."""

    descriptor: EngineDescriptor

    def run(self, image: np.ndarray, mask: np.ndarray | None, params: Mapping[str, ParamValue],
            progress: ProgressFn, cancel: CancelToken) -> np.ndarray: ...
