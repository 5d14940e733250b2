"""Edit engines: the contract, the registry, and the engines built into every install."""

from __future__ import annotations

from farm.engines.base import CancelToken, Engine, EngineDescriptor, ProgressFn, no_progress
from farm.engines.registry import EngineEntry, Registry

__all__ = ["CancelToken", "Engine", "EngineDescriptor", "EngineEntry", "ProgressFn", "Registry",
           "default_registry", "no_progress"]


def default_registry(*, simulate: bool = False, sim_slowdown: float = 1.0,
                     sim_fail: bool = False) -> Registry:
    """The engines this install offers. ``simulate`` adds the SIMULATED GPU engine (tests, benchmarks)."""
    from farm.engines import opencv_inpaint

    registry = Registry([EngineEntry(opencv_inpaint.DESCRIPTOR,
                                     lambda _model: opencv_inpaint.OpenCVInpaint())])
    if simulate:
        from farm.engines import simulated

        registry.add(EngineEntry(simulated.DESCRIPTOR, lambda _model: simulated.SimulatedEngine(
            slowdown=sim_slowdown, fail=sim_fail)))
    return registry
