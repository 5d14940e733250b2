"""Crop or whole image: which way an inpaint goes to a node (pure; the dispatcher feeds it measurements).

Shipping the crop saves link time but costs this PC a full-frame decode (to cut) and a full-frame encode
(to paste the result back). On a fast link with a cheap engine that CPU time is the bottleneck, and the
node should rather get the whole input and do all of it itself; on a slow link the crop wins by far.
The choice compares the two: the extra link time of the whole files (up, and the result down) against
this PC's measured seconds per input byte for cutting and pasting. And whatever the link: when cutting and
pasting costs this PC about as much as running the edit itself (a cheap engine such as OpenCV's, where
decoding and encoding the frame is most of the work), a crop saves this PC nothing, so the whole input
travels and the node does all of it; the scheduler then counts the whole files on the link, and keeps the
edit here when that link is too slow for it. That holds for edits on this PC's CPU; where it edits on a GPU
its CPU idles meanwhile, and the crop still goes when the whole files would take the link longer than the
edit takes here.

Before anything is measured: a node's first input travels whole (its upload measures the link, and this
PC spends no cut on a node that may be on a fast link); once the link is known, the first crop measures
the cut, unless the link is so fast that no cut could beat it (the whole files' extra link time under
what decoding the frame takes at the fastest decoders' pace, ``CUT_FLOOR``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class CutCost:
    """This PC's seconds per input byte to cut a crop and paste its result back (moving average)."""

    alpha: float = 0.3
    seconds_per_byte: float | None = None

    measured: bool = False  # False while the figure is only a guess (from a cut whose paste is to come)
    crop_ratio: float | None = None  # a cut crop's bytes per byte of its whole files (moving average)

    def cut_size(self, ratio: float) -> None:
        """A crop was cut of ``ratio`` times its whole files (whole sends do not count: they are no crop)."""
        self.crop_ratio = ratio if self.crop_ratio is None else self.crop_ratio + self.alpha * (ratio - self.crop_ratio)

    def guess(self, seconds: float, nbytes: int) -> None:
        """A provisional figure, used only until a real one comes."""
        if not self.measured and seconds > 0 and nbytes > 0:
            self.seconds_per_byte = seconds / nbytes

    def add(self, seconds: float, nbytes: int) -> None:
        if seconds <= 0 or nbytes <= 0:
            return
        rate = seconds / nbytes
        self.seconds_per_byte = (
            rate
            if self.seconds_per_byte is None or not self.measured
            else self.seconds_per_byte + self.alpha * (rate - self.seconds_per_byte)
        )
        self.measured = True


#: A crop must save this PC at least this share of the edit's own time here, else the whole input travels.
CROP_SAVES = 0.5

#: Seconds per megapixel that cutting a crop and pasting it back take at the least (decoding the frame
#: alone at 200 MP/s: faster than libjpeg-turbo on one core): a floor until the cut is measured.
CUT_FLOOR = 0.005


def send_whole(
    whole_bytes: int,
    ship_ratio: float,
    link_rate: float | None,
    cut: CutCost,
    margin: float = 0.8,
    *,
    local_seconds: float | None = None,
    megapixels: float = 0.0,
    light: bool = False,
    off_cpu: bool = False,
) -> bool:
    """Whether the whole input should travel instead of its crop (``local_seconds``: this PC's expected
    time for the whole edit, ``megapixels`` the input's, ``light``: the engine says the edit costs less than
    decoding and encoding its frame, ``off_cpu``: this PC runs the edit on a GPU). For a light engine, or
    on a link not measured yet, yes. Then when the whole files' extra link time is clearly less than the
    cut's CPU time (measured, else its floor), or once the cut is measured, when it costs this PC more than
    ``1 - CROP_SAVES`` of the edit itself: on the CPU always (the crop would take the CPU the edit here
    needs); off it only while the whole files' extra link time is under the edit's own time here (this PC's
    CPU idles during its GPU edits, and a node slower that way than this PC would help only by the crop:
    the lab's 40 MB PNGs over 100 Mbit/s, 7 s of link a job against 2.2 s here)."""
    if whole_bytes <= 0:
        return False
    if light or link_rate is None:
        return True
    extra_link = 2 * whole_bytes * (1.0 - min(ship_ratio, 1.0)) / link_rate  # the input up, its result down
    if cut.seconds_per_byte is None:
        return extra_link < margin * CUT_FLOOR * megapixels
    cut_seconds = cut.seconds_per_byte * whole_bytes
    if local_seconds is not None and cut_seconds > (1.0 - CROP_SAVES) * local_seconds:
        return not off_cpu or extra_link < local_seconds
    return extra_link < margin * cut_seconds
