"""The app says what happened and keeps it (issue 16, build point 1): messages that stay, a node's
death explained where its edits are, failed rows with a reason and a fix, jobs no worker can run end
with the reason, unavailable engines explained and never picked by accident, a node's errors readable."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel
from PySide6.QtWidgets import QApplication, QMessageBox

import gui.main_window as mw
from farm.core.job import JobState
from farm.core.spec import EditSpec
from farm.engines.installed import default_registry
from gui.app import LanFarmApp
from gui.edit_form import EditForm
from gui.queue_model import QueueDelegate
from gui.rows import JobRow, NodeRow
from gui.settings import SettingsStore
from tests.gui.conftest import running, until, write_inputs
from tests.gui.test_dashboard import APP_TOKEN, Node, start_node

IN_FLIGHT = (JobState.DISPATCHED, JobState.RUNNING)


def test_messages_stay_in_the_activity_strip_with_their_history(qloop, store: SettingsStore) -> None:
    app = LanFarmApp(store=store, use_tray=False)
    strip = app.window.activity

    async def scenario() -> None:
        async with running(app):
            app.controller.post("first thing", "warning")
            app.controller.post("second thing")
            assert strip.text.text() == "second thing"
            assert app.controller.log.texts()[-2:] == ["first thing", "second thing"]
            assert [strip.history.item(i).text().split("  ", 1)[1] for i in range(2)] == [
                "second thing",
                "first thing",
            ]
            # nothing is shown in a status line that fades on a timer
            assert app.window.statusBar().currentMessage() == ""

    qloop(scenario())


def test_a_job_no_worker_can_run_ends_with_the_reason_and_a_fix(
    qloop, store: SettingsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = write_inputs(tmp_path / "in", 1)
    app = LanFarmApp(store=store, use_tray=False)
    window, model = app.window, app.controller.queue
    assert not next(d for d in app.controller.engines() if d.id == "lama").available  # no big-lama.pt here
    opened: list[Path] = []
    monkeypatch.setattr(mw, "open_path", lambda p: opened.append(p) or True)

    async def scenario() -> None:
        async with running(app):
            # as `lanfarm run` or a resumed queue would submit it: the form itself never offers LaMa
            await app.controller.add_paths(inputs, EditSpec(engine="lama"))
            await until(lambda: model.counts().failed == 1, timeout=15, what="the LaMa job ended failed")
            row = model.job_row(0)
            reason, action = row.fix()
            assert "LaMa" in reason and "big-lama" in reason and action == "models"
            window.queue_view.selectionModel().select(model.index(0), QItemSelectionModel.SelectionFlag.ClearAndSelect)
            assert window.fix_action.text() == "Open models folder" and window.fix_action.isEnabled()
            window.fix_action.trigger()
            assert opened == [app.controller.settings.models_dir]
            await until(lambda: any("failed" in t for t in app.controller.log.texts()), what="the batch notice")

    qloop(scenario())


def test_unavailable_engines_are_explained_and_not_picked(qtbot, tmp_path: Path) -> None:
    descriptors = default_registry(tmp_path / "models").descriptors()
    form = EditForm(descriptors, engine="lama")  # the saved choice, but no model for it here
    qtbot.addWidget(form)
    assert form.engine_id != "lama" and form.descriptor().available
    index = form.engine.findData("lama")
    item = form.engine.model().item(index)  # type: ignore[attr-defined]
    assert not item.isEnabled()
    assert form.engine.itemText(index) == "LaMa inpainting (big-lama) (unavailable)"  # the reason is not cut
    reasons = " ".join(form.unavailable_reasons)
    assert "big-lama" in reasons and str(tmp_path / "models") in reasons
    assert "Why?" in form.unavailable.text()
    form.unavailable.linkActivated.emit("more")  # the user clicks "Why?": the full reasons, in the form
    assert "big-lama" in form.unavailable.text()
    form.resize(300, 400)
    form.show()
    assert not form.unavailable.isHidden()
    # the popup fits its (short) labels instead of growing to the width of the screen
    assert form.engine.view().sizeHintForColumn(0) < 420


@pytest.fixture
def sim_node(tmp_path: Path) -> Node:
    n = start_node(tmp_path / "node-home", APP_TOKEN, "--simulate")
    yield n  # type: ignore[misc]
    n.kill()


def test_a_node_killed_mid_batch_is_explained_where_its_edits_are(
    qloop, sim_node: Node, store: SettingsStore, tmp_path: Path
) -> None:
    store.set_token(APP_TOKEN)
    store.save(replace(store.load(), local_slots=1))
    inputs = write_inputs(tmp_path / "in", 6, size=(200, 100))
    # heartbeats every 60 s: only the first refused connection can tell the app the node is gone
    app = LanFarmApp(store=store, registry=default_registry(simulate=True), use_tray=False, monitor_interval=60)
    controller, model = app.controller, app.controller.queue

    def node_row() -> NodeRow:
        return next(r for r in controller.nodes.rows() if r.address == sim_node.url)

    async def scenario() -> None:
        async with running(app):
            await controller.add_peer(sim_node.url)
            spec = EditSpec(engine="sim", params={"seconds_per_mp": 150.0})  # ~3 s a job
            await controller.add_paths(inputs, spec)
            node_id = node_row().id

            def on_node() -> list[JobRow]:
                rows = [model.job_row(i) for i in range(model.rowCount())]
                return [r for r in rows if r.job.worker == node_id and r.job.state in IN_FLIGHT]

            await until(lambda: bool(on_node()), timeout=40, what="an edit on the node")
            sent = on_node()
            sim_node.kill()
            await until(lambda: node_row().state == "offline", timeout=20, what="the node offline")
            await until(
                lambda: any("gpu-box went offline" in t and "moved to other PCs" in t for t in controller.log.texts()),
                what="the offline notice",
            )
            notice = next(t for t in controller.log.texts() if "gpu-box went offline" in t)
            assert "1 edit moved" in notice or "edits moved" in notice
            # a requeued row no longer names the dead PC
            for r in sent:
                if r.job.state is JobState.QUEUED:
                    assert not QueueDelegate.node_shown(r.job)
            # its errors can be read
            dashboard = app.window.dashboard
            dashboard.table.selectRow(controller.nodes.rows().index(node_row()))
            text = dashboard.error_text(node_row())
            assert "refused the connection" in text or "connection refused" in text
            assert dashboard.errors_button.isEnabled()
            box = dashboard.show_errors()
            assert box is not None and "gpu-box" in box.windowTitle()
            assert node_row().error or node_row().failed or node_row().errors
            [clear] = [b for b in box.buttons() if b.text() == "Clear errors"]
            clear.click()  # read and understood: the count starts again
            assert (node_row().failed, node_row().errors, node_row().error) == (0, [], "")
            box.close()
            await until(lambda: model.counts().done == 6, timeout=60, what="every edit done on this PC")

    qloop(scenario(), timeout=120)


def test_adding_a_node_says_it_is_checking_and_keeps_a_wrong_address(qloop, store: SettingsStore) -> None:
    app = LanFarmApp(store=store, use_tray=False, monitor_interval=0.3)
    dashboard = app.window.dashboard

    async def scenario() -> None:
        async with running(app):
            dashboard.address.setText("127.0.0.1:1")  # nothing listens on port 1
            dashboard.add_button.click()
            assert dashboard.add_status.text() == "Checking 127.0.0.1:1…" and not dashboard.add_button.isEnabled()
            await until(lambda: dashboard.add_button.isEnabled(), what="the probe's end")
            assert "did not answer" in dashboard.add_status.text() and "`" not in dashboard.add_status.text()
            assert dashboard.address.text() == "127.0.0.1:1"  # kept, to be corrected
            assert any("did not answer" in t for t in app.controller.log.texts())

    qloop(scenario())


def test_quitting_with_unfinished_edits_asks_first(
    qloop, store: SettingsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = write_inputs(tmp_path / "in", 2)
    app = LanFarmApp(store=store, use_tray=False)
    window = app.window
    answers = [QMessageBox.StandardButton.No]
    asked: list[str] = []

    def question(parent: object, title: str, text: str, *a: object) -> QMessageBox.StandardButton:
        asked.append(text)
        return answers.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    closed: list[bool] = []
    window.closed.connect(lambda: closed.append(True))

    async def scenario() -> None:
        async with running(app):
            window.pause_action.setChecked(True)
            await window.add_paths(inputs)
            await until(lambda: app.controller.queue.counts().queued == 2, what="queued")
            window.close()
            QApplication.processEvents()
            assert asked and "2 edits are not finished" in asked[0] and "resume" in asked[0]
            assert window.isVisible() and not closed
            answers.append(QMessageBox.StandardButton.Yes)
            window.close()
            assert closed

    qloop(scenario())


# ------------------------------------------------------------------ honest progress (build point 2)
def test_a_running_row_without_a_fraction_shows_a_busy_bar_not_zero_percent(tmp_path: Path) -> None:
    from farm.core.job import Job
    from gui.rows import JobRow

    job = Job(input=tmp_path / "a.png", spec=EditSpec(), output=tmp_path / "out" / "a.png")
    row = JobRow(job)
    job.move(JobState.DISPATCHED)
    row.update(None, 0.0)
    assert row.bar() == (True, "sending…")
    job.move(JobState.RUNNING)
    row.update(None, 1.0)
    assert row.bar() == (True, "working…")  # OpenCV reports no fraction: a busy stripe, never "0%"
    row.update(0.25, 2.0)
    assert row.bar() == (False, "25%")


def test_batch_progress_has_an_eta_from_the_rate_edits_finish_at() -> None:
    from gui.rows import BatchProgress, Counts

    p = BatchProgress()
    p.update(Counts(done=4), 0.0)  # earlier work: not part of this batch
    p.update(Counts(queued=10, done=4), 100.0)
    assert p.text(Counts(queued=10, done=4), 100.0) == "0 of 10 edited · estimating time left…"
    for t in (105.0, 110.0):
        p.job_changed("x", JobState.DONE, t)
    counts = Counts(queued=8, done=6)
    assert p.value(counts) == (2, 10)
    assert p.eta(counts, 110.0) == pytest.approx(40.0)  # 2 edits in 10 s: 8 more in 40 s
    assert p.text(counts, 110.0) == "2 of 10 edited · about 0:40 left"
    assert p.text(counts, 110.0, paused=True) == "2 of 10 edited · paused"


def test_one_long_edit_that_reports_its_progress_has_an_eta() -> None:
    """A single big upscale (its tiles' progress) is never left at "estimating" until it ends."""
    from gui.rows import BatchProgress, Counts

    p = BatchProgress()
    one = Counts(running=1)
    p.update(one, 100.0)
    assert p.text(one, 101.0, running=0.1) == "0 of 1 edited · estimating time left…"  # too soon to tell
    assert p.eta(one, 110.0, running=0.25) == pytest.approx(30.0)  # a quarter in 10 s: 30 s more
    assert p.text(one, 110.0, running=0.25) == "0 of 1 edited · about 0:30 left"
    assert p.text(one, 110.0) == "0 of 1 edited · estimating time left…"  # no fraction reported


@pytest.mark.qt_log_ignore(
    "No such signal QPlatformNativeInterface::systemTrayWindowChanged",  # offscreen: no tray to embed in
    "This plugin does not support propagateSizeHints",
)
def test_paused_state_batch_bar_and_tray_tooltip(qloop, store: SettingsStore, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in", 3)
    app = LanFarmApp(store=store, use_tray=True)
    window = app.window
    assert app.tray is not None

    async def scenario() -> None:
        async with running(app):
            window.pause_action.setChecked(True)
            await window.add_paths(inputs)
            await until(lambda: app.controller.queue.counts().queued == 3, what="queued")
            await until(lambda: "0 of 3 edited" in window.batch_bar.format(), what="the batch bar")
            assert window.batch_bar.format() == "0 of 3 edited · paused"
            assert not window.paused_label.isHidden() and not window.resume_button.isHidden()
            assert app.tray is not None and app.tray.icon.toolTip() == "LAN Farm — 0 of 3 edited · paused"
            local = app.controller.nodes.row("local")
            await until(lambda: local is not None and local.waiting == "the queue is paused", what="why it waits")
            window.resume_button.click()
            assert not app.controller.paused and window.resume_button.isHidden()
            await until(lambda: app.controller.queue.counts().done == 3, timeout=20, what="done")
            await until(lambda: app.tray is not None and "nothing to do" in app.tray.icon.toolTip(), what="tooltip")

    qloop(scenario())
