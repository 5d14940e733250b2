"""Transfer-aware placement in the pure scheduler (fake clock): a node's link counts in its expected
time, a job whose engine has ended stops taking room while its result is fetched."""

from __future__ import annotations

import pytest

from farm.core.scheduler import (
    LOCAL,
    Cancel,
    Dispatch,
    FailureKind,
    JobRequest,
    LinkEstimate,
    Policy,
    Scheduler,
    WorkerCaps,
    WorkerStatus,
)
from tests.farm.core.schedsim import warm

CV2 = frozenset({"cv2"})
MB = 1_000_000


def dispatched(decisions: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.job_id, d.worker_id) for d in decisions if isinstance(d, Dispatch)]


def status(s: Scheduler, worker: str) -> WorkerStatus:
    return next(w for w in s.workers() if w.id == worker)


def _node_and_this_pc(
    node_seconds: float, local_seconds: float, mb_per_s: float, prefetch: int
) -> tuple[Scheduler, float]:
    """A node (``node_seconds`` a job, its link measured at ``mb_per_s``) and this PC (``local_seconds``), timed."""
    s = Scheduler()
    s.worker_up(WorkerCaps("node", slots=1, engines=CV2, prefetch=prefetch), 0)
    now = warm(s, "node", node_seconds, 0.0)
    s.worker_up(WorkerCaps(LOCAL, slots=1, engines=CV2, local=True), now)
    now = warm(s, LOCAL, local_seconds, now)
    s.link_measured("node", int(mb_per_s * 10 * MB), 10.0)
    return s, now


def test_a_fast_node_behind_a_slow_link_loses_the_tail_to_this_pc() -> None:
    """Engine time alone says the node (0.5 s) beats this PC (1 s); with 20 MB at a measured 10 MB/s
    the node needs 2.5 s, so the last job waits for this PC instead."""
    s, now = _node_and_this_pc(0.5, 1.0, 10, prefetch=0)
    out = s.add_jobs([JobRequest("busy", "cv2"), JobRequest("busy2", "cv2")], now)
    assert sorted(dispatched(out)) == [("busy", "node"), ("busy2", LOCAL)]
    s.started("busy", "node", now)
    s.started("busy2", LOCAL, now)
    assert dispatched(s.add_jobs([JobRequest("photo", "cv2", transfer_bytes=20 * MB)], now)) == []
    # the node frees first (0.5 s) but would need 2.5 s for this job; this PC frees at 1 s and needs 1 s
    assert dispatched(s.succeeded("busy", "node", now + 0.5)[1]) == [], "it went to the node behind the slow link"
    assert dispatched(s.succeeded("busy2", LOCAL, now + 1.0)[1]) == [("photo", LOCAL)]


def test_without_the_link_counted_the_node_would_have_taken_it() -> None:
    """The same farm with a fast link: the tail job goes to the node (the test above is about the link)."""
    s, now = _node_and_this_pc(0.5, 1.0, 100, prefetch=0)
    s.add_jobs([JobRequest("busy", "cv2"), JobRequest("busy2", "cv2")], now)
    s.started("busy", "node", now)
    s.started("busy2", LOCAL, now)
    s.add_jobs([JobRequest("photo", "cv2", transfer_bytes=20 * MB)], now)
    assert dispatched(s.succeeded("busy", "node", now + 0.5)[1]) == [("photo", "node")]


def test_a_shipped_cut_is_counted_at_the_measured_ratio() -> None:
    s = Scheduler()
    s.worker_up(WorkerCaps("node", slots=1, engines=CV2, prefetch=0), 0)
    warm(s, "node", 0.5, 0.0)
    s.link_measured("node", 10 * MB, 1.0)
    for _ in range(40):
        s.shipped(0.03)  # crops of 3 % of the whole files
    assert abs(s.ship_ratio - 0.03) < 0.01
    whole = JobRequest("w", "cv2", transfer_bytes=20 * MB)
    cut = JobRequest("c", "cv2", transfer_bytes=20 * MB, shippable=True)
    assert s.expected("node", whole) == 0.5 + 2.0
    assert abs((s.expected("node", cut) or 0) - (0.5 + 0.06)) < 0.03


