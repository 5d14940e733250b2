"""The NIMBY decision (farm.core.nimby) on a fake clock: the user, another program on the GPU, coming back."""

from __future__ import annotations

from farm.core.nimby import GPU, INPUT, NimbyPolicy, NimbyWatch

T0 = 1_000_000.0


def test_input_claims_the_node_until_the_pc_has_been_idle_long_enough() -> None:
    watch = NimbyWatch(NimbyPolicy(frozenset({INPUT}), idle_seconds=600))
    assert watch.observe(T0, input_idle=3600, other_gpu_mb=None) == ("", None)  # nobody for an hour
    assert watch.observe(T0 + 1, input_idle=0.5, other_gpu_mb=None) == ("its user is at the PC", T0 + 0.5 + 600)
    # the user stays away: still claimed, the same end; unknown idle (a probe hiccup) changes nothing
    assert watch.observe(T0 + 300, input_idle=299.5, other_gpu_mb=None)[1] == T0 + 600.5
    assert watch.observe(T0 + 301, input_idle=None, other_gpu_mb=None)[0] == "its user is at the PC"
    assert watch.observe(T0 + 600.5, input_idle=600, other_gpu_mb=None) == ("", None)  # offered again


def test_each_new_input_pushes_the_end_back() -> None:
    watch = NimbyWatch(NimbyPolicy(frozenset({INPUT}), idle_seconds=60))
    watch.observe(T0, input_idle=0, other_gpu_mb=None)
    assert watch.observe(T0 + 50, input_idle=1, other_gpu_mb=None) == ("its user is at the PC", T0 + 49 + 60)


def test_another_program_on_the_gpu_claims_it_above_the_threshold_only() -> None:
    watch = NimbyWatch(NimbyPolicy(frozenset({GPU}), idle_seconds=120, gpu_mb=1024))
    assert watch.observe(T0, input_idle=0, other_gpu_mb=1000)[0] == ""  # input does not count here
    reason, until = watch.observe(T0 + 1, input_idle=None, other_gpu_mb=6000)
    assert reason == "another program uses the GPU (6000 MB)" and until == T0 + 121
    assert watch.observe(T0 + 60, input_idle=None, other_gpu_mb=0)[0]  # it left; still within the idle time
    assert watch.observe(T0 + 121, input_idle=None, other_gpu_mb=0) == ("", None)


def test_no_signal_never_claims() -> None:
    watch = NimbyWatch(NimbyPolicy(frozenset(), idle_seconds=60))
    assert watch.observe(T0, input_idle=0, other_gpu_mb=1e9) == ("", None)
