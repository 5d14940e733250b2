"""One big upscale as tiles across the LAN lab: `lanfarm run --tiles` with two real `lanfarm node`
processes (found over mDNS on the lab's bridge) and this PC, the SIMULATED GPU upscaler everywhere."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.lab.netlab import Lab
from tests.lab.test_lab_farm import by_name, farm_env, start_node, summary
from tests.node.helpers import TOKEN

pytestmark = pytest.mark.lab


def test_lanfarm_run_spreads_one_upscales_tiles_over_the_lan_and_writes_one_output(tmp_path: Path) -> None:
    """``--tiles auto`` (the default): 4 MP at the prior speed is worth cutting for 3 PCs; the run lets the
    nodes answer before it queues the image, so the cut counts them."""
    src = tmp_path / "in"
    src.mkdir()
    y, x = np.mgrid[0:1700, 0:2400]
    image = np.dstack([x * 255 // 2400, y * 255 // 1700, (x + y) % 256]).astype(np.uint8)  # 4.1 MP
    cv2.imwrite(str(src / "poster.png"), image)
    with Lab(3) as lab:
        n1, n2, farm_host = lab.hosts
        for i, host in enumerate((n1, n2)):
            start_node(host, tmp_path / f"n{i}", "--simulate")
        token = tmp_path / "farm-token"
        token.write_text(TOKEN)
        argv = [sys.executable, "-m", "farm.cli", "run", str(src / "poster.png"), "--out", str(tmp_path / "out")]
        argv += ["--simulate", "--engine", "sim-upscale", "--param", "seconds_per_mp=1"]
        argv += ["--discover-on", farm_host.ip, "--token-file", str(token), "--json", "--wait", "20"]
        report = summary(farm_host.run(argv, env=farm_env(tmp_path), timeout=180))
    assert report["done"] == [str(tmp_path / "out" / "poster.png")] and report["failed"] == []
    workers = by_name(report)
    assert sum(w["parts"] for w in workers.values()) >= 3  # a tile that ran twice (a backup) counts twice
    assert sum(1 for w in workers.values() if w["parts"]) >= 2, workers
    assert all(w["done"] == 0 for w in workers.values())  # the edit is the farm's: written once, here
    out = cv2.imread(str(tmp_path / "out" / "poster.png"))
    assert np.array_equal(out, np.repeat(np.repeat(image, 4, axis=0), 4, axis=1))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["poster.png"]
