"""The line of uploads on this PC's shared link (pure: bytes and a rate in, expected ends out)."""

from __future__ import annotations

from farm.core.scheduler.uplink import SharedUplink

MB = 1_000_000


def test_uploads_sent_at_once_end_one_after_another() -> None:
    line = SharedUplink()
    line.sent(("a", "n1"), 40 * MB, 0.0)
    line.sent(("b", "n2"), 40 * MB, 0.0)
    assert line.end(0.0, None) == 0.0  # no rate measured yet: nothing to go on
    assert line.end(0.0, 10 * MB) == 8.0
    assert line.end(5.0, 10 * MB) == 8.0
    assert not line.arrived(("a", "n1"), 4.0, 10 * MB)  # on time
    line.dropped(("b", "n2"))
    line.sent(("c", "n1"), 10 * MB, 20.0)  # the line was empty by then: it starts at once
    assert line.end(20.0, 10 * MB) == 21.0


def test_an_upload_that_arrives_early_brings_the_rest_forward() -> None:
    line = SharedUplink()
    for job in "abc":
        line.sent((job, "n"), 40 * MB, 0.0)
    assert line.arrived(("a", "n"), 3.0, 10 * MB)  # expected at 4 s: b starts now
    assert len(line) == 2 and line.end(3.0, 10 * MB) == 11.0
    assert not line.arrived(("a", "n"), 6.0, 10 * MB)  # told twice: nothing changes
    assert not line.arrived(("c", "n"), 12.0, 10 * MB)  # later than expected, and out of order
    assert len(line) == 1 and line.end(12.0, 10 * MB) == 16.0  # b is still to come


def test_a_dropped_upload_leaves_the_line() -> None:
    line = SharedUplink()
    line.sent(("a", "n1"), 40 * MB, 0.0)
    line.sent(("b", "n2"), 30 * MB, 0.0)
    line.dropped(("a", "n1"))  # cancelled before it went
    assert line.end(0.0, 10 * MB) == 3.0
    line.dropped(("b", "n2"))
    assert len(line) == 0 and line.end(1.0, 10 * MB) == 1.0
