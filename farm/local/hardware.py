"""What this PC has to offer: CPU, RAM and GPUs. torch and pynvml are imported lazily, never required.

GPUs come from torch.cuda when torch imports, else from NVML (package ``nvidia-ml-py``) when it
imports and finds a driver, else there are none and the backend is ``cpu``.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import logging
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from farm.core.nodeinfo import GpuInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Hardware:
    """The machine, as /v1/info reports it."""

    cpu: str
    cpu_count: int
    ram_total: int
    backend: str = "cpu"
    gpus: tuple[GpuInfo, ...] = field(default_factory=tuple)

    @property
    def gpu_label(self) -> str:
        """Short GPU name for the mDNS advert, ``cpu`` when there is none."""
        return self.gpus[0].name if self.gpus else "cpu"

    @property
    def vram_mb(self) -> int:
        return self.gpus[0].vram_total // (1 << 20) if self.gpus else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu": self.cpu,
            "cpu_count": self.cpu_count,
            "ram_total": self.ram_total,
            "backend": self.backend,
            "gpus": [g.to_dict() for g in self.gpus],
        }


def usable_cpus() -> int:
    """The cores this process may run on: its affinity (a container's or ``taskset``'s share), not the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def probe() -> Hardware:
    """Look at this PC. Never raises: every failed probe degrades to less information."""
    backend, gpus = probe_gpus()
    return Hardware(cpu=cpu_name(), cpu_count=usable_cpus(), ram_total=ram_total(), backend=backend, gpus=tuple(gpus))


def refresh(hw: Hardware) -> Hardware:
    """The same machine with current free VRAM (cheap; a no-op without GPUs)."""
    if not hw.gpus:
        return hw
    backend, gpus = probe_gpus()
    return replace(hw, backend=backend, gpus=tuple(gpus)) if gpus else hw


def probe_gpus() -> tuple[str, list[GpuInfo]]:
    """``(backend, gpus)``: NVML, then ``nvidia-smi``, then torch where only torch can tell (Apple and
    AMD GPUs, or torch already loaded), else ``("cpu", [])``. An idle node on a PC without such a GPU
    never imports torch (about 250 MB and a second or two); it loads with the first AI job."""
    for probe_fn in (_nvml_gpus, _nvidia_smi_gpus, _torch_gpus):
        try:
            found = probe_fn()
        except Exception as exc:  # a broken driver must not stop the node; we fall back to CPU
            log.debug("GPU probe %s failed: %s", probe_fn.__name__, exc)
            continue
        if found is not None:
            return found
    return "cpu", []


def _torch_only_can_tell() -> bool:
    """Whether a GPU may be here that neither NVML nor nvidia-smi sees (or torch is loaded anyway)."""
    return "torch" in sys.modules or sys.platform == "darwin" or Path("/dev/kfd").exists()  # kfd: ROCm


def _torch_gpus() -> tuple[str, list[GpuInfo]] | None:
    if importlib.util.find_spec("torch") is None or not _torch_only_can_tell():
        return None
    torch = importlib.import_module("torch")
    if torch.cuda.is_available():
        backend = "rocm" if getattr(torch.version, "hip", None) else "cuda"
        driver = str(getattr(torch.version, "hip", None) or torch.version.cuda or "")
        gpus = []
        for i in range(torch.cuda.device_count()):
            free, total = torch.cuda.mem_get_info(i)
            gpus.append(GpuInfo(i, torch.cuda.get_device_name(i), int(total), int(free), driver))
        return backend, gpus
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps", [GpuInfo(0, "Apple GPU", ram_total(), 0, "mps")]
    return None


def _nvml_gpus() -> tuple[str, list[GpuInfo]] | None:
    if importlib.util.find_spec("pynvml") is None:
        return None
    nvml = importlib.import_module("pynvml")
    nvml.nvmlInit()
    try:
        driver = _text(nvml.nvmlSystemGetDriverVersion())
        gpus = []
        for i in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(GpuInfo(i, _text(nvml.nvmlDeviceGetName(handle)), int(mem.total), int(mem.free), driver))
    finally:
        nvml.nvmlShutdown()
    return ("cuda", gpus) if gpus else None


def _nvidia_smi_gpus() -> tuple[str, list[GpuInfo]] | None:
    """NVIDIA GPUs from ``nvidia-smi`` (ships with the driver), where the NVML package is not installed."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    fields = "index,name,memory.total,memory.free,driver_version"
    out = subprocess.run(
        [exe, f"--query-gpu={fields}", "--format=csv,noheader,nounits"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    gpus = []
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 5 and parts[0].isdigit():
            index, name, total, free, driver = parts
            gpus.append(GpuInfo(int(index), name, int(float(total)) << 20, int(float(free)) << 20, driver))
    return ("cuda", gpus) if gpus else None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def ram_total() -> int:
    """Physical memory in bytes, 0 when unknown (Windows, Linux, macOS): the one place RAM is measured."""
    if sys.platform == "win32":

        class _MemStatus(ctypes.Structure):
            _fields_ = [
                ("dwLength", ctypes.c_ulong),
                ("dwMemoryLoad", ctypes.c_ulong),
                ("ullTotalPhys", ctypes.c_ulonglong),
                ("ullAvailPhys", ctypes.c_ulonglong),
                ("ullTotalPageFile", ctypes.c_ulonglong),
                ("ullAvailPageFile", ctypes.c_ulonglong),
                ("ullTotalVirtual", ctypes.c_ulonglong),
                ("ullAvailVirtual", ctypes.c_ulonglong),
                ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
            ]

        status = _MemStatus()
        status.dwLength = ctypes.sizeof(_MemStatus)
        if ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
            return int(status.ullTotalPhys)
        return 0
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 0