def test_a_computed_job_frees_room_so_the_next_upload_overlaps_the_download() -> None:
    s = Scheduler()
    s.worker_up(WorkerCaps("node", slots=1, engines=CV2), 0)  # capacity 2: one running, one uploading
    out = s.add_jobs([JobRequest(f"j{i}", "cv2") for i in range(3)], 0)
    assert dispatched(out) == [("j0", "node"), ("j1", "node")]
    s.started("j0", "node", 0.5)
    out = s.computed("j0", "node", 2.5)  # engine ended; the result is downloading
    assert dispatched(out) == [("j2", "node")], "the next upload waited for the download"
    assert status(s, "node").seconds_per_mp["cv2"] == 2.0  # timed to the engine's end, not the download's
    assert status(s, "node").fetching == ("j0",)
    won, _ = s.succeeded("j0", "node", 4.0)
    assert won and status(s, "node").samples["cv2"] == 1  # measured once
    assert status(s, "node").fetching == ()


def test_a_node_lost_while_its_result_downloads_loses_no_job() -> None:
    s = Scheduler()
    s.worker_up(WorkerCaps("node", slots=1, engines=CV2), 0)
    s.worker_up(WorkerCaps(LOCAL, slots=1, engines=CV2, local=True), 0)
    s.add_jobs([JobRequest("j0", "cv2")], 0)
    holder = "node"  # peers first
    s.computed("j0", holder, 1.0)
    out = s.worker_down(holder, 1.5)
    assert s.state("j0") == "active" and dispatched(out) == [("j0", LOCAL)]
    assert s.succeeded("j0", LOCAL, 3.0)[0]


def test_a_failed_download_sends_the_job_elsewhere() -> None:
    s = Scheduler()
    s.worker_up(WorkerCaps("node", slots=1, engines=CV2), 0)
    s.add_jobs([JobRequest("j0", "cv2")], 0)
    s.computed("j0", "node", 1.0)
    s.failed("j0", "node", FailureKind.LOST, "connection reset", 1.2)
    assert s.state("j0") in ("queued", "active")
    assert "j0" not in status(s, "node").fetching


def test_link_estimate_weighs_big_transfers_and_the_newest() -> None:
    link = LinkEstimate()
    assert link.rate is None and link.seconds_for(MB) == 0.0
    link.add(1000, 0.01)  # a tiny transfer: mostly the round trip
    link.add(50 * MB, 1.0)
    assert 45 * MB < (link.rate or 0) < 51 * MB
    for _ in range(20):
        link.add(10 * MB, 1.0)  # the link got slower
    assert abs((link.rate or 0) - 10 * MB) < 0.5 * MB


def test_no_job_waits_behind_a_slow_nodes_job_while_fast_nodes_are_about_to_idle() -> None:
    """A job queued ahead on a 12x slower node waits there for its running job; once the fast nodes
    would drain the queue sooner, the slow node takes no more (else the batch ends ~2 of its jobs late)."""
    from tests.farm.core.schedsim import Simulation, SimWorker

    s = Scheduler()
    workers = [SimWorker(WorkerCaps(f"fast{i}", engines=CV2), 0.5) for i in range(3)]
    workers.append(SimWorker(WorkerCaps("slow", engines=CV2), 6.0))
    sim = Simulation(s, workers, tick=0.05)
    sim.add([JobRequest(f"j{i:03d}", "cv2") for i in range(80)])
    makespan = sim.run()
    ideal = 80 / (3 / 0.5 + 1 / 6.0)
    assert makespan <= ideal * 1.1 + 0.5, (makespan, ideal)
    rescued = [j for j, ran in sim.ran.items() if len(ran) > 1]
    assert not rescued, f"{rescued} had to be backed up: they were stranded on the slow node"
    assert all(n == 1 for n in sim.commits.values())


