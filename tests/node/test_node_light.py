"""A light idle node: GPU facts without torch (NVML or nvidia-smi); torch loads with the first AI job."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from farm.local import hardware
from tests.conftest import subprocess_env
from tests.node.helpers import start_node, stop_node, unverified_context


def test_probing_this_pc_does_not_import_torch() -> None:
    code = "import sys; from farm.local import hardware; hardware.probe(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_an_idle_node_process_has_not_loaded_torch(tmp_path: Path) -> None:
    proc, url = start_node(tmp_path / "home", "--host", "127.0.0.1", "--port", "0", "--no-advertise")
    try:
        with urllib.request.urlopen(
            f"{url}/v1/health", timeout=10, context=unverified_context()
        ) as resp:  # up and idle
            assert resp.status == 200
        maps = Path(f"/proc/{proc.pid}/maps").read_text()
    finally:
        code, err = stop_node(proc)
    assert code == 0, err[-2000:]
    assert "libtorch" not in maps, "the idle node mapped torch's libraries"


def test_gpus_come_from_nvidia_smi_where_nvml_is_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A FAKE for what cannot exist here (an NVIDIA driver): an nvidia-smi answering as the real one does
    fake = tmp_path / "nvidia-smi"
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *--query-gpu=index,name,memory.total,memory.free,driver_version*--format=csv,noheader,nounits*)\n'
        "  echo '0, NVIDIA GeForce RTX 4090, 24564, 23012, 550.54.14'\n"
        "  echo '1, NVIDIA RTX A4000, 16376, 16100, 550.54.14' ;;\n"
        "*) exit 9 ;;\nesac\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(hardware, "_nvml_gpus", lambda: None)
    backend, gpus = hardware.probe_gpus()
    assert backend == "cuda" and [g.name for g in gpus] == ["NVIDIA GeForce RTX 4090", "NVIDIA RTX A4000"]
    assert gpus[0].vram_total == 24564 << 20 and gpus[0].vram_free == 23012 << 20 and gpus[1].index == 1
    assert gpus[0].driver == "550.54.14"
