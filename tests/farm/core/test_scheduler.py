"""The pure scheduler with a fake clock: no sockets, no sleeps."""

from __future__ import annotations

import random

import pytest

from farm.core.scheduler import (
    LOCAL,
    Cancel,
    Dispatch,
    FailureKind,
    Finished,
    JobRequest,
    Policy,
    Scheduler,
    SpeedEstimate,
    WorkerCaps,
)
from tests.farm.core.schedsim import Simulation, SimWorker, warm

CV2 = frozenset({"cv2"})


def peer(name: str, slots: int = 1, engines: frozenset[str] = CV2, **kw: object) -> WorkerCaps:
    return WorkerCaps(id=name, slots=slots, engines=engines, **kw)  # type: ignore[arg-type]


def local(slots: int = 1, engines: frozenset[str] = CV2) -> WorkerCaps:
    return WorkerCaps(id=LOCAL, slots=slots, engines=engines, local=True)


def jobs(n: int, engine: str = "cv2", prefix: str = "j", **kw: object) -> list[JobRequest]:
    return [JobRequest(id=f"{prefix}{i:03d}", engine=engine, **kw) for i in range(n)]  # type: ignore[arg-type]


def dispatched(decisions: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.job_id, d.worker_id) for d in decisions if isinstance(d, Dispatch)]


def test_peers_get_slots_plus_one_once_measured_and_local_its_slots() -> None:
    s = Scheduler()
    s.worker_up(peer("a", slots=2), 0)
    s.worker_up(local(slots=1), 0)
    out = dispatched(s.add_jobs(jobs(10), 0))
    per = {w: sum(1 for _, x in out if x == w) for w in ("a", LOCAL)}
    assert per == {"a": 2, LOCAL: 1}  # nothing queued ahead on a node not timed yet
    assert s.queued() == 7
    first = next(j for j, w in out if w == "a")
    s.started(first, "a", 0.0)
    won, more = s.succeeded(first, "a", 1.0)
    assert won and [w for _, w in dispatched(more)] == ["a", "a"]  # measured: its slots plus one ahead
    assert s.queued() == 5


def test_a_lone_node_gets_its_job_ahead_from_the_start() -> None:
    s = Scheduler()
    s.worker_up(peer("a", slots=1), 0)
    assert len(dispatched(s.add_jobs(jobs(5), 0))) == 2  # no other worker to leave the work to


def test_priority_first_then_fifo() -> None:
    s = Scheduler()
    s.add_jobs(jobs(3, prefix="low"), 0)
    s.add_jobs([JobRequest("urgent", "cv2", priority=5)], 0)
    s.add_jobs(jobs(1, prefix="late"), 0)
    order = dispatched(s.worker_up(WorkerCaps("w", slots=1, engines=CV2, prefetch=4), 0))
    assert [j for j, _ in order] == ["urgent", "low000", "low001", "low002", "late000"]


def test_next_job_goes_to_the_worker_that_frees_a_slot() -> None:
    s = Scheduler()
    s.worker_up(WorkerCaps("a", engines=CV2, prefetch=0), 0)
    s.worker_up(WorkerCaps("b", engines=CV2, prefetch=0), 0)
    first = dispatched(s.add_jobs(jobs(3), 0))
    assert len(first) == 2
    _, out = s.succeeded(first[1][0], first[1][1], 1.0)
    assert dispatched(out) == [("j002", first[1][1])]


def test_capabilities_route_jobs_and_local_takes_what_no_peer_can() -> None:
    s = Scheduler()
    s.worker_up(peer("gpu", engines=frozenset({"lama", "cv2"}), memory_mb=8000), 0)
    s.worker_up(peer("small", engines=frozenset({"lama"}), memory_mb=2000), 0)
    s.worker_up(local(engines=frozenset({"cv2"})), 0)
    out = dispatched(
        s.add_jobs(
            [
                JobRequest("big", "lama", memory_mb=6000),
                JobRequest("little", "lama", memory_mb=500),
                JobRequest("plain", "cv2"),
            ],
            0,
        )
    )
    where = dict(out)
    assert where["big"] == "gpu"
    assert where["little"] in ("gpu", "small")
    assert "plain" in where
    assert all(w != LOCAL for j, w in out if j != "plain")


