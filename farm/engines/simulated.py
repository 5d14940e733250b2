"""SIMULATED GPU engine for benchmarks and tests: sleeps a service time per megapixel.

It stands in for a GPU that cannot exist on the test machines. It is only registered when asked for
(``simulate=True`` / ``lanfarm node --simulate``), and its descriptor says ``simulated``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import numpy as np

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamSchema, ParamSpec, ParamValue
from farm.engines.base import CancelToken, ProgressFn
from farm.errors import EngineError

DESCRIPTOR = EngineDescriptor(
    id="sim",
    title="Simulated GPU (sleeps; benchmarks and tests only)",
    operations=frozenset({"inpaint"}),
    params=ParamSchema.of(
        ParamSpec(
            "seconds_per_mp",
            "float",
            0.1,
            minimum=0.0,
            maximum=600.0,
            help="service time per megapixel on a node of speed 1",
        ),
    ),
    devices=("sim",),
    memory_mb=1024,
    simulated=True,
)


class SimulatedEngine:
    """Inverts the masked pixels after sleeping; ``slowdown`` models a slower GPU, ``fail`` a broken one."""

    def __init__(self, *, slowdown: float = 1.0, fail: bool = False, steps: int = 10) -> None:
        self.descriptor = DESCRIPTOR
        self._slowdown = slowdown
        self._fail = fail
        self._steps = steps

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, ParamValue],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray:
        total = float(params["seconds_per_mp"]) * image.shape[0] * image.shape[1] / 1e6
        step = total * self._slowdown / self._steps
        for i in range(self._steps):
            cancel.check()
            time.sleep(step)
            progress((i + 1) / self._steps)
        if self._fail:
            raise EngineError("simulated GPU fault (this node was started with --simulate-failures)")
        out = image.copy()
        if mask is not None:
            out[mask > 0] = 255 - out[mask > 0]
        return out
