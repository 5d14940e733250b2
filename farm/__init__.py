"""LAN Farm's core, importable without Qt or torch.

The front door is :class:`Farm` (``async with Farm.open(FarmSettings(...)) as farm:``); the rest of
this surface is what its callers hand it and get back. The layers: docs/architecture.md.
"""

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

__all__ = [
    "PROTOCOL_VERSION",
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
    "Registry",
    "SpecError",
    "WorkerSnapshot",
    "__version__",
    "default_registry",
    "execute",
]
