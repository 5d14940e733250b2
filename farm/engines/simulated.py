"""SIMULATED GPU engines for benchmarks and tests: they sleep a service time per megapixel.

``sim`` inpaints (inverts the masked pixels); ``sim-upscale`` upscales 4x by repeating pixels.

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

SECONDS_PER_MP = ParamSpec(
    "seconds_per_mp",
    "float",
    0.1,
    minimum=0.0,
    maximum=600.0,
    help="service time per (input) megapixel on a node of speed 1",
)
DESCRIPTOR = EngineDescriptor(
    id="sim",
    title="Simulated GPU (sleeps; benchmarks and tests only)",
    operations=frozenset({"inpaint"}),
    params=ParamSchema.of(SECONDS_PER_MP),
    devices=("sim",),
    memory_mb=1024,
    simulated=True,
)


UPSCALE_DESCRIPTOR = EngineDescriptor(
    id="sim-upscale",
    title="Simulated GPU upscaler, 4x (sleeps; benchmarks and tests only)",
    operations=frozenset({"upscale"}),
    params=ParamSchema.of(
        SECONDS_PER_MP,
        ParamSpec("overlap", "int", 8, minimum=0, maximum=512, help="context pixels around each farm tile"),
    ),
    devices=("sim",),
    needs_mask=False,
    scale=4,
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


class SimulatedUpscaler:
    """Repeats each pixel 4x4 after sleeping (so a tiled run equals an untiled one exactly)."""

    def __init__(self, *, slowdown: float = 1.0, fail: bool = False, steps: int = 10) -> None:
        self.descriptor = UPSCALE_DESCRIPTOR
        self._inpaint = SimulatedEngine(slowdown=slowdown, fail=fail, steps=steps)

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, ParamValue],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray:
        self._inpaint.run(image, None, params, progress, cancel)
        scale = self.descriptor.scale
        return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
