"""The engine contract: ``run`` on pixels, progress reports and cancelling (the descriptor: farm.core.descriptor)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol

import numpy as np

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamValue
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
