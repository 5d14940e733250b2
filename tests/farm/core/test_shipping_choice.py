"""Crop or whole image for a node: the extra link time of the whole files against this PC's cut cost."""

from __future__ import annotations

from farm.core.shipping_choice import CROP_SAVES, CUT_FLOOR, CutCost, send_whole

MB = 1_000_000


def test_a_fast_link_takes_the_whole_image_a_slow_one_the_crop() -> None:
    cut = CutCost()
    cut.add(1.5, 40 * MB)  # decoding and re-encoding a 24 MP PNG here: 1.5 s
    assert send_whole(40 * MB, 0.03, 125 * MB, cut)  # 1 Gbit/s: 0.62 s more on the wire < 1.5 s
    assert not send_whole(40 * MB, 0.03, 12.5 * MB, cut)  # 100 Mbit/s: 6.2 s more on the wire
    assert not send_whole(4 * MB, 0.03, 12.5 * MB, CutCost(seconds_per_byte=0.1 / MB))  # a JPEG, cheap to cut


def test_an_unmeasured_link_gets_the_whole_input_then_an_unmeasured_cut_the_crop() -> None:
    """A node's first input travels whole (no cut on this PC before the link is known; its upload
    measures it); with the link measured and no cut yet, a crop is cut, and that measures the cut."""
    assert send_whole(40 * MB, 0.03, None, CutCost())
    assert send_whole(40 * MB, 0.03, None, CutCost(seconds_per_byte=1e-9))
    assert not send_whole(40 * MB, 0.03, 125 * MB, CutCost())
    assert not send_whole(40 * MB, 0.03, 12.5 * MB, CutCost())
    assert not send_whole(0, 0.03, None, CutCost())  # nothing to send


def test_a_link_faster_than_any_cut_could_be_skips_measuring_the_cut() -> None:
    """A 24 MP JPEG of 5 MB on a measured 1 Gbit/s link: its whole files take 0.08 s more on the wire,
    less than decoding the frame at the fastest pace (CUT_FLOOR); the same photo as a 40 MB PNG does not."""
    assert CUT_FLOOR * 24 * 0.8 > 2 * 5 * MB / (125 * MB)
    assert send_whole(5 * MB, 0.03, 125 * MB, CutCost(), megapixels=24)
    assert not send_whole(40 * MB, 0.03, 125 * MB, CutCost(), megapixels=24)
    assert not send_whole(5 * MB, 0.03, 12.5 * MB, CutCost(), megapixels=24)  # 100 Mbit/s: cut one to see
    cost = CutCost()
    cost.add(0.0, 10)  # an empty sample is no sample
    assert cost.seconds_per_byte is None


def test_a_crop_that_saves_this_pc_little_sends_the_whole_image_whatever_the_link() -> None:
    """OpenCV's inpaint: cutting and pasting a 24 MP frame (2.2 s) is most of the edit here (2.4 s)."""
    cut = CutCost()
    cut.add(2.2, 40 * MB)
    assert send_whole(40 * MB, 0.03, 12.5 * MB, cut, local_seconds=2.4)  # even at 100 Mbit/s
    assert send_whole(40 * MB, 0.03, None, cut, local_seconds=2.4)  # and before the link is measured
    # a model engine: the edit takes 20 s here, the cut saves this PC 18 of them
    assert not send_whole(40 * MB, 0.03, 12.5 * MB, cut, local_seconds=20.0)
    assert not send_whole(40 * MB, 0.03, 12.5 * MB, cut, local_seconds=2.2 / (1 - CROP_SAVES) + 0.01)
    assert send_whole(40 * MB, 0.03, 12.5 * MB, cut, local_seconds=2.2 / (1 - CROP_SAVES) - 0.01)


def test_an_edit_on_a_gpu_here_sends_the_crop_where_the_whole_files_would_take_longer_than_the_edit() -> None:
    """The same cut (2.2 s for 40 MB) beside a 2.4 s edit that runs on this PC's GPU: its CPU idles during
    the edit, so at 100 Mbit/s (6.2 s more link for the whole files) the crop goes; at 1 Gbit/s (0.6 s) the
    whole input still does, as it does for an edit on the CPU."""
    cut = CutCost()
    cut.add(2.2, 40 * MB)
    assert not send_whole(40 * MB, 0.03, 12.5 * MB, cut, local_seconds=2.4, off_cpu=True)
    assert send_whole(40 * MB, 0.03, 125 * MB, cut, local_seconds=2.4, off_cpu=True)
    assert send_whole(40 * MB, 0.03, 12.5 * MB, cut, local_seconds=2.4, off_cpu=False)
    assert send_whole(40 * MB, 0.03, None, cut, local_seconds=2.4, off_cpu=True)  # a link not measured yet


def test_a_guessed_cut_cost_gives_way_to_the_first_measured_one() -> None:
    cost = CutCost()
    cost.guess(2.0, 1 * MB)
    assert cost.seconds_per_byte == 2.0 / MB and not cost.measured
    cost.add(1.0, 1 * MB)  # the first real figure replaces the guess, not averaged with it
    assert cost.seconds_per_byte == 1.0 / MB and cost.measured
    cost.guess(9.0, 1 * MB)  # a guess never overrides a measure
    assert cost.seconds_per_byte == 1.0 / MB


def test_a_light_engine_sends_the_whole_input_on_any_link_and_whole_sends_are_no_crop() -> None:
    cut = CutCost()
    cut.add(0.1, 40 * MB)  # even a cheap cut
    assert send_whole(40 * MB, 0.03, 1 * MB, cut, light=True)  # and an 8 Mbit/s link
    assert not send_whole(40 * MB, 0.03, 1 * MB, cut)
    cut.cut_size(0.03)
    cut.cut_size(0.05)
    assert cut.crop_ratio is not None and 0.03 < cut.crop_ratio < 0.05
