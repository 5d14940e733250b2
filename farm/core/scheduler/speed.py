"""Per-worker, per-engine speed estimates: a moving average of seconds per megapixel."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SpeedEstimate:
    """EWMA of seconds per megapixel. The first sample (warm-up: model loading) is only provisional:
    the second replaces it instead of being averaged with it."""

    alpha: float = 0.3
    seconds_per_mp: float | None = None
    samples: int = 0

    def add(self, seconds: float, megapixels: float) -> None:
        self.samples += 1
        rate = seconds / max(megapixels, 1e-3)
        if self.samples <= 2 or self.seconds_per_mp is None:
            self.seconds_per_mp = rate
        else:
            self.seconds_per_mp += self.alpha * (rate - self.seconds_per_mp)

    def at_least(self, seconds: float, megapixels: float) -> None:
        """A job took longer than ``seconds`` here (it lost a race): a floor while nothing is measured.

        It counts as no sample, so the first real one replaces it."""
        rate = seconds / max(megapixels, 1e-3)
        if self.samples == 0:
            self.seconds_per_mp = max(self.seconds_per_mp or 0.0, rate)

    def predict(self, megapixels: float) -> float | None:
        if self.seconds_per_mp is None:
            return None
        return self.seconds_per_mp * max(megapixels, 1e-3)
