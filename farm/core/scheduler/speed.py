"""Per-worker estimates: engine speed (a moving average of seconds per megapixel) and link rate."""

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

    def recall(self, seconds_per_mp: float) -> bool:
        """A figure measured in an earlier batch: it stands while nothing is known here (it counts as no
        sample, so the first timing replaces it). True if it was taken."""
        if self.samples or self.seconds_per_mp is not None or seconds_per_mp <= 0:
            return False
        self.seconds_per_mp = seconds_per_mp
        return True

    def predict(self, megapixels: float) -> float | None:
        if self.seconds_per_mp is None:
            return None
        return self.seconds_per_mp * max(megapixels, 1e-3)


#: How much transfer a recalled link rate weighs as (see :meth:`LinkEstimate.recall`).
RECALLED_SECONDS = 0.1


@dataclass(slots=True)
class LinkEstimate:
    """A worker's link rate in bytes per second, from the transfers the farm timed (uploads and
    downloads). Sums with a decay: big transfers weigh more than small ones, whose time is mostly the
    round trip, and the newest count most."""

    decay: float = 0.7
    bytes: float = 0.0
    seconds: float = 0.0
    measured: bool = False  # a transfer was timed (not only a recalled rate)

    def add(self, nbytes: int, seconds: float) -> None:
        if nbytes <= 0 or seconds <= 0:
            return
        self.measured = True
        self.bytes = self.bytes * self.decay + nbytes
        self.seconds = self.seconds * self.decay + seconds

    def recall(self, rate: float) -> bool:
        """A rate measured in an earlier batch, weighed as ``RECALLED_SECONDS`` of transfer: the first
        real uploads outweigh it (a 5 MB input on a 100 Mbit/s link: 0.4 s). Taken (True) only while
        nothing is known of this link."""
        if self.seconds > 0 or rate <= 0:
            return False
        self.bytes, self.seconds = rate * RECALLED_SECONDS, RECALLED_SECONDS
        return True

    @property
    def rate(self) -> float | None:
        return self.bytes / self.seconds if self.seconds > 0 else None

    def seconds_for(self, nbytes: float) -> float:
        """How long ``nbytes`` take on this link (0 while nothing is measured)."""
        rate = self.rate
        return nbytes / rate if rate else 0.0
