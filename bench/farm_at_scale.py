"""The pure scheduler driving a SIMULATED farm of 200 nodes with mixed engine speeds and link rates
(issue 12): makespan against the ideal, and the cost of one decision.

Nothing runs but the real :class:`farm.core.scheduler.Scheduler` and a discrete-event model of the
farm around it, on a fake clock (``tests/farm/core/linksim.py``, which the scheduler's tests drive too).

Ideal makespan: jobs / the farm's combined rate, where each worker's rate is the smallest of its engine
rate, its upload rate and its download rate (the larger of the compute bound and the link bound, per
worker). Jobs are indivisible, so the ideal is also at least the slowest single job. The ideal treats
the batch as a fluid; "best possible" is a lower bound for whole jobs (each node's first result needs
an upload, its engine and a download; each next one a cycle), which no schedule can beat: the gap
between the two is the batch's edges (about 20 jobs a node at 4000 jobs), not the scheduler.

Rows: one batch of whole files (every job moves ``--bytes`` up and down) and one of shipped crops (the
same jobs, ``shippable`` with a cut of 3 % of the bytes), each run twice: with the link rates never
reported to the scheduler (placement by engine time only) and transfer-aware.

    PYTHONPATH=. python bench/farm_at_scale.py [--nodes 200] [--jobs 2000,4000,10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from farm.core.scheduler import JobRequest
from tests.farm.core.linksim import ENGINE, FarmModel, best_possible, farm, ideal


def row(label: str, n_nodes: int, n_jobs: int, moved: int, shippable: bool, blind: bool, seed: int) -> None:
    nodes = farm(n_nodes, random.Random(seed))
    requests = [
        JobRequest(f"j{i:05d}", ENGINE, 1.0, transfer_bytes=2 * moved, shippable=shippable) for i in range(n_jobs)
    ]
    model = FarmModel(nodes, {r.id: moved for r in requests}, blind)
    if shippable and not blind:
        for _ in range(20):
            model.s.shipped(moved / (moved / 0.03))  # the farm has measured cuts of 3 % of the files
    makespan = model.run(requests)
    assert len(model.done) == n_jobs, f"{n_jobs - len(model.done)} jobs never finished"
    best, bound = ideal(nodes, n_jobs, moved), best_possible(nodes, n_jobs, moved)
    per_call = model.call_seconds / model.calls * 1e6
    print(
        f"| {label} | {n_jobs} | {'links unmeasured' if blind else 'transfer-aware'} | {makespan:8.1f} s "
        f"| {best:8.1f} s | **{best / makespan:5.3f}** | {bound:8.1f} s | {bound / makespan:5.3f} "
        f"| {per_call:6.1f} µs |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--jobs", default="4000", help="batch sizes, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"{args.nodes} SIMULATED nodes + this PC, fake clock\n")
    print("| batch | jobs | placement | makespan | ideal | of ideal | best possible | of it | per scheduler call |")
    print("|---|---|---|---|---|---|---|---|---|")
    whole, crop = 8_000_000, 240_000  # an 8 MB JPEG each way, or its 3 % crop
    for n_jobs in (int(n) for n in args.jobs.split(",")):
        for label, moved, ship in (("whole files, 8 MB", whole, False), ("shipped crops, 240 kB", crop, True)):
            for blind in (True, False):
                row(label, args.nodes, n_jobs, moved, ship, blind, args.seed)


if __name__ == "__main__":
    main()