def test_model_filter() -> None:
    s = Scheduler()
    s.worker_up(peer("a", engines=frozenset({"upscale"}), models={"upscale": frozenset({"x4.pth"})}), 0)
    out = s.add_jobs([JobRequest("m", "upscale", model="x2.pth")], 0)
    assert out == []
    failed = s.fail_unrunnable(0, lambda job: f"no worker can run {job.engine}")
    assert [f.job_id for f in failed] == ["m"] and "no worker can run upscale" in failed[0].message


def test_worker_vanishing_requeues_and_late_result_is_dropped() -> None:
    s = Scheduler()
    s.worker_up(peer("a"), 0)
    s.worker_up(peer("b"), 0)
    out = dispatched(s.add_jobs(jobs(4), 0))
    on_a = [j for j, w in out if w == "a"]
    assert len(on_a) == 1  # one each: neither is timed yet
    redo = dispatched(s.worker_down("a", 1.0))
    assert redo == [(on_a[0], "b")]  # b, alone now, takes a's job ahead; the rest wait in the queue, not lost
    assert s.queued() == 2
    running = [j for j, w in out if w == "b"] + [j for j, _ in redo]
    t = 2.0
    while running:  # b works through its own jobs, then the two that a dropped
        job = running.pop(0)
        won, more = s.succeeded(job, "b", t)
        assert won
        s.committed(job, t)
        running += [j for j, _ in dispatched(more)]
        redo += dispatched(more)
        t += 1
    assert sorted(j for j, _ in redo) == sorted({j for j, _ in redo}) and {w for _, w in redo} == {"b"}
    assert on_a[0] in {j for j, _ in redo} and len(redo) == 3  # a's job and the two queued, once each
    assert s.unfinished() == 0
    won, _ = s.succeeded(on_a[0], "a", t)  # the dead node answers after all: too late
    assert not won


def test_retry_goes_to_another_peer_local_last() -> None:
    s = Scheduler(Policy(retry_backoff=0.0))
    s.worker_up(WorkerCaps("a", engines=CV2, prefetch=0), 0)
    s.worker_up(local(), 0)
    s.worker_up(WorkerCaps("b", engines=CV2, prefetch=0), 0)
    s.add_jobs(jobs(3), 0)  # a, b and local all busy
    out = dispatched(s.failed("j000", "a", FailureKind.LOST, "connection reset", 1.0))
    assert out == [("j000", "a")]  # only a had room; LOST does not exclude at first
    out = dispatched(s.failed("j000", "a", FailureKind.ENGINE, "CUDA error", 2.0))
    assert out == []  # excluded from a; b busy; local only as last resort... and b can still take it
    _, more = s.succeeded("j002", LOCAL, 3.0)
    assert dispatched(more) == []  # local frees up but the retry waits for peer b
    _, more = s.succeeded("j001", "b", 4.0)
    assert dispatched(more) == [("j000", "b")]


def test_engine_failures_back_off_then_fail_with_every_error() -> None:
    s = Scheduler(Policy(max_attempts=3, retry_backoff=1.0, blocklist_after=99))
    for w in ("a", "b", "c"):
        s.worker_up(WorkerCaps(w, engines=CV2, prefetch=0), 0)
    s.add_jobs([JobRequest("x", "cv2")], 0)
    holder = "a"
    assert dispatched(s.failed("x", holder, FailureKind.ENGINE, "boom a", 0.0)) == []  # backing off
    assert dispatched(s.tick(0.5)) == []
    second = dispatched(s.tick(1.0))
    assert len(second) == 1 and second[0][1] != "a"
    out = s.failed("x", second[0][1], FailureKind.ENGINE, f"boom {second[0][1]}", 1.5)
    third = dispatched(s.tick(3.5))
    assert dispatched(out) == [] and len(third) == 1
    final = s.failed("x", third[0][1], FailureKind.ENGINE, f"boom {third[0][1]}", 4.0)
    fin = [d for d in final if isinstance(d, Finished)]
    assert fin and fin[0].state == "failed"
    assert set(fin[0].errors) == {"a", "b", "c"} and "boom b" in fin[0].message


def test_input_failure_ends_the_job_at_once() -> None:
    s = Scheduler()
    s.worker_up(peer("a"), 0)
    s.add_jobs([JobRequest("x", "cv2")], 0)
    out = s.failed("x", "a", FailureKind.INPUT, "corrupt image", 1)
    assert [d.state for d in out if isinstance(d, Finished)] == ["failed"]


