"""OpenCV inpainting (Telea, Navier-Stokes): the embedded default engine, no weights needed."""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamSchema, ParamSpec, ParamValue
from farm.engines.base import CancelToken, ProgressFn

DESCRIPTOR = EngineDescriptor(
    id="cv2",
    title="OpenCV inpaint (fast, no model)",
    operations=frozenset({"inpaint"}),
    params=ParamSchema.of(
        ParamSpec(
            "method",
            "choice",
            "ns",
            label="Method",
            choices=("ns", "telea"),
            help="Navier-Stokes (ns) or Telea's fast marching",
        ),
        ParamSpec(
            "radius",
            "int",
            4,
            label="Radius",
            minimum=1,
            maximum=64,
            help="neighbourhood in pixels each filled pixel looks at",
        ),
    ),
    memory_mb=64,
    light=True,
)
_FLAGS = {"ns": cv2.INPAINT_NS, "telea": cv2.INPAINT_TELEA}


class OpenCVInpaint:
    descriptor = DESCRIPTOR

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, ParamValue],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray:
        assert mask is not None, "the pipeline passes a mask to inpaint engines"
        cancel.check()
        out = cv2.inpaint(image, mask, float(params["radius"]), _FLAGS[str(params["method"])])
        progress(1.0)
        return out
