"""NIMBY probes: how long since the PC's user last touched it, and how much GPU memory other programs hold.

Each probe is small and optional; one that cannot work here raises :class:`ProbeUnavailable` saying
why, and the node says in its status which probes it uses (or that none works: it does not pretend).
Input: X11's XScreenSaver extension, logind's ``IdleHint``, Windows ``GetLastInputInfo``, macOS
``CGEventSourceSecondsSinceLastEventType``. GPU: NVML's process lists (other processes only).
The decision is :class:`farm.core.nimby.NimbyWatch`.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol

from farm.core.nimby import GPU, INPUT, NimbyPolicy, NimbyWatch

log = logging.getLogger(__name__)


class ProbeUnavailable(Exception):
    """This probe cannot work on this PC; the message says why."""


class InputProbe(Protocol):
    name: str

    def idle_seconds(self) -> float: ...

    def close(self) -> None: ...


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),
        ("eventMask", ctypes.c_ulong),
    ]


def _library(name: str, fallback: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(ctypes.util.find_library(name) or fallback)
    except OSError as exc:
        raise ProbeUnavailable(f"no {fallback} ({exc})") from None


class X11Idle:
    """Idle time of the X display in ``DISPLAY`` (the XScreenSaver extension); input resets it."""

    name = "x11"

    def __init__(self, display: str | None = None) -> None:
        display = display if display is not None else os.environ.get("DISPLAY", "")
        if not display:
            raise ProbeUnavailable("no X display (DISPLAY is not set)")
        self._x = _library("X11", "libX11.so.6")
        self._xss = _library("Xss", "libXss.so.1")
        self._x.XOpenDisplay.restype = ctypes.c_void_p
        self._x.XOpenDisplay.argtypes = [ctypes.c_char_p]
        self._x.XDefaultRootWindow.restype = ctypes.c_ulong
        self._x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        self._x.XCloseDisplay.argtypes = [ctypes.c_void_p]
        self._x.XFree.argtypes = [ctypes.c_void_p]
        self._xss.XScreenSaverQueryExtension.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_int),
            ctypes.POINTER(ctypes.c_int),
        ]
        self._xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        self._xss.XScreenSaverQueryInfo.argtypes = [
            ctypes.c_void_p,
            ctypes.c_ulong,
            ctypes.POINTER(_XScreenSaverInfo),
        ]
        self._display = self._x.XOpenDisplay(display.encode())
        if not self._display:
            raise ProbeUnavailable(f"cannot open the X display {display!r}")
        event, error = ctypes.c_int(), ctypes.c_int()
        if not self._xss.XScreenSaverQueryExtension(self._display, ctypes.byref(event), ctypes.byref(error)):
            self.close()
            raise ProbeUnavailable(f"the X display {display!r} has no XScreenSaver extension")
        self._root = self._x.XDefaultRootWindow(self._display)
        self._info = self._xss.XScreenSaverAllocInfo()

    def idle_seconds(self) -> float:
        if not self._display or not self._xss.XScreenSaverQueryInfo(self._display, self._root, self._info):
            raise ProbeUnavailable("the X display stopped answering")
        return float(self._info.contents.idle) / 1000.0

    def close(self) -> None:
        if getattr(self, "_info", None):
            self._x.XFree(self._info)
            self._info = None
        if getattr(self, "_display", None):
            self._x.XCloseDisplay(self._display)
            self._display = None


class LogindIdle:
    """logind's ``IdleHint`` of this login session (``loginctl``), where no X display is reachable."""

    name = "logind"

    def __init__(self, session: str | None = None) -> None:
        self.session = session or os.environ.get("XDG_SESSION_ID", "")
        if not self.session:
            raise ProbeUnavailable("no login session (XDG_SESSION_ID is not set)")
        self.idle_seconds()

    def idle_seconds(self) -> float:
        try:
            out = subprocess.run(
                ["loginctl", "show-session", self.session, "-p", "IdleHint", "-p", "IdleSinceHint"],
                capture_output=True,
                text=True,
                timeout=2,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise ProbeUnavailable(f"loginctl: {exc}") from None
        values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        if values.get("IdleHint") != "yes":
            return 0.0
        since = int(values.get("IdleSinceHint") or 0) / 1e6
        return max(0.0, time.time() - since) if since else 0.0

    def close(self) -> None:
        pass


class WindowsIdle:
    """``GetLastInputInfo``: milliseconds since the last input of this desktop session."""

    name = "windows"
    _info: Any

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise ProbeUnavailable("not Windows")

        class LASTINPUTINFO(ctypes.Structure):
            _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]

        self._info = LASTINPUTINFO(ctypes.sizeof(LASTINPUTINFO), 0)
        self._user32: Any = ctypes.windll.user32  # type: ignore[attr-defined,unused-ignore]
        self._kernel32: Any = ctypes.windll.kernel32  # type: ignore[attr-defined,unused-ignore]
        self.idle_seconds()

    def idle_seconds(self) -> float:
        if not self._user32.GetLastInputInfo(ctypes.byref(self._info)):
            raise ProbeUnavailable("GetLastInputInfo failed (a service without a desktop?)")
        return ((self._kernel32.GetTickCount() - self._info.dwTime) & 0xFFFFFFFF) / 1000.0

    def close(self) -> None:
        pass


