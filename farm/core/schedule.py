"""A node's weekly schedule: when its owner lends it to the farm. Parsed and decided here, purely.

One window a line: days, then an optional local time range, e.g. ``mon-fri 19:00-08:00`` (from 19:00
to 08:00 the next morning), ``sat-sun`` (all day), ``mon,wed 12:00-13:30``, ``daily 22:00-06:00``.
Times are wall-clock in the node's time zone (passed in as a ``tzinfo``), so a window keeps its
local hours across daylight-saving changes. No lines: always open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo

from farm.errors import FarmError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_ALIASES = {"daily": "mon-sun", "weekdays": "mon-fri", "weekends": "sat-sun", "weekend": "sat-sun"}
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_TIME = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")  # HH:MM, or HH:MM:SS
DAY = 86400


class ScheduleError(FarmError, ValueError):
    """A schedule line that cannot be read; the message quotes the line and says what is wrong."""


@dataclass(frozen=True, slots=True)
class Window:
    """Open on ``days`` (0 = Monday) from ``start`` to ``end`` seconds after local midnight;
    ``end <= start`` runs over midnight into the next day; 0-86400 is the whole day."""

    days: frozenset[int]
    start: int = 0
    end: int = DAY
    text: str = ""

    def intervals(self, day: date, tz: tzinfo) -> list[tuple[float, float]]:
        """The window's opening that begins on ``day`` (if it is one of its days), as UNIX seconds."""
        if day.weekday() not in self.days:
            return []
        last = day if self.end > self.start else day + timedelta(days=1)
        return [(_stamp(day, self.start, tz), _stamp(last, self.end, tz))]


@dataclass(frozen=True, slots=True)
class Schedule:
    """Weekly windows; ``state(now, tz)`` says whether the node is open and when that next changes."""

    windows: tuple[Window, ...] = ()

    @property
    def always(self) -> bool:
        return not self.windows

    def lines(self) -> list[str]:
        return [w.text for w in self.windows]

    def state(self, now: float, tz: tzinfo) -> tuple[bool, float | None]:
        """(open at ``now``, when that next changes: UNIX seconds, or None when it never does)."""
        if not self.windows:
            return True, None
        today = datetime.fromtimestamp(now, tz).date()
        spans = sorted(
            span
            for offset in range(-8, 9)
            for window in self.windows
            for span in window.intervals(today + timedelta(days=offset), tz)
        )
        merged: list[list[float]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        for start, end in merged:
            if start <= now < end:
                return True, None if end - start >= 8 * 86400 else end  # open all week: never closes
            if start > now:
                return False, start
        return False, None


def parse(lines: Iterable[str] | str) -> Schedule:
    """Windows from lines (a string may hold several, split by ``;`` or newlines). Raises ScheduleError."""
    if isinstance(lines, str):
        lines = re.split(r"[;\n]", lines)
    windows = []
    for number, raw in enumerate(lines, 1):
        text = " ".join(str(raw).split()).lower()
        if not text or text.startswith("#"):
            continue
        try:
            windows.append(_window(text))
        except ScheduleError as exc:
            raise ScheduleError(f"schedule line {number} {raw.strip()!r}: {exc}") from None
    return Schedule(tuple(windows))


def _window(text: str) -> Window:
    parts = text.split(" ")
    if len(parts) > 2:
        raise ScheduleError("expected days, then an optional time range, e.g. 'mon-fri 19:00-08:00'")
    days = _days(parts[0])
    if len(parts) == 1:
        return Window(days, text=text)
    start_text, dash, end_text = parts[1].partition("-")
    if not dash:
        raise ScheduleError(f"{parts[1]!r} is not a time range like 19:00-08:00")
    start, end = _seconds(start_text), _seconds(end_text)
    if start == end:
        raise ScheduleError("the range starts and ends at the same time; leave it out for the whole day")
    if start == DAY:
        raise ScheduleError("a range cannot start at 24:00")
    return Window(days, start, end, text)


def _days(text: str) -> frozenset[int]:
    text = _ALIASES.get(text, text)
    out: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.partition("-")
        a = _day(first)
        b = _day(last) if dash else a
        out.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(out)


def _day(text: str) -> int:
    for index, full in enumerate(_FULL):
        if len(text) >= 3 and full.startswith(text):
            return index
    raise ScheduleError(f"unknown day {text!r} (days: {' '.join(DAYS)}, or daily, weekdays, weekends)")


def _seconds(text: str) -> int:
    match = _TIME.match(text)
    if not match:
        raise ScheduleError(f"{text!r} is not a time like 08:00")
    hours, minutes, seconds = int(match[1]), int(match[2]), int(match[3] or 0)
    if minutes > 59 or seconds > 59 or hours > 24 or (hours == 24 and (minutes or seconds)):
        raise ScheduleError(f"{text!r} is not a time of day (00:00-24:00)")
    return hours * 3600 + minutes * 60 + seconds


def _stamp(day: date, seconds: int, tz: tzinfo) -> float:
    """UNIX seconds of a local wall-clock time (a time skipped by a DST change counts as just after it)."""
    day = day + timedelta(days=seconds // DAY)
    seconds %= DAY
    return datetime.combine(day, time(seconds // 3600, seconds // 60 % 60, seconds % 60), tzinfo=tz).timestamp()
