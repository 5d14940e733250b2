"""Benchmark: an idle `lanfarm node` (the ai extra installed): time to "listening" and resident memory,
this tree against a baseline tree (by default the landed commit before the light probe), in one run.

    python bench/node_start.py [--baseline COMMIT] [--reps 3]

Each node runs in its own loopback-only network namespace (`unshare -n`, root), so nothing is
advertised or sent anywhere; alternating runs, best of ``--reps`` per tree.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = "8c1957b"  # the tree whose node probed GPUs through torch at start


def start_once(tree: Path, home: Path) -> tuple[float, int]:
    """Seconds to the "listening" line, and VmRSS in kB one second later."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANFARM_")}
    env.update(PYTHONPATH=str(tree), LANFARM_HOME=str(home), LANFARM_TOKEN="bench-token-0123456789")
    script = f"ip link set lo up && exec {sys.executable} -m farm.cli node --host 127.0.0.1 --port 0 --no-advertise"
    began = time.perf_counter()
    proc = subprocess.Popen(["unshare", "-n", "sh", "-c", script], cwd=tree, env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    try:
        while True:
            ready, _, _ = select.select([proc.stdout], [], [], 30)
            line = proc.stdout.readline() if ready else b""
            if line.startswith(b"lanfarm node listening on "):
                break
            if not line:
                raise RuntimeError(f"the node in {tree} did not start")
        listening = time.perf_counter() - began
        time.sleep(1.0)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))
        return listening, rss
    finally:
        proc.terminate()
        proc.wait(15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", default=BASELINE, help="commit to compare with (a git worktree is made)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lanfarm-bench-") as tmp:
        old = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(old), args.baseline], cwd=REPO, check=True)
        try:
            results: dict[str, list[tuple[float, int]]] = {"baseline": [], "this tree": []}
            for rep in range(args.reps):
                for name, tree in (("baseline", old), ("this tree", REPO)):
                    results[name].append(start_once(tree, Path(tmp) / f"home-{name}-{rep}"))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, check=False)
    print(f"idle lanfarm node, best of {args.reps} (baseline {args.baseline})")
    print(f"{'tree':12s} {'to listening':>13s} {'idle RSS':>10s}")
    best = {}
    for name, runs in results.items():
        seconds, rss = min(r[0] for r in runs), min(r[1] for r in runs)
        best[name] = (seconds, rss)
        print(f"{name:12s} {seconds:11.2f} s {rss / 1024:7.0f} MB")
    (s0, r0), (s1, r1) = best["baseline"], best["this tree"]
    print(f"this tree / baseline: start {s1 / s0:.2f}x, memory {r1 / r0:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
