"""`lanfarm demo`, the README's main command: a whole farm on 127.0.0.1."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import LANFARM, REPO, subprocess_env


def test_demo_splits_the_samples_across_two_nodes_and_this_pc(tmp_path: Path, lanfarm_home: Path) -> None:
    out = tmp_path / "out"
    result = subprocess.run(
        [*LANFARM, "demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(LANFARM_HOME=str(lanfarm_home), COLUMNS="200"),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    samples = sorted(p.name for p in (REPO / "resources" / "samples").glob("*.png"))
    assert sorted(p.name for p in out.iterdir()) == samples
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 4}
    assert {"this PC", "demo-node-1", "demo-node-2"} <= set(rows)
    for name in ("this PC", "demo-node-1", "demo-node-2"):
        assert int(rows[name].split("│")[2]) >= 1, f"{name} did no edit:\n{result.stdout}"
    assert "127.0.0.1" in result.stdout