def test_a_job_queued_behind_another_on_a_node_gets_a_backup_from_when_it_can_start_there() -> None:
    """The node (2 s engine, 3 s of transfer) took two jobs while this PC was paused: the second waits for
    its upload and for the first. Resumed at 2 s, this PC (2 s a job) would end it at 4 s; the node at 7 s
    (the first's engine ends at 3.5 s, then its own 2 s, then the 1.5 s download). Counted from its dispatch
    (0 + 5 s), it looked due at 5 s, too soon for a backup to pay."""
    s, now = _node_and_this_pc(2.0, 2.0, 10, prefetch=1)
    rate = s.link_rate("node")
    assert rate is not None
    size = int(3.0 * rate)  # 3 s of transfer: 1.5 s up, 1.5 s down
    s.set_worker_paused(LOCAL, True, now)
    t0 = now
    out = s.add_jobs(
        [JobRequest("first", "cv2", transfer_bytes=size), JobRequest("second", "cv2", transfer_bytes=size)], t0
    )
    assert dispatched(out) == [("first", "node"), ("second", "node")]
    s.started("first", "node", t0 + 1.5)
    assert dispatched(s.set_worker_paused(LOCAL, False, t0 + 2.0)) == []
    backups = [(d.job_id, d.worker_id, d.backup) for d in s.tick(t0 + 2.0) if isinstance(d, Dispatch)]
    assert backups == [("second", LOCAL, True)]


def test_a_second_job_ahead_waits_for_its_upload_turn_behind_the_first() -> None:
    """A node on a slow link (1 s engine, 4 s up and 4 s down a job) takes a job; a second one queued ahead
    would upload only after the first (uploads to a node go one after another), end at 13 s, later than the
    farm would end it (this PC: 1.7 s a job); with its upload counted as overlapping the first's, it looked
    due at 9 s and went there. It stays queued for this PC."""
    s, now = _node_and_this_pc(1.0, 1.7, 10, prefetch=1)
    rate = s.link_rate("node")
    assert rate is not None
    size = int(8.0 * rate)  # 4 s up, 4 s down
    assert dispatched(s.add_jobs([JobRequest("busy", "cv2", transfer_bytes=size)], now)) == [("busy", LOCAL)]
    s.started("busy", LOCAL, now)
    out = s.add_jobs([JobRequest(f"p{i}", "cv2", transfer_bytes=size) for i in range(6)], now)
    assert dispatched(out) == [("p0", "node")]
    assert dispatched(s.succeeded("busy", LOCAL, now + 1.7)[1]) == [("p1", LOCAL)]


def _two_nodes_on_one_uplink(policy: Policy) -> tuple[Scheduler, float, int]:
    """Two nodes (1 s engine, 4 s up and 4 s down a job at a measured 10 MB/s) and this PC (1.7 s a job), busy."""
    s = Scheduler(policy)
    now = 0.0
    for node in ("n1", "n2"):
        s.worker_up(WorkerCaps(node, slots=1, engines=CV2, prefetch=1), now)
        now = warm(s, node, 1.0, now)
        s.link_measured(node, 100 * MB, 10.0)
    s.worker_up(WorkerCaps(LOCAL, slots=1, engines=CV2, local=True), now)
    now = warm(s, LOCAL, 1.7, now)
    rate = s.link_rate("n1")
    assert rate is not None and s.shares_uplink("n1") == policy.shared_uplink
    size = int(8.0 * rate)
    assert dispatched(s.add_jobs([JobRequest("busy", "cv2", transfer_bytes=size)], now)) == [("busy", LOCAL)]
    s.started("busy", LOCAL, now)
    return s, now, size


def test_a_node_s_first_upload_waits_behind_another_node_s_on_this_pc_s_link() -> None:
    """Uploads to the two nodes go one after another over this PC's link: the second node's input would
    arrive after the first's 4 s upload, its result at 13 s, later than the farm ends it (9.75 s here); it
    stays queued. Counted on its own link alone it looked due at 9 s and went there."""
    s, now, size = _two_nodes_on_one_uplink(Policy())
    out = s.add_jobs([JobRequest(f"p{i}", "cv2", transfer_bytes=size) for i in range(6)], now)
    assert dispatched(out) == [("p0", "n1")]
    s.uploaded("p0", "n1", now + 3.0)  # sooner than its 4 s: the line is free, the second node's result due in 9 s
    assert ("p1", "n2") in dispatched(s.tick(now + 3.0))


def test_nodes_behind_their_own_links_each_take_a_first_job_at_once() -> None:
    """The same farm where this PC's link is no bottleneck (the policy says so): both nodes start at once."""
    s, now, size = _two_nodes_on_one_uplink(Policy(shared_uplink=False))
    out = s.add_jobs([JobRequest(f"p{i}", "cv2", transfer_bytes=size) for i in range(6)], now)
    assert dispatched(out) == [("p0", "n1"), ("p1", "n2")]


