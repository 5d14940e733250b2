"""Which torch device an engine runs on (cuda > mps > cpu, or LANFARM_DEVICE), and how much memory it has.

Only the engines' load and run paths call into this module's torch functions; :func:`device_override` and the
constants are torch-free so descriptors can be built without importing torch.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from farm.errors import EngineError

if TYPE_CHECKING:
    import torch

DEVICE_ENV = "LANFARM_DEVICE"
KNOWN_DEVICES = ("cuda", "mps", "cpu")
# What AI engines can run on; a node states what it has in its own info, not here.
AI_DEVICES: tuple[str, ...] = KNOWN_DEVICES
CPU_FALLBACK_FREE_MB = 4096


def device_override(explicit: str | None = None) -> str | None:
    """The device asked for by ``explicit`` or the LANFARM_DEVICE variable ("cuda:1", "cpu"...), if any."""
    name = (explicit or os.environ.get(DEVICE_ENV, "")).strip().lower()
    if not name or name == "auto":
        return None
    if name.split(":", 1)[0] not in KNOWN_DEVICES:
        raise EngineError(
            f"unknown device {name!r} (from {DEVICE_ENV} or a setting); use one of {', '.join(KNOWN_DEVICES)} or auto"
        )
    return name


def slot_devices(
    gpu_count: int,
    *,
    backend: str = "cuda",
    gpus: tuple[int, ...] = (),
    device: str | None = None,
    slots: int | None = None,
) -> list[str | None]:
    """The device of each job slot (None: the automatic choice). Torch-free: ``gpu_count`` comes from NVML.

    ``device`` (``--device``, ``LANFARM_DEVICE``) puts every slot there; ``gpus`` (``--gpu N``, repeatable)
    gives one slot per listed GPU; otherwise a CUDA/ROCm PC gets one slot per GPU, slot i on ``cuda:i``.
    ``slots`` beyond that go round the same GPUs. Raises EngineError for a GPU number this PC lacks.
    """
    if device:
        return [device] * (slots or 1)
    cuda = backend in ("cuda", "rocm")
    if gpus:
        missing = [g for g in gpus if g >= gpu_count or g < 0] if cuda and gpu_count else []
        if missing or not (cuda and gpu_count):
            have = f"{gpu_count} GPU{'s' if gpu_count != 1 else ''} (0-{gpu_count - 1})" if gpu_count else "no GPU"
            bad = missing[0] if missing else gpus[0]
            raise EngineError(f"--gpu {bad}: this PC has {have}")
        order = list(dict.fromkeys(gpus))
        return [f"cuda:{order[i % len(order)]}" for i in range(slots or len(order))]
    if cuda and gpu_count > 0:
        return [f"cuda:{i % gpu_count}" for i in range(slots or gpu_count)]
    return [None] * (slots or 1)


def pick_device(explicit: str | None = None) -> torch.device:
    """The best device here: the override if given, else cuda, then mps, then cpu."""
    import torch

    name = device_override(explicit)
    if name is not None:
        kind = name.split(":", 1)[0]
        if kind == "cuda" and not torch.cuda.is_available():
            raise EngineError(f"device {name!r} was asked for but torch sees no CUDA GPU here")
        if kind == "mps" and not torch.backends.mps.is_available():
            raise EngineError(f"device {name!r} was asked for but torch sees no Apple GPU (MPS) here")
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextlib.contextmanager
def flushed_denormals() -> Iterator[None]:
    """Run model code with denormal floats flushed to zero, then give the thread its default back.

    On x86 CPUs, the denormal floats that random or fine-tuned weights produce make arithmetic about
    ten times slower (LaMa 256x256: 11 s without, 1 s with). The flag is per thread (job slots are
    threads), so it is set around each load and run; it is restored after, so that other code in the
    thread (which may rely on IEEE subnormals) is not affected.
    """
    import torch

    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def free_memory_mb(device: torch.device) -> int:
    """Free memory on ``device`` in MiB; on CPU and MPS a fixed, sane figure (they share system RAM)."""
    import torch

    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free // (1 << 20))
    return CPU_FALLBACK_FREE_MB


def is_half_safe(device: torch.device, supports_half: bool) -> bool:
    """fp16 only on CUDA and only for models known to work in it (MPS/CPU fp16 is slow or lossy)."""
    return device.type == "cuda" and supports_half
