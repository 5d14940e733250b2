"""Crop or whole image for a node: the extra link time of the whole files against this PC's cut cost."""

from __future__ import annotations

from farm.core.shipping_choice import CutCost, send_whole

MB = 1_000_000


def test_a_fast_link_takes_the_whole_image_a_slow_one_the_crop() -> None:
    cut = CutCost()
    cut.add(1.5, 40 * MB)  # decoding and re-encoding a 24 MP PNG here: 1.5 s
    assert send_whole(40 * MB, 0.03, 125 * MB, cut)  # 1 Gbit/s: 0.62 s more on the wire < 1.5 s
    assert not send_whole(40 * MB, 0.03, 12.5 * MB, cut)  # 100 Mbit/s: 6.2 s more on the wire
    assert not send_whole(4 * MB, 0.03, 12.5 * MB, CutCost(seconds_per_byte=0.1 / MB))  # a JPEG, cheap to cut


def test_nothing_measured_means_the_crop() -> None:
    assert not send_whole(40 * MB, 0.03, None, CutCost(seconds_per_byte=1e-6))
    assert not send_whole(40 * MB, 0.03, 125 * MB, CutCost())
    cost = CutCost()
    cost.add(0.0, 10)  # an empty sample is no sample
    assert cost.seconds_per_byte is None
