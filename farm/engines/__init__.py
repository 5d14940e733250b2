"""Edit engines: the contract and the registry. What this install registers: :mod:`farm.engines.installed`."""

from __future__ import annotations

from farm.core.descriptor import EngineDescriptor
from farm.engines.base import CancelToken, Engine, ProgressFn, no_progress
from farm.engines.registry import EngineEntry, Registry

__all__ = ["CancelToken", "Engine", "EngineDescriptor", "EngineEntry", "ProgressFn", "Registry", "no_progress"]
