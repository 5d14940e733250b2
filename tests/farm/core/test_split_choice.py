"""When a big upscale is cut into tiles for several workers (farm/core/split_choice.py)."""

from __future__ import annotations

import pytest

from farm.core.split_choice import (
    MIN_SECONDS,
    TILES_PER_WORKER,
    Candidate,
    parse_tiles,
    split_seconds,
    tile_count,
)

MB = 1 << 20
GBIT = 125e6  # bytes per second
LOCAL = Candidate(1.0, None, local=True)


def node(seconds_per_mp: float | None = 1.0, link: float | None = GBIT, slots: int = 1) -> Candidate:
    return Candidate(seconds_per_mp, link, slots=slots)


def test_parse_tiles() -> None:
    assert parse_tiles("auto") == "auto" and parse_tiles(" OFF ") == "off" and parse_tiles("12") == 12
    for bad in ("many", "0", "-3", "5000", "2.5"):
        with pytest.raises(ValueError, match="--tiles"):
            parse_tiles(bad)


def test_off_and_a_number_of_tiles_are_obeyed() -> None:
    workers = [LOCAL, node(), node()]
    assert tile_count("off", 12.0, 40 * MB, workers, max_tiles=100) == 1
    assert tile_count(9, 12.0, 40 * MB, workers, max_tiles=100) == 9
    assert tile_count(9, 12.0, 40 * MB, [], max_tiles=100) == 9  # asked for: the tiles wait for workers
    assert tile_count(9, 0.2, MB, workers, max_tiles=3) == 3  # no tile smaller than the smallest


def test_a_big_upscale_with_idle_workers_is_split_one_tile_each_when_they_are_alike() -> None:
    workers = [LOCAL, node(), node(), node()]
    assert tile_count("auto", 12.0, 40 * MB, workers, max_tiles=180) == 4


def test_mixed_speeds_get_more_tiles_than_workers_so_the_slow_one_takes_a_smaller_share() -> None:
    workers = [Candidate(2.0, None, local=True), node(), node(), node()]
    assert tile_count("auto", 12.0, 40 * MB, workers, max_tiles=180) == TILES_PER_WORKER * 4


def test_nothing_to_gain_means_one_piece() -> None:
    workers = [LOCAL, node(), node()]
    assert tile_count("auto", 12.0, 40 * MB, [LOCAL], max_tiles=180) == 1  # one worker
    assert tile_count("auto", 12.0, 40 * MB, workers, max_tiles=180, queued_elsewhere=2) == 1  # the batch fills them
    small = MIN_SECONDS * 0.5  # megapixels at 1 s/MP: shorter than worth splitting
    assert tile_count("auto", small, MB, workers, max_tiles=180) == 1
    assert tile_count("auto", 12.0, 40 * MB, workers, max_tiles=1) == 1  # too small to cut


def test_a_slow_link_keeps_the_job_whole_on_the_pc_that_has_it() -> None:
    """Over a 10 Mbit/s link a tile's bytes take longer than computing it here: no split."""
    slow = 1.25e6
    workers = [LOCAL, node(link=slow), node(link=slow)]
    assert tile_count("auto", 12.0, 400 * MB, workers, max_tiles=180) == 1
    fast = [LOCAL, node(), node()]
    assert tile_count("auto", 12.0, 400 * MB, fast, max_tiles=180) > 1


def test_one_much_faster_worker_is_not_slowed_down_by_splitting() -> None:
    """A GPU 50x faster than two CPUs: its time alone beats spreading tiles (the rounds wait for the CPUs)."""
    gpu = node(0.05)
    workers = [Candidate(2.5, None, local=True), gpu, node(2.5)]
    assert tile_count("auto", 100.0, 40 * MB, workers, max_tiles=1000) == 1
    even = [Candidate(1.0, None, local=True), node(1.0), node(1.0)]
    assert tile_count("auto", 100.0, 40 * MB, even, max_tiles=1000) > 1


def test_unmeasured_workers_borrow_the_measured_ones_speed() -> None:
    measured = [LOCAL, node(4.0), node(None)]
    assumed = [LOCAL, node(4.0), node(4.0)]
    assert tile_count("auto", 12.0, 40 * MB, measured, max_tiles=180) == tile_count(
        "auto", 12.0, 40 * MB, assumed, max_tiles=180
    )


def test_split_estimate_scales_with_the_workers() -> None:
    one = split_seconds([1.0], [LOCAL], 12.0, 0, 8)
    four = split_seconds([1.0] * 4, [LOCAL, node(), node(), node()], 12.0, 40 * MB, 8)
    assert four < one / 3
