"""LAN Farm core: edit specs, jobs, image I/O, engines, the pipeline. Importable without Qt or torch."""

from farm.core.job import Job, JobState
from farm.core.protocol import PROTOCOL_VERSION
from farm.core.spec import EditSpec, HdStrategy, OutputSpec
from farm.engines import CancelToken, EngineDescriptor, Registry
from farm.engines.installed import default_registry
from farm.errors import (
    EngineError,
    FarmError,
    IllegalTransition,
    ImageError,
    JobCancelled,
    OutputError,
    SpecError,
)
from farm.imaging.pipeline import execute
from farm.version import __version__

__all__ = [
    "PROTOCOL_VERSION",
    "CancelToken",
    "EditSpec",
    "EngineDescriptor",
    "EngineError",
    "FarmError",
    "HdStrategy",
    "IllegalTransition",
    "ImageError",
    "Job",
    "JobCancelled",
    "JobState",
    "OutputError",
    "OutputSpec",
    "Registry",
    "SpecError",
    "__version__",
    "default_registry",
    "execute",
]
