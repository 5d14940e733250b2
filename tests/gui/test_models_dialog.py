"""The Models window (toolbar "Models…"): this PC's models with their ids, and "Copy to nodes" to a real
`lanfarm node` on 127.0.0.1, which checks the model loads before it offers it."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from farm.runtime.client import NodeClient
from gui.app import LanFarmApp
from gui.settings import SettingsStore
from tests.gui.conftest import running, until
from tests.gui.test_dashboard import APP_TOKEN, start_node


def test_copy_to_nodes_from_the_models_window(qloop, store: SettingsStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("spandrel")
    from tests.farm.engines import builders

    models = store.load().models_dir
    models.mkdir(parents=True)
    model = builders.save_safetensors(builders.compact_state_dict(scale=4), models / "compact-x4.safetensors")
    (models / "notes.txt").write_text("not a model")  # not listed
    node = start_node(tmp_path / "node-home", APP_TOKEN, "--models-dir", str(tmp_path / "node-models"))
    store.set_token(APP_TOKEN)
    store.save(replace(store.load(), local_worker=False, peers=(node.url,)))
    app = LanFarmApp(store=store, use_tray=False, monitor_interval=0.3)

    async def node_models() -> list[dict[str, object]]:
        async with aiohttp.ClientSession() as session:
            info = await NodeClient(session, node.url, APP_TOKEN).call("GET", "/v1/info")
        return list(info["models"])

    async def scenario() -> None:
        async with running(app):
            await until(lambda: any(not w.local for w in app.controller.farm.workers()), what="the node online")  # type: ignore[union-attr]
            dialog = app.window.show_models()
            await until(lambda: dialog.table.rowCount() == 1, what="the models listed")
            assert dialog.table.item(0, 0).text() == "compact-x4.safetensors"
            assert dialog.table.item(0, 3).text() == hashlib.sha256(model.read_bytes()).hexdigest()[:12]
            assert not dialog.copy_action.isEnabled()  # nothing selected yet
            dialog.table.selectRow(0)
            assert dialog.copy_action.isEnabled() and dialog.copy_button.isEnabled()
            done: list[object] = []
            dialog.copied.connect(done.append)
            dialog.copy_action.trigger()
            await until(lambda: bool(done), timeout=60, what="the copy to end")
            assert "copied to gpu-box" in dialog.status.text()
            assert [m["name"] for m in await node_models()] == ["compact-x4.safetensors"]
            assert (tmp_path / "node-models" / "compact-x4.safetensors").read_bytes() == model.read_bytes()
            done.clear()
            dialog.copy_button.click()  # again: the node has it, nothing is sent
            await until(lambda: bool(done), timeout=60, what="the second copy to end")
            assert "gpu-box already had it" in dialog.status.text()
            dialog.close()
            await asyncio.sleep(0)

    try:
        qloop(scenario(), timeout=120)
    finally:
        node.kill()


def test_sending_models_is_a_setting(qloop, store: SettingsStore) -> None:  # type: ignore[no-untyped-def]
    app = LanFarmApp(store=store, use_tray=False, monitor_interval=0.3)

    async def scenario() -> None:
        async with running(app):
            farm = app.controller.farm
            assert farm is not None and farm.models.mode == "auto"  # the default
            page = app.window.settings_page
            assert page.send_models.currentText() == "automatically"
            assert [page.send_models.itemText(i) for i in range(3)] == ["automatically", "ask me", "never"]
            page.send_models.setCurrentText("never")
            page.apply_button.click()
            assert farm.models.mode == "off" and store.load().send_models == "off"  # at once, and kept

    qloop(scenario(), timeout=60)
    again = LanFarmApp(store=store, use_tray=False, monitor_interval=0.3)

    async def reopened() -> None:
        async with running(again):
            assert again.controller.farm is not None and again.controller.farm.models.mode == "off"
            assert again.window.settings_page.send_models.currentText() == "never"

    qloop(reopened(), timeout=60)
