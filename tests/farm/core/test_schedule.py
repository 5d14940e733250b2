"""The weekly schedule (farm.core.schedule): parsing, refusing bad lines by name, open/close on a fake clock, DST."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from farm.core.schedule import ScheduleError, parse

BERLIN = ZoneInfo("Europe/Berlin")
NIGHTS_AND_WEEKENDS = parse(["mon-fri 19:00-08:00", "sat-sun"])


def at(text: str, tz: ZoneInfo = BERLIN) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def local(ts: float | None, tz: ZoneInfo = BERLIN) -> str:
    assert ts is not None
    return datetime.fromtimestamp(ts, tz).strftime("%a %Y-%m-%d %H:%M %Z")


def test_no_lines_is_always_open() -> None:
    assert parse([]).state(at("2026-06-01 12:00"), BERLIN) == (True, None)
    assert parse("").always


def test_a_week_of_nights_and_weekends() -> None:
    s = NIGHTS_AND_WEEKENDS
    assert s.state(at("2026-06-03 12:00"), BERLIN) == (False, at("2026-06-03 19:00"))  # Wednesday noon
    assert s.state(at("2026-06-03 19:00"), BERLIN) == (True, at("2026-06-04 08:00"))  # opens on the minute
    assert s.state(at("2026-06-04 07:59"), BERLIN) == (True, at("2026-06-04 08:00"))
    assert s.state(at("2026-06-04 08:00"), BERLIN)[0] is False
    # Friday night runs into the weekend and on to Monday 00:00 (Monday's night starts at 19:00)
    is_open, change = s.state(at("2026-06-05 23:00"), BERLIN)
    assert is_open and local(change) == "Mon 2026-06-08 00:00 CEST"


def test_windows_keep_local_hours_across_dst() -> None:
    daily = parse("daily 19:00-08:00")
    # spring forward (Berlin, 2026-03-29 02:00 -> 03:00): the night is an hour shorter, still 08:00 local
    is_open, change = daily.state(at("2026-03-28 23:00"), BERLIN)
    assert is_open and local(change) == "Sun 2026-03-29 08:00 CEST"
    assert change - at("2026-03-28 19:00") == 12 * 3600  # 13 wall-clock hours, 12 real ones
    # fall back (2026-10-25 03:00 -> 02:00): an hour longer, and the close is still 08:00 local
    is_open, change = daily.state(at("2026-10-24 20:00"), BERLIN)
    assert is_open and local(change) == "Sun 2026-10-25 08:00 CET"
    assert change - at("2026-10-24 19:00") == 14 * 3600
    closed, opens = daily.state(at("2026-10-25 12:00"), BERLIN)
    assert not closed and local(opens) == "Sun 2026-10-25 19:00 CET"


def test_a_window_over_the_dst_gap_still_opens() -> None:
    s = parse("sun 02:30-04:00")  # 02:30 does not exist on 2026-03-29 in Berlin
    is_open, change = s.state(at("2026-03-29 01:00"), BERLIN)
    assert not is_open and change is not None and local(change).startswith("Sun 2026-03-29 03:")


def test_day_lists_ranges_and_aliases() -> None:
    s = parse("mon,wed 12:00-13:30; weekends")
    assert s.state(at("2026-06-01 12:30"), BERLIN)[0]  # Monday
    assert not s.state(at("2026-06-02 12:30"), BERLIN)[0]  # Tuesday
    assert s.state(at("2026-06-06 03:00"), BERLIN)[0]  # Saturday
    assert parse("fri-mon").windows[0].days == frozenset({4, 5, 6, 0})  # wraps over the week's end
    assert parse("Monday 08:00-24:00").windows[0].end == 86400
    assert parse("mon 08:00:30-08:00:45").windows[0].start == 8 * 3600 + 30


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("mon-fry 19:00-08:00", "unknown day 'fry'"),
        ("mon 25:00-08:00", "'25:00' is not a time of day"),
        ("mon 19:00", "not a time range"),
        ("mon 8-9", "is not a time like 08:00"),
        ("mon 10:00-10:00", "same time"),
        ("mon tue 10:00-11:00", "expected days"),
    ],
)
def test_a_bad_line_is_refused_by_name(line: str, says: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(["sat-sun", line])
    assert f"schedule line 2 {line!r}" in str(caught.value) and says in str(caught.value)
