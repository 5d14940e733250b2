"""What the farm remembers between batches (pure: the figures, their age, their file form), and how the
scheduler takes a recalled figure: it stands until this batch times its own."""

from __future__ import annotations

import json
import math

import pytest

from farm.core.remembered import MAX_AGE, MAX_PER_WORKER, Remembered, edit_key
from farm.core.scheduler import Dispatch, JobRequest, Scheduler, WorkerCaps
from farm.core.spec import EditSpec, HdStrategy
from farm.local.measurements import load_measurements, save_measurements

DAY = 24 * 3600.0
MB = 1_000_000
CV2 = frozenset({"cv2"})


def test_figures_come_back_through_the_file_form() -> None:
    mem = Remembered()
    key = edit_key(EditSpec())
    mem.note_speed("n1", key, 0.8, 1000.0)
    mem.note_link("n1", "10.0.0.2", 12.5e6, 1000.0)
    back = Remembered.from_dict(json.loads(json.dumps(mem.to_dict(now=1000.0))))
    assert back.speed("n1", key, 1001.0) == 0.8
    assert back.link("n1", "10.0.0.2", 1001.0) == 12.5e6
    assert back.link("n1", "10.0.0.3", 1001.0) is None  # another address is another link


def test_a_figure_older_than_a_month_is_neither_recalled_nor_written_again() -> None:
    mem = Remembered()
    mem.note_speed("n1", "k", 0.8, 0.0)
    mem.note_link("n1", "h", 1e6, 0.0)
    assert mem.speed("n1", "k", MAX_AGE - DAY) == 0.8
    assert mem.speed("n1", "k", MAX_AGE + DAY) is None and mem.link("n1", "h", MAX_AGE + DAY) is None
    assert mem.to_dict(now=MAX_AGE + DAY) == {"version": 1, "speeds": {}, "links": {}}
    assert mem.speed("n1", "k", -DAY) is None  # from the future (a clock set back): not trusted either


def test_another_edit_is_another_speed() -> None:
    base = EditSpec(engine="sd", params={"steps": 20})
    assert edit_key(base) == edit_key(EditSpec(engine="sd", params={"steps": 20}))
    others = [
        EditSpec(engine="sd", params={"steps": 50}),
        EditSpec(engine="sd", params={"steps": 20}, model="other.safetensors"),
        EditSpec(engine="sd", params={"steps": 20}, hd=HdStrategy("resize")),
        EditSpec(engine="lama", params={"steps": 20}),
    ]
    assert len({edit_key(base), *map(edit_key, others)}) == 5


def test_only_the_newest_figures_of_a_worker_are_kept() -> None:
    mem = Remembered()
    for i in range(MAX_PER_WORKER + 5):
        mem.note_speed("n1", f"k{i}", 1.0 + i, float(i))
    kept = mem.speeds["n1"]
    assert len(kept) == MAX_PER_WORKER and "k0" not in kept and f"k{MAX_PER_WORKER + 4}" in kept


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"version": 99, "speeds": {"n1": {"k": [1.0, 0.0]}}},
        {"version": 1, "speeds": {"n1": {"k": [-1.0, 0.0]}}},
        {"version": 1, "speeds": {"n1": {"k": ["fast", 0.0]}}},
        {"version": 1, "speeds": {"n1": {"k": [1.0]}}},
        {"version": 1, "speeds": {"n1": ["k"]}},
        {"version": 1, "links": {"n1": {"h": [math.inf, 0.0]}}},
    ],
)
def test_anything_of_an_unknown_shape_is_left_out(data: object) -> None:
    mem = Remembered.from_dict(data)
    assert mem.speeds == {} and mem.links == {}


def test_good_figures_beside_bad_ones_are_kept() -> None:
    mem = Remembered.from_dict({"version": 1, "speeds": {"n1": {"good": [0.5, 10.0], "bad": [0, 10.0]}}})
    assert mem.speeds == {"n1": {"good": (0.5, 10.0)}}


def test_the_file_missing_damaged_or_huge_reads_as_nothing_and_a_write_is_whole(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "measurements.json"
    assert load_measurements(path).speeds == {}
    path.write_text("{not json")
    assert load_measurements(path).speeds == {}
    path.write_bytes(b" " * (5 << 20))
    assert load_measurements(path).speeds == {}
    mem = Remembered()
    mem.note_speed("n1", "k", 0.5, 10.0)
    save_measurements(mem.to_dict(now=10.0), path)
    assert load_measurements(path).speeds == {"n1": {"k": (0.5, 10.0)}}
    assert [p.name for p in tmp_path.iterdir()] == ["measurements.json"]  # no temp file left beside it


# ------------------------------------------------------------------ the scheduler's side


def _two_nodes() -> Scheduler:
    s = Scheduler()
    for node in ("n1", "n2"):
        s.worker_up(WorkerCaps(node, slots=1, engines=CV2, prefetch=1), 0.0)
    return s


def _first_dispatches(s: Scheduler) -> list[tuple[str, str]]:
    out = s.add_jobs([JobRequest(f"p{i:02d}", "cv2", transfer_bytes=10 * MB) for i in range(12)], 0.0)
    return [(d.job_id, d.worker_id) for d in out if isinstance(d, Dispatch)]


def test_nodes_known_from_before_take_a_job_ahead_from_the_first_dispatch() -> None:
    """Not timed, each node gets one job (the next waits until its engine runs and something is timed);
    with their speeds and links recalled, each gets its next input at once, to upload while its first
    runs."""
    assert _first_dispatches(_two_nodes()) == [("p00", "n1"), ("p01", "n2")]
    s = _two_nodes()
    for node in ("n1", "n2"):
        s.recall(node, "cv2", 1.0)
        s.recall_link(node, 100e6)
    assert sorted(w for _, w in _first_dispatches(s)) == ["n1", "n1", "n2", "n2"]


def test_a_recalled_speed_gives_way_to_the_first_timing_and_is_not_written_back_as_measured() -> None:
    s = _two_nodes()
    s.recall("n1", "cv2", 10.0)  # from a slower day
    s.recall_link("n1", 100e6)
    assert s.measured("n1") == ({}, None)  # nothing timed here yet: nothing new to remember
    [first, *_] = [j for j, w in _first_dispatches(s) if w == "n1"]
    s.started(first, "n1", 0.0)
    s.computed(first, "n1", 1.0)
    s.link_measured("n1", 10 * MB, 10.0)  # 1 MB/s, measured
    speeds, rate = s.measured("n1")
    assert speeds == {"cv2": pytest.approx(1.0)}
    assert rate is not None and rate < 2e6  # the real transfer outweighs the recalled 100 MB/s
    assert s.expected("n1", JobRequest("x", "cv2")) == pytest.approx(1.0)


def test_a_recalled_figure_never_overrides_one_measured_in_this_run() -> None:
    s = _two_nodes()
    [first, *_] = [j for j, w in _first_dispatches(s) if w == "n1"]
    s.started(first, "n1", 0.0)
    s.computed(first, "n1", 2.0)
    s.link_measured("n1", 10 * MB, 1.0)
    s.recall("n1", "cv2", 50.0)
    s.recall_link("n1", 1.0)
    assert s.measured("n1") == ({"cv2": pytest.approx(2.0)}, pytest.approx(10e6))
