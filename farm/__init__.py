"""LAN Farm core: edit specs, jobs, image I/O, engines, the pipeline. Importable without Qt or torch."""

from farm.engines import CancelToken, EngineDescriptor, Registry, default_registry
from farm.errors import (
                         EngineError,
                         FarmError,
                         IllegalTransition,
                         ImageError,
                         JobCancelled,
                         OutputError,
                         SpecError,
)
from farm.job import Job, JobState
from farm.pipeline import execute
from farm.spec import EditSpec, HdStrategy, OutputSpec
from farm.version import PROTOCOL_VERSION, __version__

__all__ = ["PROTOCOL_VERSION", "CancelToken", "EditSpec", "EngineDescriptor", "EngineError",
           "FarmError", "HdStrategy", "IllegalTransition", "ImageError", "Job", "JobCancelled",
           "JobState", "OutputError", "OutputSpec", "Registry", "SpecError", "__version__",
           "default_registry", "execute"]
