"""NIMBY ("not in my back yard"): the PC's user or another program claims the node. The decision, purely.

Observations come in as values (the input idle time, other programs' GPU memory) with ``now``; the
watch remembers the last claim and says why the node is claimed and until when it would offer itself
again, which is after ``idle_seconds`` without a claim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

INPUT = "input"
GPU = "gpu"
SIGNALS = (INPUT, GPU)


@dataclass(frozen=True, slots=True)
class NimbyPolicy:
    """Which signals count, how long the PC must be left alone, and how much GPU memory is "in use"."""

    signals: frozenset[str] = frozenset({INPUT})
    idle_seconds: float = 600.0
    gpu_mb: float = 1024.0


class NimbyWatch:
    """Feed it observations; it answers (why the node is claimed or "", until when or None)."""

    def __init__(self, policy: NimbyPolicy) -> None:
        self.policy = policy
        self.last_claim = -math.inf
        self.reason = ""

    def observe(self, now: float, *, input_idle: float | None, other_gpu_mb: float | None) -> tuple[str, float | None]:
        """``input_idle``: seconds since the user's last input (None: unknown); ``other_gpu_mb``: GPU
        memory other programs hold (None: unknown). Unknown never claims the node."""
        p = self.policy
        if INPUT in p.signals and input_idle is not None and input_idle < p.idle_seconds:
            since = now - max(0.0, input_idle)
            if since >= self.last_claim:
                self.last_claim, self.reason = since, "its user is at the PC"
        if GPU in p.signals and other_gpu_mb is not None and other_gpu_mb >= p.gpu_mb:
            self.last_claim, self.reason = now, f"another program uses the GPU ({other_gpu_mb:.0f} MB)"
        until = self.last_claim + p.idle_seconds
        if now < until:
            return self.reason, until
        return "", None
