"""LAN Farm's core, importable without Qt or torch.

The front door is :class:`Farm` (``async with Farm.open(FarmSettings(...)) as farm:``); the rest of
this surface is what its callers hand it and get back. The layers: docs/architecture.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# name -> the module that defines it; loaded on first use, so `import farm.core.spec` stays light
_EXPORTS = {
    "Job": "farm.core.job",
    "JobState": "farm.core.job",
    "NodeInfo": "farm.core.nodeinfo",
    "PROTOCOL_VERSION": "farm.core.protocol",
    "EditSpec": "farm.core.spec",
    "HdStrategy": "farm.core.spec",
    "OutputSpec": "farm.core.spec",
    "CancelToken": "farm.engines",
    "EngineDescriptor": "farm.engines",
    "Registry": "farm.engines",
    "default_registry": "farm.engines.installed",
    "EngineError": "farm.errors",
    "FarmError": "farm.errors",
    "IllegalTransition": "farm.errors",
    "ImageError": "farm.errors",
    "JobCancelled": "farm.errors",
    "OutputError": "farm.errors",
    "SpecError": "farm.errors",
    "execute": "farm.imaging.pipeline",
    "Batch": "farm.runtime.farm",
    "BatchEnded": "farm.runtime.farm",
    "Farm": "farm.runtime.farm",
    "FarmEvent": "farm.runtime.farm",
    "FarmSettings": "farm.runtime.farm",
    "JobEvent": "farm.runtime.farm",
    "NodeEvent": "farm.runtime.farm",
    "WorkerSnapshot": "farm.runtime.farm",
    "__version__": "farm.version",
}

if TYPE_CHECKING:
    from farm.core.job import Job, JobState
    from farm.core.nodeinfo import NodeInfo
    from farm.core.protocol import PROTOCOL_VERSION
    from farm.core.spec import EditSpec, HdStrategy, OutputSpec
    from farm.engines import CancelToken, EngineDescriptor, Registry
    from farm.engines.installed import default_registry
    from farm.errors import EngineError, FarmError, IllegalTransition, ImageError, JobCancelled, OutputError, SpecError
    from farm.imaging.pipeline import execute
    from farm.runtime.farm import Batch, BatchEnded, Farm, FarmEvent, FarmSettings, JobEvent, NodeEvent, WorkerSnapshot
    from farm.version import __version__


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'farm' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Batch",
    "BatchEnded",
    "CancelToken",
    "EditSpec",
    "EngineDescriptor",
    "EngineError",
    "Farm",
    "FarmError",
    "FarmEvent",
    "FarmSettings",
    "HdStrategy",
    "IllegalTransition",
    "ImageError",
    "Job",
    "JobCancelled",
    "JobEvent",
    "JobState",
    "NodeEvent",
    "NodeInfo",
    "OutputError",
    "OutputSpec",
    "PROTOCOL_VERSION",
    "Registry",
    "SpecError",
    "WorkerSnapshot",
    "__version__",
    "default_registry",
    "execute",
]