@pytest.mark.parametrize("first", ["n1", "n2"])
def test_the_first_uploads_sent_before_any_link_was_measured_still_hold_the_line(first: str) -> None:
    """The lab's 100 Mbit/s PNG batch: two nodes not timed yet each get a 44 MB input at once, before any
    link is measured. The first to arrive (either: uploads take the link in the order they are ready)
    does after 4.8 s (9.2 MB/s), the other is under way until 9.6 s; when the first node's engine ends
    (5.8 s), its next input would go up after the other's, and its result come back at 20 s, where this
    PC (1.5 s a job) ends the batch by 15 s: it is not sent there. Counted in seconds at the time it was
    sent (0: no link known), the other upload looked over, and it went."""
    s = Scheduler()
    s.worker_up(WorkerCaps("n1", slots=1, engines=CV2, prefetch=1), 0.0)
    s.worker_up(WorkerCaps("n2", slots=1, engines=CV2, prefetch=1), 0.0)
    s.worker_up(WorkerCaps(LOCAL, slots=1, engines=CV2, local=True), 0.0)
    t0 = warm(s, LOCAL, 1.5, 0.0)
    out = s.add_jobs([JobRequest(f"p{i:02d}", "cv2", transfer_bytes=88 * MB) for i in range(12)], t0)
    assert dispatched(out) == [("p00", "n1"), ("p01", "n2"), ("p02", LOCAL)]
    job = {"n1": "p00", "n2": "p01"}[first]
    s.started("p02", LOCAL, t0)
    s.link_measured(first, 44 * MB, 4.8)
    s.uploaded(job, first, t0 + 4.8)
    assert dispatched(s.started(job, first, t0 + 4.8)) == []  # its next upload would not hide behind a job
    t, running = t0, "p02"
    for nxt in ("p03", "p04", "p05"):  # this PC goes on meanwhile
        t += 1.5
        won, out = s.succeeded(running, LOCAL, t)
        assert won and dispatched(out) == [(nxt, LOCAL)]
        s.committed(running, t)
        s.started(nxt, LOCAL, t)
        running = nxt
    assert dispatched(s.computed(job, first, t0 + 5.8)) == []


def test_a_result_slow_to_download_gets_a_backup_from_an_idle_worker() -> None:
    """A node's engine ended a job (0.5 s) but its whole 40 MB result needs 4 s on a 10 MB/s link; this PC,
    idle after 0.1 s of it, runs the job in 1 s: it takes a copy (ends at 1.6 s, not 4 s); first result wins."""
    s, now = _node_and_this_pc(0.5, 1.0, 10, prefetch=0)
    s.set_worker_paused(LOCAL, True, now)
    assert dispatched(s.add_jobs([JobRequest("photo", "cv2", transfer_bytes=80 * MB)], now)) == [("photo", "node")]
    s.uploaded("photo", "node", now + 4.0)
    s.started("photo", "node", now + 4.0)
    assert dispatched(s.computed("photo", "node", now + 4.5)) == []
    s.set_worker_paused(LOCAL, False, now + 4.6)
    backups = [(d.job_id, d.worker_id, d.backup) for d in s.tick(now + 4.6) if isinstance(d, Dispatch)]
    assert backups == [("photo", LOCAL, True)]
    won, _ = s.succeeded("photo", LOCAL, now + 5.6)
    assert won


def test_a_result_about_to_arrive_gets_no_backup() -> None:
    """The same, with a fast link (0.4 s down): this PC's copy could not come sooner; no copy."""
    s, now = _node_and_this_pc(0.5, 1.0, 100, prefetch=0)
    s.set_worker_paused(LOCAL, True, now)
    s.add_jobs([JobRequest("photo", "cv2", transfer_bytes=80 * MB)], now)
    s.uploaded("photo", "node", now + 0.4)
    s.started("photo", "node", now + 0.4)
    s.computed("photo", "node", now + 0.9)
    s.set_worker_paused(LOCAL, False, now + 1.0)
    assert dispatched(s.tick(now + 1.0)) == []


