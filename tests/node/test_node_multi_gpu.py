"""Multi-GPU nodes with a FAKE GPU list (no GPU exists here): one slot per GPU, slot i runs its engines
from its own device's registry (cuda:i), --gpu N repeatable alongside LANFARM_DEVICE."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

from farm.core.nodeinfo import GpuInfo
from farm.engines import simulated
from farm.engines.base import CancelToken, ProgressFn
from farm.engines.devices import slot_devices
from farm.engines.registry import EngineEntry, Registry
from farm.errors import EngineError
from farm.local.hardware import Hardware
from node.app import create_app
from node.config import NodeConfig
from tests.node.helpers import SIGNED, TOKEN
from tests.node.test_node_api import SLOW, submit, upload, wait_state

GPU_BOX = Hardware(
    cpu="Test CPU",
    cpu_count=16,
    ram_total=1 << 36,
    backend="cuda",
    gpus=tuple(GpuInfo(i, f"FAKE GPU {i}", vram_total=24 << 30, vram_free=20 << 30) for i in range(2)),
)


def test_one_slot_per_gpu_slot_i_on_cuda_i() -> None:
    assert slot_devices(2) == ["cuda:0", "cuda:1"]
    assert slot_devices(4, slots=2) == ["cuda:0", "cuda:1"]
    assert slot_devices(2, slots=3) == ["cuda:0", "cuda:1", "cuda:0"]  # more slots go round the GPUs
    assert slot_devices(4, gpus=(3, 1)) == ["cuda:3", "cuda:1"]
    assert slot_devices(4, gpus=(2, 2)) == ["cuda:2"]  # a GPU listed twice is one slot
    assert slot_devices(2, device="cpu", slots=2) == ["cpu", "cpu"]  # LANFARM_DEVICE / --device: every slot
    assert slot_devices(2, backend="rocm") == ["cuda:0", "cuda:1"]  # ROCm torch names its GPUs cuda too
    assert slot_devices(0) == [None] and slot_devices(1, backend="mps") == [None]  # the automatic choice
    with pytest.raises(EngineError, match="--gpu 2: this PC has 2 GPUs"):
        slot_devices(2, gpus=(0, 2))
    with pytest.raises(EngineError, match="--gpu 0: this PC has no GPU"):
        slot_devices(0, gpus=(0,))


class TaggedEngine(simulated.SimulatedEngine):
    """The SIMULATED GPU engine, recording which device's registry ran each job."""

    def __init__(self, device: str, seen: list[str]) -> None:
        super().__init__()
        self.device, self.seen = device, seen

    def run(
        self,
        image: np.ndarray,
        mask: np.ndarray | None,
        params: Mapping[str, Any],
        progress: ProgressFn,
        cancel: CancelToken,
    ) -> np.ndarray:
        self.seen.append(f"{self.device} {threading.current_thread().name}")
        return super().run(image, mask, params, progress, cancel)


async def test_two_jobs_at_once_run_on_two_devices(aiohttp_client: Any) -> None:
    seen: list[str] = []
    devices = slot_devices(len(GPU_BOX.gpus))

    def registry(device: str | None) -> Registry:
        tag = device or "auto"
        return Registry([EngineEntry(simulated.DESCRIPTOR, lambda _m: TaggedEngine(tag, seen))])

    by_device = {d: registry(d) for d in devices}
    app = create_app(
        NodeConfig(advertise=False),
        registry=by_device[devices[0]],
        token=TOKEN,
        node_id="gpubox000001",
        hardware=GPU_BOX,
        slot_registries=[by_device[d] for d in devices],
        slot_devices=devices,
    )
    client = await aiohttp_client(app, middlewares=SIGNED)
    from tests.node.test_node_api import IMG, MASK

    await upload(client, IMG, MASK)
    info = await (await client.get("/v1/info")).json()
    assert info["slots"]["total"] == 2 and info["devices"] == ["cuda:0", "cuda:1"]
    await submit(client, "first-job", **SLOW)
    await submit(client, "second-job", **SLOW)
    for job_id in ("first-job", "second-job"):
        await wait_state(client, job_id, "done", timeout=20)
    assert sorted(s.split()[0] for s in seen) == ["cuda:0", "cuda:1"]  # each slot on its own GPU
    assert len({s.split()[1] for s in seen}) == 2  # from two slot threads


def test_gpu_is_repeatable_and_a_missing_gpu_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    from farm.cli import main

    assert main(["node", "--print-config", "--gpu", "0", "--gpu", "1"]) == 0
    out = capsys.readouterr().out
    assert "gpus = [0, 1]" in out and 'device = "' not in out
    assert main(["node", "--print-config", "--gpu", "0", "--gpu", "1", "--device", "cuda:0"]) == 2
    assert "--gpu 0 --gpu 1 and --device cuda:0 disagree" in capsys.readouterr().err
    token = tmp_path / "token"
    token.write_text(TOKEN)
    args = ["node", "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--token-file", str(token)]
    assert main([*args, "--gpu", "0", "--gpu", "1"]) == 2  # this machine has no GPU at all
    assert "--gpu 0: this PC has no GPU" in capsys.readouterr().err


def test_the_farm_plans_with_the_smallest_gpu_a_slot_runs_on() -> None:
    from farm.core.nodeinfo import NodeInfo

    gpus = [
        {"index": 0, "name": "FAKE 24 GB", "vram_total": 24 << 30},
        {"index": 1, "name": "FAKE 8 GB", "vram_total": 8 << 30},
    ]
    both = NodeInfo.from_dict({"id": "n", "hardware": {"gpus": gpus}, "devices": ["cuda:0", "cuda:1"]})
    assert both.memory_mb == 8 << 10  # a job may land on the 8 GB slot
    first = NodeInfo.from_dict({"id": "n", "hardware": {"gpus": gpus}, "devices": ["cuda:0"]})
    assert first.memory_mb == 24 << 10
    older = NodeInfo.from_dict({"id": "n", "hardware": {"gpus": gpus}})  # a node that does not say
    assert older.memory_mb == 24 << 10
