"""The dashboard against real `lanfarm node` processes on 127.0.0.1 (mDNS off): added by address, busy
while it runs a job, offline once killed; a node with another farm's token shows unauthorised."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from farm.core.spec import EditSpec
from gui.app import LanFarmApp
from gui.rows import NodeRow
from gui.settings import SettingsStore
from tests.conftest import REPO
from tests.gui.conftest import running, until, write_inputs

APP_TOKEN = "gui-test-farm-token-0123456789abcdef"


class Node:
    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc, self.url = proc, url

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_node(home: Path, token: str, *extra: str) -> Node:
    home.mkdir(parents=True, exist_ok=True)
    token_file = home / "token"
    token_file.write_text(token + "\n")
    env = {k: v for k, v in os.environ.items() if k != "LANFARM_TOKEN"}
    env.update(PYTHONPATH=str(REPO), LANFARM_HOME=str(home))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "farm.cli",
            "node",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-advertise",
            "--token-file",
            str(token_file),
            "--name",
            "gpu-box",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            line = proc.stdout.readline().decode()
            if line.startswith("lanfarm node listening on "):
                return Node(proc, line.strip().rsplit(" ", 1)[1])
            if not line:
                break
    proc.kill()
    raise AssertionError("node did not start")


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = start_node(tmp_path / "node-home", APP_TOKEN, "--simulate")
    yield n
    n.kill()


@pytest.fixture
def app_store(store: SettingsStore) -> SettingsStore:
    store.set_token(APP_TOKEN)
    store.save(replace(store.load(), local_worker=False))  # every job must go to the node
    return store


def test_node_added_by_address_goes_busy_then_offline_when_killed(
    qloop, node: Node, app_store: SettingsStore, tmp_path: Path
) -> None:
    inputs = write_inputs(tmp_path / "in", 1, size=(200, 100))
    app = LanFarmApp(store=app_store, use_tray=False, monitor_interval=0.3)
    nodes = app.controller.nodes
    dashboard = app.window.dashboard

    def find_row() -> NodeRow | None:
        return next((r for r in nodes.rows() if r.address == node.url), None)

    def row() -> NodeRow:
        r = find_row()
        assert r is not None, f"{node.url} is not on the dashboard"
        return r

    async def scenario() -> None:
        async with running(app):
            dashboard.address.setText(node.url.split("://")[-1])  # as typed: https is the default
            dashboard.add_button.click()
            await until(lambda: find_row() is not None and row().state == "idle", what="node idle on the dashboard")
            r = row()
            assert r.name == "gpu-box" and r.gpu.startswith("CPU") and r.online
            assert app.controller.settings.peers == (node.url,)
            assert app_store.load().peers == (node.url,)  # saved for the next start
            # the node's engines join the edit picker: this PC has no simulated GPU, the node does
            assert "sim" not in app.controller.registry.ids()
            form = app.window.edit_form
            await until(lambda: form.engine.findData("sim") >= 0, what="the node's engine in the edit picker")
            form.set_engine("sim")
            assert "seconds_per_mp" in form.controls and form.spec().engine == "sim"
            # a SIMULATED GPU job of ~2 s (0.02 MP at 100 s/MP) on the node
            spec = EditSpec(engine="sim", params={"seconds_per_mp": 100.0})
            await app.controller.add_paths(inputs, spec)
            await until(lambda: row().state == "busy", timeout=15, what="node busy")
            assert row().job == "img0.png"
            index = nodes.index(nodes.rows().index(row()), 1)
            assert nodes.data(index) == "busy"
            await until(lambda: app.controller.queue.counts().done == 1, timeout=20, what="job done on the node")
            await until(lambda: row().done == 1 and row().state == "idle", what="node idle with 1 done")
            assert sum(row().history) == 1  # the sparkline saw the finished job
            assert app.controller.queue.job_row(0).job.worker == row().id
            node.kill()
            await until(lambda: row().state == "offline", timeout=10, what="node offline after kill")
            assert row().id not in app.controller.farm.worker_ids

    qloop(scenario(), timeout=60)


def test_a_node_with_another_token_shows_unauthorised(qloop, app_store: SettingsStore, tmp_path: Path) -> None:
    other = start_node(tmp_path / "other-home", "another-farm-token-0123456789abcdef")
    app = LanFarmApp(store=app_store, use_tray=False, monitor_interval=0.3)
    nodes = app.controller.nodes
    try:

        async def scenario() -> None:
            async with running(app):
                await app.controller.add_peer(other.url)
                r = next(r for r in nodes.rows() if r.address == other.url)
                assert r.state == "unauthorised"
                assert "token" in r.error
                assert r.id not in app.controller.farm.worker_ids
                row = nodes.rows().index(r)
                assert nodes.data(nodes.index(row, 1)) == "unauthorised"
                title = nodes.data(nodes.index(row, 0))
                assert title.count(other.url.split("://")[-1]) == 1  # the address once, not twice
                assert "Copy the token" in r.error  # the fix is said on the page, not only in a tooltip
                dashboard = app.window.dashboard
                dashboard.table.selectRow(row)
                assert "Copy the token" in dashboard.detail.text() and not dashboard.detail.isHidden()

        qloop(scenario(), timeout=60)
    finally:
        other.kill()


def test_an_address_without_a_node_is_refused_with_a_message(qloop, app_store: SettingsStore) -> None:
    app = LanFarmApp(store=app_store, use_tray=False, monitor_interval=0.3)
    messages: list[str] = []
    app.controller.message.connect(messages.append)

    async def scenario() -> None:
        async with running(app):
            dashboard = app.window.dashboard
            dashboard.address.setText("127.0.0.1:1")  # nothing listens on port 1
            dashboard.add_button.click()
            await until(lambda: any("did not answer" in m for m in messages), what="an error message")
            dashboard.address.setText("box:notaport")
            dashboard.add_button.click()
            await until(lambda: any("not a number" in m for m in messages), what="a parse error message")
            assert app.controller.settings.peers == ()
            assert [r.id for r in app.controller.nodes.rows()] == []  # local worker is off here

    qloop(scenario())