def _lab_sim_start(mb_per_s: float, jobs: int = 12) -> tuple[Scheduler, float]:
    """The lab's sim row at its start: two nodes and this PC, none timed, 12 jobs of a 5 MB JPEG each way;
    the first node's input is up (its link measured at ``mb_per_s``) and its engine has started."""
    s = Scheduler()
    s.worker_up(WorkerCaps("n1", slots=1, engines=CV2, prefetch=1), 0.0)
    s.worker_up(WorkerCaps("n2", slots=1, engines=CV2, prefetch=1), 0.0)
    s.worker_up(WorkerCaps(LOCAL, slots=1, engines=CV2, local=True), 0.0)
    out = s.add_jobs([JobRequest(f"p{i:02d}", "cv2", transfer_bytes=10 * MB) for i in range(jobs)], 0.0)
    assert dispatched(out) == [("p00", "n1"), ("p01", "n2"), ("p02", LOCAL)]  # nothing ahead: none is timed
    s.started("p02", LOCAL, 0.0)
    s.link_measured("n1", 5 * MB, 5 / mb_per_s)
    s.uploaded("p00", "n1", 0.1)
    assert dispatched(s.started("p00", "n1", 0.5)) == []  # no job timed anywhere: nothing to weigh its upload by
    assert dispatched(s.tick(0.75)) == []  # nor a quarter of a second later
    return s, 1.0


def test_a_node_not_timed_yet_takes_a_job_ahead_once_its_upload_would_hide_behind_a_job() -> None:
    """Once this PC has timed a job (1 s), the running node's next input (0.05 s up at 100 MB/s) goes ahead,
    to be uploaded and decoded while its first job runs: in the lab it idled 0.4-0.9 s for both after its
    first job. The other node, whose engine has not started, gets none."""
    s, now = _lab_sim_start(100.0)
    won, out = s.succeeded("p02", LOCAL, now)
    assert won and dispatched(out) == [("p03", LOCAL), ("p04", "n1")]


def test_a_node_not_timed_yet_takes_no_job_ahead_when_its_upload_outlasts_a_job() -> None:
    """The same start on a link where the next input would take 1.25 s up, longer than this PC's job."""
    s, now = _lab_sim_start(4.0)
    won, out = s.succeeded("p02", LOCAL, now)
    assert won and dispatched(out) == [("p03", LOCAL)]


def test_a_node_not_timed_yet_on_a_link_of_its_own_takes_a_job_ahead_however_long_its_upload() -> None:
    """A 4 MB/s link where this PC's link is no bottleneck (each node on its own): once the node's engine
    runs, its next input goes up (1.25 s) with nothing timed anywhere, since that upload takes no other
    node's turn (in the simulated farm of 200 nodes, each 100 Mbit/s node idled for its second upload)."""
    s = Scheduler(Policy(shared_uplink=False))
    for node in ("n1", "n2"):
        s.worker_up(WorkerCaps(node, slots=1, engines=CV2, prefetch=1), 0.0)
    out = s.add_jobs([JobRequest(f"p{i:02d}", "cv2", transfer_bytes=10 * MB) for i in range(12)], 0.0)
    assert dispatched(out) == [("p00", "n1"), ("p01", "n2")]
    s.link_measured("n1", 5 * MB, 5 / 4.0)
    s.uploaded("p00", "n1", 1.25)
    assert dispatched(s.started("p00", "n1", 1.25)) == [("p02", "n1")]