class MacIdle:
    """``CGEventSourceSecondsSinceLastEventType`` of the combined session state, any input event."""

    name = "macos"
    _cg: Any

    def __init__(self) -> None:
        if sys.platform != "darwin":
            raise ProbeUnavailable("not macOS")
        self._cg = _library(
            "ApplicationServices", "/System/Library/Frameworks/ApplicationServices.framework/ApplicationServices"
        )
        self._cg.CGEventSourceSecondsSinceLastEventType.restype = ctypes.c_double
        self._cg.CGEventSourceSecondsSinceLastEventType.argtypes = [ctypes.c_int32, ctypes.c_uint32]
        self.idle_seconds()

    def idle_seconds(self) -> float:
        return float(self._cg.CGEventSourceSecondsSinceLastEventType(0, 0xFFFFFFFF))  # combined state, any event

    def close(self) -> None:
        pass


def input_probe() -> tuple[InputProbe | None, str]:
    """The first input probe that works here, or None and why none does."""
    candidates: list[Callable[[], InputProbe]]
    if sys.platform == "win32":
        candidates = [WindowsIdle]
    elif sys.platform == "darwin":
        candidates = [MacIdle]
    else:
        candidates = [X11Idle, LogindIdle]
    why = []
    for make in candidates:
        try:
            return make(), ""
        except ProbeUnavailable as exc:
            why.append(str(exc))
    return None, "; ".join(why)


class NvmlOthers:
    """GPU memory held by other processes (NVML's compute and graphics process lists), in MB."""

    name = "nvml"

    def __init__(self) -> None:
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]

            pynvml.nvmlInit()
        except Exception as exc:  # no package, no driver, no GPU: all mean "cannot tell"
            raise ProbeUnavailable(f"NVML: {type(exc).__name__}") from None
        self._nvml: Any = pynvml
        self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        self._own = os.getpid()

    def other_mb(self) -> float:
        total = 0
        for handle in self._handles:
            for lister in (
                self._nvml.nvmlDeviceGetComputeRunningProcesses,
                self._nvml.nvmlDeviceGetGraphicsRunningProcesses,
            ):
                with contextlib.suppress(Exception):
                    for proc in lister(handle):
                        if proc.pid != self._own and proc.usedGpuMemory:
                            total += proc.usedGpuMemory
        return total / (1 << 20)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._nvml.nvmlShutdown()


class NimbySensor:
    """The probes a node's NIMBY settings ask for, sampled at most every ``interval`` s, into a NimbyWatch."""

    def __init__(
        self,
        policy: NimbyPolicy,
        *,
        input_probe_factory: Callable[[], tuple[InputProbe | None, str]] = input_probe,
        interval: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.watch = NimbyWatch(policy)
        self.interval = interval
        self._monotonic = monotonic
        self._last_sample = -float("inf")
        self._input: InputProbe | None = None
        self._gpu: NvmlOthers | None = None
        self._answer: tuple[str, float | None] = ("", None)
        notes = []
        if INPUT in policy.signals:
            self._input, why = input_probe_factory()
            notes.append(f"input ({self._input.name})" if self._input else f"input: no probe works here ({why})")
        if GPU in policy.signals:
            try:
                self._gpu = NvmlOthers()
                notes.append("gpu (nvml)")
            except ProbeUnavailable as exc:
                notes.append(f"gpu: no probe works here ({exc})")
        self.note = "watching " + ", ".join(notes) if notes else ""
        if notes and not self._input and not self._gpu:
            self.note = "NIMBY is on but no probe works here: " + ", ".join(notes)
        for line in notes:
            if "no probe works" in line:
                log.warning("NIMBY %s: the node cannot tell when this PC is in use", line)

    def check(self, now: float) -> tuple[str, float | None]:
        """Why the PC claims the node now ("" when not) and until when; probes run at most every ``interval``."""
        tick = self._monotonic()
        if tick - self._last_sample < self.interval:
            return self._answer
        self._last_sample = tick
        idle = gpu = None
        if self._input is not None:
            try:
                idle = self._input.idle_seconds()
            except ProbeUnavailable as exc:
                log.warning("NIMBY input probe %s stopped: %s", self._input.name, exc)
                self._input.close()
                self._input = None
                self.note = f"input probe stopped: {exc}"
        if self._gpu is not None:
            gpu = self._gpu.other_mb()
        self._answer = self.watch.observe(now, input_idle=idle, other_gpu_mb=gpu)
        return self._answer

    def close(self) -> None:
        for probe in (self._input, self._gpu):
            if probe is not None:
                probe.close()
        self._input = self._gpu = None
