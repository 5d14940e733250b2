"""Crop or whole image: which way an inpaint goes to a node (pure; the dispatcher feeds it measurements).

Shipping the crop saves link time but costs this PC a full-frame decode (to cut) and a full-frame encode
(to paste the result back). On a fast link with a cheap engine that CPU time is the bottleneck, and the
node should rather get the whole input and do all of it itself; on a slow link the crop wins by far.
The choice compares the two: the extra link time of the whole files (up, and the result down) against
this PC's measured seconds per input byte for cutting and pasting.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CutCost:
    """This PC's seconds per input byte to cut a crop and paste its result back (moving average)."""

    alpha: float = 0.3
    seconds_per_byte: float | None = None

    def add(self, seconds: float, nbytes: int) -> None:
        if seconds <= 0 or nbytes <= 0:
            return
        rate = seconds / nbytes
        self.seconds_per_byte = (
            rate
            if self.seconds_per_byte is None
            else self.seconds_per_byte + self.alpha * (rate - self.seconds_per_byte)
        )


def send_whole(whole_bytes: int, ship_ratio: float, link_rate: float | None, cut: CutCost, margin: float = 0.8) -> bool:
    """Whether the whole input should travel instead of its crop: only once both the link and the cut are
    measured, and only when the whole files' extra link time is clearly less than the cut's CPU time."""
    if link_rate is None or cut.seconds_per_byte is None or whole_bytes <= 0:
        return False
    extra_link = 2 * whole_bytes * (1.0 - min(ship_ratio, 1.0)) / link_rate  # the input up, its result down
    return extra_link < margin * cut.seconds_per_byte * whole_bytes