def test_a_first_timing_weighs_again_only_the_untimed_nodes_whose_links_are_measured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cost: 40 nodes run a first job, none timed, each refused a job ahead; one link is measured. Without
    a link rate no timing lets a node take a job ahead, so a first timing weighs again the node timed and
    the one with its link measured (which then takes its job ahead), never the others: before, each first
    timing weighed every node still waiting (380 weighings for 20 timings here; 20,000 at 2000 jobs on 200
    nodes in the links-unmeasured rows of ``bench/farm_at_scale.py``)."""
    s = Scheduler()
    nodes = [f"n{i:02d}" for i in range(40)]
    for node in nodes:
        s.worker_up(WorkerCaps(node, slots=1, engines=CV2, prefetch=1), 0.0)
    out = s.add_jobs([JobRequest(f"p{i:03d}", "cv2", transfer_bytes=10 * MB) for i in range(400)], 0.0)
    first = {w: j for j, w in dispatched(out)}
    assert sorted(first) == nodes
    s.link_measured("n39", 5 * MB, 0.05)  # 100 MB/s
    for node in nodes:
        assert dispatched(s.started(first[node], node, 0.5)) == []  # nothing timed: no job ahead anywhere
    weighed: list[str] = []
    strands = Scheduler._strands
    monkeypatch.setattr(
        Scheduler, "_strands", lambda self, job, w, *a: weighed.append(w.id) or strands(self, job, w, *a)
    )
    later: list[tuple[str, str]] = []
    for i, node in enumerate(nodes[:20]):
        later += dispatched(s.computed(first[node], node, 1.5 + i * 0.01))
    assert "n39" in {w for _, w in later}  # its upload (0.05 s) hides behind a 1 s job
    assert set(weighed) <= {*nodes[:20], "n39"}, sorted(set(weighed) - {*nodes[:20], "n39"})


def test_a_small_batch_is_not_queued_ahead_on_a_node_not_timed_yet() -> None:
    """9 jobs: once this PC takes its next, 5 are left, under two rounds for the 3 workers; none waits on a
    node that may turn out slow, where the others can end them all in two rounds."""
    s, now = _lab_sim_start(100.0, jobs=9)
    won, out = s.succeeded("p02", LOCAL, now)
    assert won and dispatched(out) == [("p03", LOCAL)]


def _tail_beside_a_long_job(node_seconds: float) -> list[tuple[str, str]]:
    """The last two jobs of a batch (5 MB each way, 0.4 s on a 12.5 MB/s link; this PC 1.5 s a job) while
    this PC runs a long 4.5 s one: where they go at once."""
    s, now = _node_and_this_pc(node_seconds, 1.5, 12.5, prefetch=1)
    s.set_worker_paused("node", True, now)
    assert dispatched(s.add_jobs([JobRequest("long", "cv2", 3.0, transfer_bytes=20 * MB)], now)) == [("long", LOCAL)]
    s.started("long", LOCAL, now)
    s.set_worker_paused("node", False, now)
    return dispatched(s.add_jobs([JobRequest(f"p{i}", "cv2", transfer_bytes=10 * MB) for i in range(2)], now))


def test_at_the_tail_a_job_goes_ahead_on_a_node_where_it_ends_soonest() -> None:
    """The node (1 s engine, 1.8 s a job one at a time with its transfers) is slower than this PC (1.5 s),
    but the second job, queued ahead behind its first (uploaded meanwhile), ends there 2.4 s from now;
    on this PC, after its long job, 6 s. Counted by its one-at-a-time time alone, it stayed queued until
    the node was idle again (3.2 s)."""
    assert _tail_beside_a_long_job(1.0) == [("p0", "node"), ("p1", "node")]


def test_at_the_tail_no_job_waits_ahead_on_a_node_where_another_ends_it_sooner() -> None:
    """Two nodes busy at the tail: the slower (1.5 s a job, its slot free in 0.6 s) would end a job queued
    ahead 2.1 s from now, the faster (1 s, free in 0.1 s) 1.1 s from now: only the faster takes one ahead,
    though the farm's drain time (3.1 s) would have let the slower hold it too."""
    s = Scheduler()
    s.worker_up(WorkerCaps("slow", slots=1, engines=CV2, prefetch=1), 0.0)
    s.worker_up(WorkerCaps("fast", slots=1, engines=CV2, prefetch=1), 0.0)
    now = warm(s, "slow", 1.5, 0.0)
    now = warm(s, "fast", 1.0, now)
    out = s.add_jobs([JobRequest(f"j{i}", "cv2") for i in range(2)], now)
    assert sorted(w for _, w in dispatched(out)) == ["fast", "slow"]
    for job, worker in dispatched(out):
        s.started(job, worker, now)
    more = s.add_jobs([JobRequest(f"k{i}", "cv2") for i in range(2)], now + 0.9)
    assert dispatched(more) == [("k0", "fast")]


def _backups(decisions: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.job_id, d.worker_id) for d in decisions if isinstance(d, Dispatch) and d.backup]


def test_a_job_waiting_behind_another_on_a_node_is_copied_to_a_worker_only_a_little_sooner() -> None:
    """The lab's tail: the node (1 s a job) holds two jobs, the second queued behind the first; this PC
    (1.2 s a job), free at 0.5 s, would end the second at 1.7 s, the node at 2 s. Nothing of it is done
    there, so a copy pays at 1.1x sooner (``waiting_backup_ratio``), not only at the backup ratio (1.5x)."""
    s, now = _node_and_this_pc(1.0, 1.2, 10, prefetch=1)
    s.set_worker_paused(LOCAL, True, now)
    out = s.add_jobs([JobRequest("first", "cv2"), JobRequest("second", "cv2")], now)
    assert dispatched(out) == [("first", "node"), ("second", "node")]
    s.started("first", "node", now)
    decisions = s.set_worker_paused(LOCAL, False, now + 0.5) + s.tick(now + 0.5)
    assert _backups(decisions) == [("second", LOCAL)]


