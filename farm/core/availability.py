"""Whether a node takes new jobs, and why not: one pure decision from the owner's levers and ``now``.

A node is ``available``, or ``paused`` (by its owner, maybe until a time), ``draining`` (shutting down
or being serviced), ``nimby`` (its user is at the PC, or another program uses the GPU) or ``schedule``
(outside the owner's weekly windows). The first that holds wins, in that order. What happens to a
job already running when a node stops being available is the node's :class:`OnReturn` setting.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class State(enum.StrEnum):
    """A node's availability, as in ``/v1/info`` ``state`` and the mDNS TXT ``state`` key."""

    AVAILABLE = "available"
    PAUSED = "paused"
    DRAINING = "draining"
    NIMBY = "nimby"
    SCHEDULE = "schedule"


class OnReturn(enum.StrEnum):
    """What a running job does when the node stops being available."""

    FINISH = "finish"  # it runs to its end there; only new jobs stay away
    YIELD = "yield"  # it is stopped and handed back, so the farm runs it elsewhere at once


#: The default per state: the owner's pause and the schedule let a job finish; an active user gets the PC back.
DEFAULT_ON_RETURN: Mapping[State, OnReturn] = {
    State.PAUSED: OnReturn.FINISH,
    State.SCHEDULE: OnReturn.FINISH,
    State.NIMBY: OnReturn.YIELD,
    State.DRAINING: OnReturn.FINISH,
}


@dataclass(frozen=True, slots=True)
class Availability:
    """A node's state, a line for a person saying why, and until when (UNIX seconds; None: no end known)."""

    state: State = State.AVAILABLE
    reason: str = ""
    until: float | None = None

    @property
    def available(self) -> bool:
        return self.state is State.AVAILABLE

    def label(self) -> str:
        """``paused: by its owner`` - the state and, when it is not available, why."""
        return str(self.state) if self.available or not self.reason else f"{self.state}: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {"state": str(self.state), "reason": self.reason, "until": self.until}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Availability:
        """From ``/v1/info`` (or a load event); an unknown state word counts as not available."""
        word = str(data.get("state") or State.AVAILABLE)
        until = data.get("until")
        try:
            state = State(word)
        except ValueError:
            return cls(State.PAUSED, f"unknown state {word!r} (a newer LAN Farm?)", None)
        return cls(state, str(data.get("reason") or ""), float(until) if until is not None else None)


@dataclass(frozen=True, slots=True)
class Signals:
    """The levers and observations the decision reads, each already reduced to a value.

    ``paused_until``: None when not paused, ``math.inf`` for "until resumed", else UNIX seconds.
    ``nimby``: why the PC's user or another program claims it now ("" when nobody does), and when
    the node may offer itself again (None: not known yet, it depends on the user staying away).
    ``schedule_open`` and ``schedule_change``: whether now is inside the weekly windows, and when
    that next changes (None: never, as with no schedule).
    """

    draining: bool = False
    paused_until: float | None = None
    pause_reason: str = ""
    nimby: str = ""
    nimby_until: float | None = None
    schedule_open: bool = True
    schedule_change: float | None = None


def decide(signals: Signals, now: float) -> Availability:
    """The node's availability at ``now``; a pause whose time has passed no longer counts."""
    if signals.draining:
        return Availability(State.DRAINING, "shutting down or being serviced: it takes no new jobs")
    if signals.paused_until is not None and signals.paused_until > now:
        until = None if math.isinf(signals.paused_until) else signals.paused_until
        return Availability(State.PAUSED, signals.pause_reason or "paused by its owner", until)
    if signals.nimby:
        return Availability(State.NIMBY, signals.nimby, signals.nimby_until)
    if not signals.schedule_open:
        return Availability(State.SCHEDULE, "outside its schedule", signals.schedule_change)
    return Availability()


def on_return(state: State, overrides: Mapping[State, OnReturn] | None = None) -> OnReturn:
    """The setting for jobs running when the node enters ``state`` (the owner's override, else the default)."""
    if overrides and state in overrides:
        return overrides[state]
    return DEFAULT_ON_RETURN.get(state, OnReturn.FINISH)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_UNIT = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``2h``, ``90m``, ``1h30m``, ``45s``, ``1d`` (a bare number is minutes). ValueError if not one."""
    compact = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", compact):
        seconds = float(compact) * 60
    else:
        parts = _DURATION.findall(compact)
        if not parts or "".join(n + u for n, u in parts) != compact:
            raise ValueError(f"{text!r} is not a duration like 2h, 90m, 1h30m or 45s")
        seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r}: a duration is above 0")
    return seconds
