"""The Nodes tab with a real `lanfarm node` over TLS (127.0.0.1, mDNS off): the lock and the pinned
fingerprint, a node back with a new certificate refused until Trust is pressed, and "Why isn't my PC
here?" showing the doctor's verdicts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from farm.local.pins import colons, load_pins
from gui.app import LanFarmApp
from gui.rows import NodeRow
from gui.settings import SettingsStore
from tests.gui.conftest import running, until
from tests.gui.test_dashboard import APP_TOKEN, app_store, start_node  # noqa: F401 - app_store: a fixture


def test_a_tls_node_shows_its_lock_then_a_new_certificate_waits_for_trust(
    qloop,
    app_store: SettingsStore,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "node-home"
    node = start_node(home, APP_TOKEN)
    port = node.url.rsplit(":", 1)[1]
    app = LanFarmApp(store=app_store, use_tray=False, monitor_interval=0.3)
    dashboard = app.window.dashboard
    checks = dashboard.checks
    asked: list[str] = []
    monkeypatch.setattr(
        QMessageBox, "question", lambda _p, title, _t: asked.append(title) or QMessageBox.StandardButton.Yes
    )

    def row() -> NodeRow | None:
        return next((r for r in app.controller.nodes.rows() if r.address == node.url), None)

    def select() -> None:
        r = row()
        assert r is not None
        dashboard.table.selectRow(app.controller.nodes.rows().index(r))

    async def scenario() -> None:
        nonlocal node
        async with running(app):
            await app.controller.add_peer(node.url)
            await until(lambda: row() is not None and row().state == "idle", what="node idle")
            select()
            pin = next(iter(load_pins().values()))
            assert (
                checks.security.text().startswith("\N{LOCK} TLS")
                and colons(pin.fingerprint, 0) in checks.security.text()
            )
            assert checks.trust_button.isHidden()
            checks.why_button.click()  # the doctor's checks, from the app
            await until(lambda: checks.report is not None and "node " in checks.report.text(), what="verdicts")
            report = checks.report.text()
            assert f"ok   node 127.0.0.1:{port}: gpu-box answers" in report and "pinned earlier" in report
            checks.report.close()
            node.kill()
            [tls] = [p.parent for p in home.rglob("node-cert.pem")]
            shutil.rmtree(tls)  # the node is reinstalled: a new certificate, the same id and port
            node = start_node(home, APP_TOKEN, "--port", port)
            await until(lambda: row() is not None and row().state == "untrusted", timeout=20, what="untrusted")
            select()
            assert "lanfarm nodes trust gpu-box" in dashboard.detail.text()
            assert not checks.trust_button.isHidden() and app.controller.farm.worker_ids == frozenset()
            assert next(iter(load_pins().values())).fingerprint == pin.fingerprint
            checks.trust_button.click()
            await until(lambda: row() is not None and row().state == "idle", timeout=20, what="trusted, idle again")
            assert asked == ["Trust gpu-box?"]
            assert next(iter(load_pins().values())).fingerprint != pin.fingerprint
            select()
            assert checks.trust_button.isHidden()

    try:
        qloop(scenario(), timeout=90)
    finally:
        node.kill()
