"""The next batch starts from what the last one measured (farm.core.remembered): small batches on this PC
+ 2 SIMULATED nodes, each run twice on a fake clock, from nothing measured (the first batch of a day)
and with every worker's speed and link rate recalled (the next batch), in one run (ratios).

Nothing runs but the real :class:`farm.core.scheduler.Scheduler` and the discrete-event model of the farm
around it (``tests/farm/core/linksim.py``: uploads, engines and downloads; each node's own link). This PC
takes 1 s a job. Rows: the nodes' engine time a job, their link, the bytes each job moves each way, and
the batch size. A small batch is where the start matters: with nothing measured a slow node gets a job
that this PC must then back up, and a node's next input waits for its first timing.

    PYTHONPATH=. python bench/remembered_start.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.core.scheduler import LOCAL, JobRequest
from tests.farm.core.linksim import ENGINE, FarmModel, Node

MB = 1_000_000
ROWS = [  # nodes' seconds a job, their link (bytes/s), bytes each job moves each way
    (8.0, 125 * MB, 5 * MB),  # old PCs without a GPU on a gigabit LAN
    (3.0, 125 * MB, 5 * MB),
    (1.0, 12.5 * MB, 5 * MB),  # GPU nodes as fast as this PC, on 100 Mbit/s
    (0.5, 12.5 * MB, 40 * MB),  # fast GPUs behind 100 Mbit/s, 40 MB PNGs
]


def makespan(recalled: bool, jobs: int, node_seconds: float, rate: float, moved: int) -> float:
    nodes = [Node(LOCAL, 1.0, 0.0), Node("n1", node_seconds, rate), Node("n2", node_seconds, rate)]
    requests = [JobRequest(f"j{i:03d}", ENGINE, 1.0, transfer_bytes=2 * moved) for i in range(jobs)]
    model = FarmModel(nodes, {r.id: moved for r in requests}, blind=False)
    if recalled:  # what an earlier batch measured: each worker's speed, each node's link
        for n in nodes:
            model.s.recall(n.id, ENGINE, n.seconds_per_job)
            if n.rate:
                model.s.recall_link(n.id, n.rate)
    end = model.run(requests)
    assert len(model.done) == jobs
    return end


def main() -> None:
    print("this PC (1 s a job) + 2 SIMULATED nodes, fake clock\n")
    print("| nodes: s a job | link | moved each way | jobs | this PC alone | first batch | next batch | next / first |")
    print("|---|---|---|---|---|---|---|---|")
    for node_seconds, rate, moved in ROWS:
        for jobs in (3, 4, 6, 12):
            first = makespan(False, jobs, node_seconds, rate, moved)
            nxt = makespan(True, jobs, node_seconds, rate, moved)
            print(
                f"| {node_seconds:g} | {rate * 8 / 1e6:g} Mbit/s | {moved / MB:g} MB | {jobs} | {jobs:.1f} s "
                f"| {first:.2f} s | {nxt:.2f} s | **{first / nxt:.2f}x** |"
            )


if __name__ == "__main__":
    main()
