"""What this install offers: the engines it can register, and the checks that load a model.

The one module that knows both the torch-free model catalogue and the engines that load models:
the catalogue never imports an engine, the engines import the catalogue, and this joins them.
The AI engines are registered only when their libraries are installed, checked with ``find_spec``
so that building the registry never imports torch.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from farm.engines import lama, opencv_inpaint, sd_inpaint, simulated, spandrel_loader, upscale
from farm.engines.catalogue import (
    AI_MODULES,
    IOPAINT_LAMA_NAME,
    SD_MODULES,
    ModelFile,
    classify,
    missing_modules,
    models_for,
    scan_models,
)
from farm.engines.devices import AI_DEVICES, device_override
from farm.engines.registry import EngineEntry, Registry
from farm.errors import EngineError
from farm.local.paths import models_dir as default_models_dir


def default_registry(
    models_dir: Path | None = None,
    *,
    device: str | None = None,
    memory_cap_mb: int | None = None,
    simulate: bool = False,
    sim_slowdown: float = 1.0,
    sim_fail: bool = False,
) -> Registry:
    """The engines this install offers. ``simulate`` adds the SIMULATED GPU engine (tests, benchmarks).

    ``models_dir`` defaults to :func:`farm.local.paths.models_dir`; ``device`` overrides the automatic
    choice (cuda > mps > cpu, or LANFARM_DEVICE) for the AI engines.
    """
    registry = Registry(
        [EngineEntry(opencv_inpaint.DESCRIPTOR, lambda _model: opencv_inpaint.OpenCVInpaint())],
        memory_cap_mb=memory_cap_mb,
    )
    for entry in ai_entries(models_dir, device=device):
        registry.add(entry)
    if simulate:
        registry.add(
            EngineEntry(
                simulated.DESCRIPTOR, lambda _model: simulated.SimulatedEngine(slowdown=sim_slowdown, fail=sim_fail)
            )
        )
        registry.add(
            EngineEntry(
                simulated.UPSCALE_DESCRIPTOR,
                lambda _model: simulated.SimulatedUpscaler(slowdown=sim_slowdown, fail=sim_fail),
            )
        )
    return registry


def ai_entries(models_dir: Path | None = None, *, device: str | None = None) -> list[EngineEntry]:
    """Entries for the AI engines whose libraries are installed, for the models in ``models_dir``."""

    folder = Path(models_dir) if models_dir else default_models_dir()
    override = device_override(device)
    devices = (override.split(":", 1)[0],) if override else AI_DEVICES
    found = scan_models(folder)
    entries = []
    if not missing_modules(AI_MODULES):
        for module in (lama, upscale):
            models = models_for(found, module.ENGINE_ID)
            desc = module.build_descriptor(models, folder, devices)
            entries.append(EngineEntry(desc, module.factory(desc, models, device)))
    if not missing_modules(SD_MODULES):
        models = models_for(found, sd_inpaint.ENGINE_ID)
        desc = sd_inpaint.build_descriptor(models, folder, devices)
        entries.append(EngineEntry(desc, sd_inpaint.factory(desc, models, device)))
    return entries


def inspect_model(model: ModelFile) -> tuple[str, int]:
    """Architecture name and scale, by loading the model on the CPU; raises EngineError."""
    if model.kind in ("lama", "upscale") and model.format != "torchscript":
        desc = spandrel_loader.load_spandrel(model.path, device="cpu")
        return f"{desc.architecture.name}", int(desc.scale)
    if model.kind == "sd-inpaint" and model.format == "single-file":
        return "SD single-file checkpoint", 1
    if model.kind == "lama":
        return "LaMa (IOPaint TorchScript)", 1
    raise EngineError(f"{model.name}: {model.note or 'not a model LAN Farm can use'}")


def check_loads(model: ModelFile) -> None:
    """Load ``model`` the way its engine will (on the CPU), raising EngineError if it cannot."""
    if model.note or model.kind == "unknown":
        raise EngineError(f"{model.path}: {model.note or 'not a model LAN Farm can use'}")
    if model.kind == "lama":
        lama.load_lama(model, device="cpu")
    elif model.kind == "upscale":
        upscale.load_upscaler(model.path, device="cpu")
    else:
        sd_inpaint.load_pipeline(model, device="cpu")


def add_model(source: Path, models_dir: Path, *, link: bool = False, check: bool = True) -> ModelFile:
    """Copy (or symlink) a model file or diffusers folder into ``models_dir`` after checking it loads."""
    source = source.expanduser()
    if not source.exists():
        raise EngineError(f"{source} does not exist")
    model = classify(source)
    if model is None:
        raise EngineError(
            f"{source} is not a model file: expected a .safetensors, .pth or .ckpt file, "
            f"IOPaint's {IOPAINT_LAMA_NAME}, or a diffusers folder with model_index.json"
        )
    if check:
        check_loads(model)
    dest = models_dir / source.name
    if dest.exists() or dest.is_symlink():
        raise EngineError(f"{dest} already exists; remove it first to replace it")
    models_dir.mkdir(parents=True, exist_ok=True)
    if link:
        dest.symlink_to(source.resolve(), target_is_directory=source.is_dir())
    else:
        partial = dest.with_name(f".{dest.name}.partial")
        if partial.is_dir():
            shutil.rmtree(partial)
        if source.is_dir():
            shutil.copytree(source, partial)
        else:
            shutil.copy2(source, partial)
        os.replace(partial, dest)
    added = classify(dest)
    assert added is not None
    return added
