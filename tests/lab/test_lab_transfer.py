"""Bytes on the wire in the LAN lab (100 Mbit/s links shaped with tbf): a batch of inpaints across two
real `lanfarm node` processes moves the crops the engine needs, not the photos. A byte count from the
farm host's interface counters, not a timing."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from farm.core.spec import EditSpec
from farm.imaging.shipping import cut
from tests.lab.netlab import Host, Lab
from tests.lab.test_lab_farm import farm_env, start_node, summary
from tests.node.helpers import TOKEN

pytestmark = pytest.mark.lab

W, H, N = 2400, 1600, 6


def photos(folder: Path) -> Path:
    folder.mkdir(parents=True)
    y, x = np.mgrid[0:H, 0:W]
    for i in range(N):
        rng = np.random.default_rng(i)
        base = np.dstack([x * 255 / W, y * 255 / H, (x + y) * 127 / (W + H)])
        img = np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"p{i}.png"), img)
        mask = np.zeros((H, W), np.uint8)
        x0, y0 = 300 + 250 * i, 200 + 150 * i
        mask[y0 : y0 + 80, x0 : x0 + 150] = 255  # a watermark: 0.3 % of the frame
        cv2.imwrite(str(folder / f"p{i}_mask.png"), mask)
    return folder


def wire_bytes(host: Host) -> int:
    stats = "/sys/class/net/eth0/statistics"
    return sum(int(host.run(["cat", f"{stats}/{d}_bytes"]).stdout) for d in ("tx", "rx"))


def test_a_batch_moves_its_crops_not_its_photos(tmp_path: Path) -> None:
    src = photos(tmp_path / "in")
    crops = 0
    for i in range(N):
        shipment = cut((src / f"p{i}.png").read_bytes(), (src / f"p{i}_mask.png").read_bytes(), EditSpec())
        assert shipment is not None
        crops += 2 * len(shipment.image) + len(shipment.mask)  # the crop up and back, its mask up
    whole = sum(p.stat().st_size for p in src.glob("p?.png"))
    with Lab(3, rate="100mbit") as lab:
        n1, n2, farm_host = lab.hosts
        for i, host in enumerate((n1, n2)):
            start_node(host, tmp_path / f"n{i}")  # the real OpenCV engine
        token = tmp_path / "farm-token"
        token.write_text(TOKEN)
        before = wire_bytes(farm_host)
        argv = [sys.executable, "-m", "farm.cli", "run", str(src), "--out", str(tmp_path / "out"), "--no-local"]
        argv += ["--peer", f"{n1.ip}:7788", "--peer", f"{n2.ip}:7788", "--interface", farm_host.ip]
        argv += ["--token-file", str(token), "--json", "--ship", "crop"]  # auto may pick whole on a busy CPU
        report = summary(farm_host.run(argv, env=farm_env(tmp_path), timeout=180))
        moved = wire_bytes(farm_host) - before
    assert len(report["done"]) == N and report["failed"] == []
    assert {w["name"] for w in report["workers"].values() if w["done"]} == {f"node-{n1.ip}", f"node-{n2.ip}"}
    # crops and results, plus HTTP, mDNS and TCP overhead (small): never the photos
    assert moved <= 1.2 * crops + 400_000, f"{moved} bytes on the wire for {crops} bytes of crops ({whole} whole)"
    assert moved * 5 < whole
