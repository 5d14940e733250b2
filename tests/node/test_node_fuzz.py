"""schemathesis (a third-party API fuzzer) against a real `lanfarm node` over TLS: its status-code
conformance and positive-data-acceptance checks find nothing. The dev extra installs it; its pytest
plugin is off for this suite (``-p no:schemathesis``). Its command: LANFARM_SCHEMATHESIS, else the one
beside this Python, else on PATH; skipped only outside CI. A signing proxy (tests/node/signing_proxy.py)
signs each request, since a fuzzer sends fixed headers and a signed request counts once."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.lab.netlab import Lines
from tests.node.helpers import OPENAPI, TOKEN, node_env, start_node, stop_node

CONFIG = Path(__file__).with_name("schemathesis.toml")


def schemathesis() -> str | None:
    beside = Path(sys.executable).with_name("schemathesis")
    return os.environ.get("LANFARM_SCHEMATHESIS") or (str(beside) if beside.exists() else shutil.which("schemathesis"))


@pytest.mark.slow
def test_schemathesis_finds_no_undocumented_status_and_no_refused_valid_request(tmp_path: Path) -> None:
    tool = schemathesis()
    if tool is None:
        if os.environ.get("CI"):
            pytest.fail("schemathesis is not installed in CI (it is in the dev extra)")
        pytest.skip("schemathesis is not installed (LANFARM_SCHEMATHESIS=/path/to/schemathesis)")
    home = tmp_path / "node"
    node, url = start_node(home, "--host", "127.0.0.1", "--port", "0", "--no-advertise", "--simulate")
    proxy = subprocess.Popen(
        [sys.executable, "-m", "tests.node.signing_proxy", url, TOKEN],
        env=node_env(home),
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        line = Lines(proxy.stdout).expect(lambda text: text.startswith("proxy listening on "), timeout=20)
        result = subprocess.run(
            [tool, "--config-file", str(CONFIG), "run", str(OPENAPI), "-u", line.split()[-1]]
            + ["--checks", "status_code_conformance,positive_data_acceptance", "-n", "25", "-w", "2"],
            cwd=tmp_path,  # it writes .schemathesis/ into the working folder
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    finally:
        proxy.terminate()
        proxy.wait(10)
        if proxy.stdout is not None:
            proxy.stdout.close()
        stop_node(node)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failures" not in result.stdout.split("SUMMARY")[-1]