def test_blocklist_and_forgiveness() -> None:
    s = Scheduler(Policy(blocklist_after=2, blocklist_seconds=60, retry_backoff=0, max_attempts=9))
    s.worker_up(WorkerCaps("bad", engines=CV2, prefetch=0), 0)
    s.worker_up(WorkerCaps("good", engines=CV2, prefetch=0, slots=1), 0)
    s.add_jobs(jobs(6), 0)
    s.failed("j000", "bad", FailureKind.ENGINE, "x", 1)
    assert s.workers()[0].blocked == ()
    out = s.failed("j002", "bad", FailureKind.ENGINE, "x", 2)
    assert next(w for w in s.workers() if w.id == "bad").blocked == ("cv2",)
    assert all(w != "bad" for _, w in dispatched(out))
    assert all(w != "bad" for _, w in dispatched(s.tick(30)))
    back = dispatched(s.tick(62))
    assert next(w for w in s.workers() if w.id == "bad").blocked == ()
    assert "bad" in {w for _, w in back}


def test_cancel_queued_and_running() -> None:
    s = Scheduler()
    s.worker_up(WorkerCaps("a", engines=CV2, prefetch=0), 0)
    s.add_jobs(jobs(2), 0)
    out = s.cancel("j001", 1)
    assert [d.state for d in out if isinstance(d, Finished)] == ["cancelled"]
    out = s.cancel("j000", 1)
    assert Cancel("j000", "a", "cancelled by the user") in out
    won, _ = s.succeeded("j000", "a", 2)
    assert not won


def test_pause_and_resume() -> None:
    s = Scheduler()
    s.worker_up(peer("a"), 0)
    s.pause()
    assert s.add_jobs(jobs(2), 0) == []
    assert len(dispatched(s.resume(1))) == 2
    s.set_worker_paused("a", True, 2)
    s.add_jobs(jobs(1, prefix="k"), 2)
    assert s.queued() == 1


def test_tail_waits_for_a_fast_worker() -> None:
    sim_s = Scheduler()
    sim = Simulation(
        sim_s,
        [
            SimWorker(WorkerCaps("fast", engines=CV2, prefetch=0), 1.0),
            SimWorker(WorkerCaps("slow", engines=CV2, prefetch=0), 10.0),
        ],
    )
    sim.add(jobs(4, prefix="warm"))
    sim.run()
    start = sim.now
    sim.add(jobs(2, prefix="tail"))
    end = sim.run()
    # both tail jobs on the fast worker take 2 s; one on the slow worker would take 10 s
    assert end - start <= 2.5
    assert all(sim.ran[f"tail00{i}"] == ["fast"] for i in range(2))


def test_straggler_gets_a_backup_and_first_result_wins() -> None:
    s = Scheduler()
    fast, flaky = (
        SimWorker(WorkerCaps("fast", engines=CV2, prefetch=0), 1.0),
        SimWorker(WorkerCaps("flaky", engines=CV2, prefetch=0), 1.0),
    )
    sim = Simulation(s, [fast, flaky], tick=0.1)
    sim.add(jobs(6, prefix="warm"))
    sim.run()
    flaky.seconds_per_mp = 10.0  # someone started a game on that PC
    start = sim.now
    sim.add(jobs(2, prefix="last"))
    end = sim.run()
    backed_up = [j for j, ws in sim.ran.items() if len(ws) == 2]
    assert backed_up and sim.ran[backed_up[0]] == ["flaky", "fast"]
    assert end - start < 4.0  # not the 10 s the straggler needed
    assert all(n == 1 for n in sim.commits.values()), "an output was written twice"
    assert all(f.state == "done" and f.worker_id == "fast" for j, f in sim.finished.items() if j.startswith("last"))
    assert not flaky.running, "the losing copy was not cancelled"


@pytest.mark.parametrize("n_jobs", [12, 40])
def test_mixed_speeds_makespan_near_ideal(n_jobs: int) -> None:
    """One node 3x slower must not stretch the batch: within 10 % of the ideal for the combined speed."""
    s = Scheduler()
    workers = [SimWorker(peer("fast"), 1.0), SimWorker(peer("fast2"), 1.0), SimWorker(peer("slow"), 3.0)]
    sim = Simulation(s, workers, tick=0.05)
    sim.add(jobs(n_jobs))
    makespan = sim.run()
    combined_rate = 1 / 1.0 + 1 / 1.0 + 1 / 3.0
    ideal = n_jobs / combined_rate
    assert makespan <= ideal * 1.10 + 1.0, (makespan, ideal)  # +1 job: jobs are indivisible
    assert len(sim.commits) == n_jobs and all(n == 1 for n in sim.commits.values())


