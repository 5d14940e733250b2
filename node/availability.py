"""The owner's levers on this node (pause, resume, the schedule, NIMBY) and what they do to its jobs.

:class:`Steward` keeps the levers, asks :func:`farm.core.availability.decide` for the state, and when
the state changes tells the farm at once (a ``load`` event carrying the state, then the mDNS TXT) and
applies the node's :class:`~farm.core.availability.OnReturn` setting: queued jobs are always handed
back (cancelled, so the farm runs them elsewhere); running ones too when the setting is ``yield``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import zoneinfo
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo

from farm.core.availability import Availability, OnReturn, Signals, State, decide, on_return
from farm.core.nimby import NimbyPolicy
from farm.core.schedule import Schedule
from farm.core.schedule import parse as parse_schedule
from node.config import NodeConfig
from node.executor import Clock, JobRunner
from node.nimby import NimbySensor

log = logging.getLogger(__name__)


def local_zone(name: str = "") -> tzinfo:
    """The schedule's time zone: ``name`` (IANA), else this PC's (``TZ``, ``/etc/localtime``), else its UTC offset."""
    for candidate in (name, os.environ.get("TZ", "").lstrip(":")):
        if candidate:
            with contextlib.suppress(zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
                return zoneinfo.ZoneInfo(candidate)
    with contextlib.suppress(OSError, ValueError), open("/etc/localtime", "rb") as f:
        return zoneinfo.ZoneInfo.from_file(f)
    fixed = datetime.now().astimezone().tzinfo  # Windows without tzdata: no DST rules, only today's offset
    assert fixed is not None
    return fixed


def overrides(config: NodeConfig) -> dict[State, OnReturn]:
    """The node's on-return settings per state."""
    return {
        State.PAUSED: OnReturn(config.on_pause),
        State.SCHEDULE: OnReturn(config.on_schedule),
        State.NIMBY: OnReturn(config.on_nimby),
    }


#: What the NIMBY watch says at ``now``: why the PC is claimed ("" when not), and until when.
NimbyCheck = Callable[[float], tuple[str, float | None]]


class Steward:
    """The node's availability: levers in, one :class:`Availability` out, transitions applied to the runner."""

    def __init__(
        self,
        runner: JobRunner,
        *,
        schedule: Schedule | None = None,
        tz: tzinfo | None = None,
        overrides: Mapping[State, OnReturn] | None = None,
        nimby: NimbyCheck | None = None,
        clock: Clock,
    ) -> None:
        self.runner = runner
        self.schedule = schedule or Schedule()
        self.tz = tz
        self.overrides = dict(overrides or {})
        self.nimby = nimby
        self.clock = clock
        self.paused_until: float | None = None
        self.pause_reason = ""
        self.current = Availability()
        self.listeners: list[Callable[[Availability], None]] = []
        self.sensor: NimbySensor | None = None  # the NIMBY probes, when the node watches any
        runner.availability = lambda: self.current

    @property
    def nimby_note(self) -> str:
        """Which NIMBY probes watch this PC, or that none works ("" when NIMBY is off)."""
        return self.sensor.note if self.sensor else ""

    def close(self) -> None:
        if self.sensor is not None:
            self.sensor.close()

    # -- the owner's levers ------------------------------------------------------------------------
    def pause(self, seconds: float | None = None, reason: str = "") -> Availability:
        """Pause now, for ``seconds`` (None: until resumed)."""
        now = self.clock()
        self.paused_until = math.inf if seconds is None else now + seconds
        self.pause_reason = reason or "paused by its owner"
        return self.check()

    def resume(self) -> Availability:
        """Undo a pause and a drain (not a shutdown); the schedule and NIMBY still apply."""
        self.paused_until = None
        self.pause_reason = ""
        self.runner.undrain()
        return self.check()

    # -- the decision --------------------------------------------------------------------------------
    def signals(self, now: float) -> Signals:
        nimby, nimby_until = self.nimby(now) if self.nimby is not None else ("", None)
        tz = self.tz
        if tz is None or self.schedule.always:
            is_open, change = True, None
        else:
            is_open, change = self.schedule.state(now, tz)
        return Signals(
            draining=self.runner.draining,
            paused_until=self.paused_until,
            pause_reason=self.pause_reason,
            nimby=nimby,
            nimby_until=nimby_until,
            schedule_open=is_open,
            schedule_change=change,
        )

    def check(self) -> Availability:
        """Decide again (every second, and after each lever); on a change, tell and act."""
        now = self.clock()
        if self.paused_until is not None and self.paused_until <= now:
            self.paused_until, self.pause_reason = None, ""
        new = decide(self.signals(now), now)
        old, self.current = self.current, new
        if new.state is not old.state or new.reason != old.reason or new.until != old.until:
            if new.state is not old.state:
                log.info("availability: %s", new.label())
            self.runner.publish_load()  # first, so the farm knows before any job it gets back
            if not new.available and old.available and new.state is not State.DRAINING:
                self._hand_back(new)  # a drain lets its queued jobs finish (a shutdown's grace)
            for listener in list(self.listeners):
                listener(new)
        return new

    def _hand_back(self, new: Availability) -> None:
        setting = on_return(new.state, self.overrides)
        why = f"handed back: this node is {new.label()}"
        self.runner.hand_back(why, running=setting is OnReturn.YIELD)


def steward(config: NodeConfig, runner: JobRunner, clock: Clock) -> Steward:
    """The steward for a node started with ``config`` (its NIMBY probes opened when it asks for them)."""
    schedule = parse_schedule(config.schedule)
    sensor = None
    if config.nimby:
        policy = NimbyPolicy(frozenset(config.nimby), config.nimby_idle_minutes * 60, config.nimby_gpu_mb)
        sensor = NimbySensor(policy)
    made = Steward(
        runner,
        schedule=schedule,
        tz=None if schedule.always else local_zone(config.timezone),
        overrides=overrides(config),
        nimby=sensor.check if sensor else None,
        clock=clock,
    )
    made.sensor = sensor
    return made
