"""A node's owner in the app, against real `lanfarm node` processes: the dashboard shows why a node takes
no jobs (paused by its owner, with the reason), and the tray offers Pause / Resume for this PC's node."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from farm.runtime.client import NodeClient
from gui.app import LanFarmApp
from gui.rows import NodeRow
from gui.settings import SettingsStore
from tests.gui.conftest import running, until
from tests.gui.test_dashboard import APP_TOKEN, Node, start_node


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    n = start_node(tmp_path / "node-home", APP_TOKEN, "--simulate")
    yield n
    n.kill()


@pytest.fixture
def app_store(store: SettingsStore) -> SettingsStore:
    store.set_token(APP_TOKEN)
    store.save(replace(store.load(), local_worker=False))
    return store


def test_the_dashboard_shows_a_paused_node_with_the_reason(qloop, node: Node, app_store: SettingsStore) -> None:  # type: ignore[no-untyped-def]
    app = LanFarmApp(store=app_store, use_tray=False, monitor_interval=0.3)
    nodes = app.controller.nodes

    def row() -> NodeRow | None:
        return next((r for r in nodes.rows() if r.address == node.url), None)

    def state_cell() -> str:
        r = row()
        assert r is not None
        return str(nodes.data(nodes.index(nodes.rows().index(r), 1)))

    async def scenario() -> None:
        async with running(app), aiohttp.ClientSession() as http:
            owner = NodeClient(http, node.url, APP_TOKEN)
            await app.controller.add_peer(node.url.removeprefix("http://"))
            await until(lambda: (r := row()) is not None and r.state == "idle", what="node idle")
            await owner.pause(reason="rendering")
            await until(lambda: state_cell() == "paused\nrendering", what="paused with its reason")
            await owner.resume()
            await until(lambda: state_cell() == "idle", what="idle again")

    qloop(scenario(), timeout=60)


@pytest.mark.qt_log_ignore("systemTrayWindowChanged", "propagateSizeHints")  # offscreen: no tray to embed in
def test_the_tray_pauses_and_resumes_this_pcs_node(qloop, app_store: SettingsStore, lanfarm_home: Path) -> None:  # type: ignore[no-untyped-def]
    app = LanFarmApp(store=app_store, use_tray=True, monitor_interval=0.3)
    assert app.tray is not None
    menu = app.tray.local_node

    async def scenario() -> None:
        async with running(app):
            await until(lambda: menu.node is None and not menu.status_action.isVisible(), what="no node yet")
            node = start_node(lanfarm_home, APP_TOKEN, "--simulate")  # the same home: this PC's node
            try:
                menu.refresh_soon()
                await until(lambda: menu.status_action.text() == "This PC's node: available", what="state shown")
                assert menu.pause_action.isVisible() and not menu.resume_action.isVisible()
                menu.pause_action.trigger()
                await until(lambda: menu.status_action.text().startswith("This PC's node: paused"), what="paused")
                assert "paused from the app" in menu.status_action.text()
                assert menu.resume_action.isVisible() and not menu.pause_action.isVisible()
                menu.resume_action.trigger()
                await until(lambda: menu.status_action.text() == "This PC's node: available", what="resumed")
            finally:
                node.kill()
            menu.refresh_soon()
            await until(lambda: not menu.status_action.isVisible(), what="gone with its node")

    qloop(scenario(), timeout=60)


def test_a_node_whose_pc_went_to_sleep_shows_asleep_not_offline(qloop, store: SettingsStore) -> None:  # type: ignore[no-untyped-def]
    from farm.core.nodeinfo import NodeInfo

    app = LanFarmApp(store=store, use_tray=False, monitor_interval=0.3)
    nodes = app.controller.nodes

    async def scenario() -> None:
        async with running(app):
            farm = app.controller.farm
            assert farm is not None and farm.waker is not None
            info = NodeInfo(id="n1", name="gamer-pc", macs=("aa:bb:cc:dd:ee:ff",))
            nodes.node_up("n1", "gamer-pc", "http://192.0.2.5:7788", info)
            nodes.node_down("n1", "stopped answering")
            farm.waker.book.seen("n1", "gamer-pc", "192.0.2.5:7788", info.macs)
            farm.waker.left("n1", "timeout")  # what discovery reports when a PC goes silent (nothing is sent here)
            await until(lambda: nodes.rows()[-1].state == "asleep", what="asleep on the dashboard")
            farm.waker.book.left("n1", "goodbye")  # stopped on purpose: offline, not asleep
            await until(lambda: nodes.rows()[-1].state == "offline", what="offline again")

    qloop(scenario(), timeout=30)
