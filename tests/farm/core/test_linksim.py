"""The simulated farm that ``bench/farm_at_scale.py`` and ``bench/remembered_start.py`` measure with
(``tests/farm/core/linksim.py``): its clock and its makespan must be right, or the benches report
another scheduler than ours."""

from __future__ import annotations

import pytest

from farm.core.scheduler import LOCAL, JobRequest
from tests.farm.core.linksim import ENGINE, FarmModel, Node

MB = 1_000_000


def _three_jobs_beside_slow_nodes(recalled: bool = False) -> tuple[FarmModel, float]:
    """This PC 1 s a job; two nodes 8 s a job (gigabit, 5 MB each way); 3 jobs."""
    nodes = [Node(LOCAL, 1.0, 0.0), Node("n1", 8.0, 125 * MB), Node("n2", 8.0, 125 * MB)]
    requests = [JobRequest(f"j{i}", ENGINE, 1.0, transfer_bytes=10 * MB) for i in range(3)]
    model = FarmModel(nodes, {r.id: 5 * MB for r in requests}, blind=False)
    if recalled:
        for n in nodes:
            model.s.recall(n.id, ENGINE, n.seconds_per_job)
            if n.rate:
                model.s.recall_link(n.id, n.rate)
    return model, model.run(requests)


def test_a_copy_a_tick_dispatches_runs_at_that_time_and_the_makespan_ends_with_the_last_job() -> None:
    """Nothing timed: each node takes a job (8 s), this PC its own (ends at 1 s), then backs up one node's
    job at the tick after 1.5 s (1.75 s: its 1 s beats the 1.7 s spent there by the backup ratio), and
    the other's when that ends (2.75 s). The batch ends at 3.75 s; the nodes' cancelled copies run on
    to 8 s, which is no one's result. (The model ran a tick's dispatches only after the next event, at
    8 s, and counted the cancelled copies' end: 8.08 s.)"""
    model, makespan = _three_jobs_beside_slow_nodes()
    assert len(model.done) == 3
    assert makespan == pytest.approx(3.75)


def test_with_the_nodes_known_slow_this_pc_runs_the_small_batch_alone() -> None:
    """Recalled from an earlier batch: the nodes take 8 s a job; no job goes there, and the batch ends when
    this PC alone would end it (3 s), never later."""
    model, makespan = _three_jobs_beside_slow_nodes(recalled=True)
    assert len(model.done) == 3 and makespan == pytest.approx(3.0)