def test_a_started_job_is_copied_only_at_the_backup_ratio() -> None:
    """The node (2 s a job) runs a job since 0 s; this PC (1.5 s a job), free at 0.3 s, would end it at
    1.8 s against the node's 2 s: sooner, but not 1.5x sooner, and its engine there is half done."""
    s, now = _node_and_this_pc(2.0, 1.5, 10, prefetch=1)
    s.set_worker_paused(LOCAL, True, now)
    assert dispatched(s.add_jobs([JobRequest("only", "cv2")], now)) == [("only", "node")]
    s.started("only", "node", now)
    assert _backups(s.set_worker_paused(LOCAL, False, now + 0.3) + s.tick(now + 0.3)) == []
    assert _backups(s.tick(now + 1.0)) == []  # 1 s + 1.5 s x 1.5 > 2 s still


def _copied_on_two_nodes(slow_mb_per_s: float) -> tuple[Scheduler, float]:
    """A 20 MB job (10 MB up, 10 MB down) on "slow" (6 s engine, its link at ``slow_mb_per_s``) and a backup
    copy on "fast" (1 s engine, 10 MB/s): "fast" computes its copy at 2 s (its result arrives at 3 s)."""
    s = Scheduler()
    now = 0.0
    for node, seconds, rate in (("slow", 6.0, slow_mb_per_s), ("fast", 1.0, 10)):
        s.worker_up(WorkerCaps(node, slots=1, engines=CV2), now)
        now = warm(s, node, seconds, now)
        s.link_measured(node, int(rate * 10 * MB), 10.0)
    s.set_worker_paused("fast", True, now)
    assert dispatched(s.add_jobs([JobRequest("photo", "cv2", transfer_bytes=20 * MB)], now)) == [("photo", "slow")]
    s.started("photo", "slow", now)
    decisions = s.set_worker_paused("fast", False, now + 0.5) + s.tick(now + 0.5)
    assert _backups(decisions) == [("photo", "fast")]
    s.started("photo", "fast", now + 1.0)
    assert cancels(s.computed("photo", "fast", now + 2.0)) == []
    return s, now


def cancels(decisions: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.job_id, d.worker_id) for d in decisions if isinstance(d, Cancel)]


def test_a_second_copy_computed_while_the_first_downloads_is_not_downloaded_too() -> None:
    """Both links 10 MB/s: the first copy's 10 MB result arrives at 3 s; the second, computed at 2.5 s (its
    engine quicker than timed), would arrive at 3.5 s and share the link meanwhile. It is dropped; the first
    goes on, and the job still ends once."""
    s, now = _copied_on_two_nodes(10)
    assert cancels(s.computed("photo", "slow", now + 2.5)) == [("photo", "slow")]
    assert status(s, "slow").fetching == () and status(s, "fast").fetching == ("photo",)
    first, _ = s.succeeded("photo", "fast", now + 3.0)
    assert first
    assert s.succeeded("photo", "slow", now + 3.5)[0] is False  # a result that still came: dropped


def test_the_copy_that_would_arrive_first_is_the_one_downloaded() -> None:
    """The holder is on a 100 MB/s link: its result, computed at 2.5 s, arrives at 2.6 s, before the
    backup's (3 s). The backup's download is the one dropped."""
    s, now = _copied_on_two_nodes(100)
    assert cancels(s.computed("photo", "slow", now + 2.5)) == [("photo", "fast")]
    assert status(s, "fast").fetching == () and status(s, "slow").fetching == ("photo",)


def test_the_job_runs_again_when_the_download_kept_fails() -> None:
    """No job lost: the download kept breaks off; the job is queued again and dispatched."""
    s, now = _copied_on_two_nodes(10)
    s.computed("photo", "slow", now + 2.5)
    again = s.failed("photo", "fast", FailureKind.LOST, "the download broke off", now + 2.7)
    assert [job for job, _ in dispatched(again)] == ["photo"]
