"""The availability decision (farm.core.availability): which lever wins, when a pause ends, on-return settings."""

from __future__ import annotations

import math

from farm.core.availability import (
    Availability,
    OnReturn,
    Signals,
    State,
    decide,
    on_return,
)
from farm.core.nodeinfo import NodeInfo
from farm.core.scheduler import JobRequest, Scheduler, WorkerCaps
from farm.core.scheduler.model import Dispatch

NOW = 1_000_000.0


def test_nothing_held_is_available() -> None:
    assert decide(Signals(), NOW) == Availability(State.AVAILABLE, "", None)
    assert decide(Signals(), NOW).available


def test_levers_win_in_order_draining_paused_nimby_schedule() -> None:
    every = Signals(
        draining=True,
        paused_until=math.inf,
        nimby="its user is at the PC",
        schedule_open=False,
        schedule_change=NOW + 60,
    )
    assert decide(every, NOW).state is State.DRAINING
    no_drain = Signals(**{**_fields(every), "draining": False})
    assert decide(no_drain, NOW).state is State.PAUSED
    no_pause = Signals(**{**_fields(no_drain), "paused_until": None})
    got = decide(no_pause, NOW)
    assert (got.state, got.reason) == (State.NIMBY, "its user is at the PC")
    only_schedule = Signals(**{**_fields(no_pause), "nimby": ""})
    assert decide(only_schedule, NOW) == Availability(State.SCHEDULE, "outside its schedule", NOW + 60)


def test_a_timed_pause_says_until_and_ends_by_itself() -> None:
    signals = Signals(paused_until=NOW + 7200, pause_reason="gaming")
    assert decide(signals, NOW) == Availability(State.PAUSED, "gaming", NOW + 7200)
    assert decide(signals, NOW + 7199).state is State.PAUSED
    assert decide(signals, NOW + 7200).available
    forever = decide(Signals(paused_until=math.inf), NOW)
    assert forever.until is None and forever.reason == "paused by its owner"


def test_on_return_defaults_and_overrides() -> None:
    assert on_return(State.PAUSED) is OnReturn.FINISH
    assert on_return(State.SCHEDULE) is OnReturn.FINISH
    assert on_return(State.NIMBY) is OnReturn.YIELD
    assert on_return(State.PAUSED, {State.PAUSED: OnReturn.YIELD}) is OnReturn.YIELD
    assert on_return(State.NIMBY, {State.NIMBY: OnReturn.FINISH}) is OnReturn.FINISH


def test_wire_form_round_trips_and_unknown_states_hold_the_node() -> None:
    a = Availability(State.PAUSED, "gaming", NOW)
    assert Availability.from_dict(a.to_dict()) == a
    assert Availability.from_dict({}).available  # an older node says nothing: available
    odd = Availability.from_dict({"state": "hibernating"})
    assert not odd.available and "hibernating" in odd.reason
    assert a.label() == "paused: gaming" and Availability().label() == "available"


def test_nodeinfo_parses_state_reason_until_and_macs() -> None:
    info = NodeInfo.from_dict(
        {"id": "n1", "state": "nimby", "reason": "its user is at the PC", "until": None, "macs": ["aa:bb:cc:dd:ee:ff"]}
    )
    assert info.availability == Availability(State.NIMBY, "its user is at the PC")
    assert info.macs == ("aa:bb:cc:dd:ee:ff",)
    assert NodeInfo.from_dict(info.to_dict()) == info
    old_draining = NodeInfo.from_dict({"id": "n1", "draining": True})
    assert old_draining.availability.state is State.DRAINING


def test_scheduler_sends_no_new_job_to_a_node_that_is_not_available() -> None:
    s = Scheduler()
    held = WorkerCaps("held", slots=2, engines=frozenset({"sim"}), available=False)
    free = WorkerCaps("free", slots=1, engines=frozenset({"sim"}))
    s.worker_up(held, NOW)
    jobs = [JobRequest(f"j{i}", "sim") for i in range(3)]
    out = s.add_jobs(jobs, NOW)
    assert not [d for d in out if isinstance(d, Dispatch)]  # nowhere to go, but not failed: it comes back
    assert s.all_queued_runnable(NOW)
    out = s.worker_up(free, NOW)
    assert {d.worker_id for d in out if isinstance(d, Dispatch)} == {"free"}
    out = s.worker_up(WorkerCaps("held", slots=2, engines=frozenset({"sim"})), NOW)  # its owner resumed
    assert {d.worker_id for d in out if isinstance(d, Dispatch)} == {"held"}


def _fields(s: Signals) -> dict[str, object]:
    return {name: getattr(s, name) for name in Signals.__slots__}
