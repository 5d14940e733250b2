"""NIMBY for real: the X11 probe under Xvfb (xdotool input resets the idle time), a node that yields to
the PC's user and offers itself again, and a status that says so when no probe works here."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from farm.core.nimby import GPU, INPUT, NimbyPolicy
from node.nimby import NimbySensor, ProbeUnavailable, X11Idle
from tests.node.xvfb import touch, xvfb


def test_x11_idle_time_grows_and_input_resets_it() -> None:
    with xvfb() as display:
        probe = X11Idle(display)
        try:
            time.sleep(1.2)  # the X server counts the idle time; nothing here can make it pass faster
            before = probe.idle_seconds()
            touch(display)
            after = probe.idle_seconds()
        finally:
            probe.close()
    assert before >= 1.0
    assert after < before - 0.5


def test_no_display_is_said_not_pretended() -> None:
    with pytest.raises(ProbeUnavailable, match="no X display"):
        X11Idle("")
    with pytest.raises(ProbeUnavailable, match="cannot open the X display"):
        X11Idle(":987")


def test_the_status_says_when_no_probe_works() -> None:
    sensor = NimbySensor(
        NimbyPolicy(frozenset({INPUT, GPU})), input_probe_factory=lambda: (None, "no X display (DISPLAY is not set)")
    )
    assert sensor.note.startswith("NIMBY is on but no probe works here: input: no probe works here (no X display")
    assert "gpu: no probe works here (NVML" in sensor.note
    assert sensor.check(1_000_000.0) == ("", None)  # it cannot tell, so it never claims the node


def test_a_sensor_on_a_real_display_claims_the_node_after_input(tmp_path: Path) -> None:
    with xvfb() as display:
        sensor = NimbySensor(
            NimbyPolicy(frozenset({INPUT}), idle_seconds=30),
            input_probe_factory=lambda: (X11Idle(display), ""),
            interval=0,
        )
        try:
            assert sensor.note == "watching input (x11)"
            touch(display)
            now = time.time()
            reason, until = sensor.check(now)
        finally:
            sensor.close()
    assert reason == "its user is at the PC" and until is not None and now + 25 < until <= now + 30
