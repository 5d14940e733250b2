"""Edit engines: the contract, the registry, and the engines built into every install.

The AI engines (LaMa, upscale, Stable Diffusion inpaint) are registered only when their libraries
are installed (the ``ai`` extra), checked with ``find_spec`` so that neither ``import farm`` nor
building the registry imports torch: their descriptors come from a torch-free scan of the models
folder, and torch loads with the first job that uses one.
"""

from __future__ import annotations

from pathlib import Path

from farm.engines.base import CancelToken, Engine, EngineDescriptor, ProgressFn, no_progress
from farm.engines.registry import EngineEntry, Registry

__all__ = ["CancelToken", "Engine", "EngineDescriptor", "EngineEntry", "ProgressFn", "Registry",
           "ai_entries", "default_registry", "no_progress"]


def default_registry(models_dir: Path | None = None, *, device: str | None = None,
                     memory_cap_mb: int | None = None, simulate: bool = False,
                     sim_slowdown: float = 1.0, sim_fail: bool = False) -> Registry:
    """The engines this install offers. ``simulate`` adds the SIMULATED GPU engine (tests, benchmarks).

    ``models_dir`` defaults to :func:`farm.paths.models_dir`; ``device`` overrides the automatic
    choice (cuda > mps > cpu, or LANFARM_DEVICE) for the AI engines.
    """
    from farm.engines import opencv_inpaint

    registry = Registry([EngineEntry(opencv_inpaint.DESCRIPTOR,
                                     lambda _model: opencv_inpaint.OpenCVInpaint())],
                        memory_cap_mb=memory_cap_mb)
    for entry in ai_entries(models_dir, device=device):
        registry.add(entry)
    if simulate:
        from farm.engines import simulated

        registry.add(EngineEntry(simulated.DESCRIPTOR, lambda _model: simulated.SimulatedEngine(
            slowdown=sim_slowdown, fail=sim_fail)))
    return registry


def ai_entries(models_dir: Path | None = None, *, device: str | None = None) -> list[EngineEntry]:
    """Entries for the AI engines whose libraries are installed, for the models in ``models_dir``."""
    from farm.engines.devices import AI_DEVICES, device_override
    from farm.models import AI_MODULES, SD_MODULES, missing_modules, models_for, scan_models
    from farm.paths import models_dir as default_models_dir

    folder = Path(models_dir) if models_dir else default_models_dir()
    override = device_override(device)
    devices = (override.split(":", 1)[0],) if override else AI_DEVICES
    found = scan_models(folder)
    entries = []
    if not missing_modules(AI_MODULES):
        from farm.engines import lama, upscale

        for module in (lama, upscale):
            models = models_for(found, module.ENGINE_ID)
            desc = module.build_descriptor(models, folder, devices)
            entries.append(EngineEntry(desc, module.factory(desc, models, device)))
    if not missing_modules(SD_MODULES):
        from farm.engines import sd_inpaint

        models = models_for(found, sd_inpaint.ENGINE_ID)
        desc = sd_inpaint.build_descriptor(models, folder, devices)
        entries.append(EngineEntry(desc, sd_inpaint.factory(desc, models, device)))
    return entries