@pytest.mark.parametrize("seed", range(6))
def test_a_farm_of_mixed_speeds_ends_within_one_fast_job_of_the_best_possible(seed: int) -> None:
    """20 workers of six speeds (0.5 s to 6 s a job), 200 jobs. The best any schedule can do with whole
    jobs is the first time by which the workers together can have ended 200 (the 200th smallest k x t).
    At the tail the medium workers must take their last jobs too: the fast ones, free soon, cannot end
    the whole queue before them (leaving every job at the head for them stretched the batch by a round)."""
    rng = random.Random(seed)
    speeds = [rng.choice([0.5, 0.8, 1.2, 2.0, 3.0, 6.0]) for _ in range(20)]
    sim = Simulation(Scheduler(), [SimWorker(peer(f"w{i:02d}"), t) for i, t in enumerate(speeds)])
    sim.add(jobs(200))
    makespan = sim.run()
    best = sorted(k * t for t in speeds for k in range(1, 201))[199]
    assert best - 1e-9 <= makespan <= best + min(speeds) + 1e-9, (makespan, best)
    assert len(sim.commits) == 200 and all(n == 1 for n in sim.commits.values())


def test_a_node_that_fails_everything_is_blocklisted_and_the_batch_completes() -> None:
    s = Scheduler(Policy(retry_backoff=0.1))
    sim = Simulation(
        s, [SimWorker(peer("ok"), 1.0), SimWorker(peer("broken"), 0.2, fail=True), SimWorker(local(), 1.5)], tick=0.1
    )
    sim.add(jobs(30))
    sim.run()
    assert len(sim.finished) == 30 and all(f.state == "done" for f in sim.finished.values())
    broken = next(w for w in s.workers() if w.id == "broken")
    assert broken.blocked == ("cv2",)
    assert broken.failed <= Policy().blocklist_after + 1  # + the one job queued ahead on it


def test_a_job_held_by_an_unmeasured_slow_node_is_backed_up_by_an_idle_measured_worker() -> None:
    """The backup rule for a holder with no estimate yet: once it has spent clearly longer than the idle
    worker would need, the idle one takes a copy (before, expected end == now, so never)."""
    s = Scheduler()
    here = SimWorker(local(), 1.0)
    sim = Simulation(s, [here], tick=0.1)
    sim.add(jobs(3, prefix="warm"))  # this PC's speed is known: about 1 s a job
    sim.run()
    attic = SimWorker(peer("attic"), 60.0)  # just joined, no estimate, and very slow
    sim.workers["attic"] = attic
    sim.apply(s.worker_up(attic.caps, sim.now))
    start = sim.now
    sim.add(jobs(2, prefix="tail"))
    end = sim.run()
    assert any("attic" in ran for ran in sim.ran.values()), "the slow node never got a job to hold"
    assert end - start < 10.0, f"the batch waited {end - start:.0f} s for the unmeasured node"
    assert all(n == 1 for n in sim.commits.values()), "an output was written twice"
    assert not attic.running, "the losing copy was not cancelled"


def test_a_lost_race_gives_an_unmeasured_worker_a_floor_that_its_first_real_job_replaces() -> None:
    est = SpeedEstimate()
    est.at_least(6.0, 2.0)
    assert est.predict(1.0) == 3.0 and est.samples == 0
    est.add(1.0, 1.0)  # its first real measurement
    assert est.predict(1.0) == 1.0
    est.at_least(50.0, 1.0)  # measured now: a floor no longer applies
    assert est.predict(1.0) == 1.0


def test_a_lost_job_that_a_slow_peer_leaves_runs_on_this_pc() -> None:
    """Retries go to another peer before this PC; when the only other peer is too slow to take it (it
    leaves the job for this PC), this PC runs it at once, instead of both leaving it to each other."""
    s = Scheduler()
    s.worker_up(peer("slow"), 0)
    s.worker_up(local(), 0)
    now = warm(s, LOCAL, 1.0, warm(s, "slow", 10.0, 0.0))  # each timed alone, the other paused
    s.worker_up(peer("gone"), now)
    assert dispatched(s.add_jobs(jobs(1, prefix="photo"), now)) == [("photo000", "gone")]  # the idle peer
    assert dispatched(s.worker_down("gone", now + 0.5)) == [("photo000", LOCAL)]
