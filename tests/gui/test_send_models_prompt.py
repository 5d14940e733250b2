"""Setting "Send models to nodes: ask me": queued jobs need a model of this PC that the node lacks, and the
app asks (a prompt that does not block the loop) with the model, its size, the node and the estimated
transfer. "Not now": the jobs run on this PC and the app does not ask again this session. Send with
"Always": the node gets the model and runs the jobs, and the setting becomes "automatically". A real
`lanfarm node` on 127.0.0.1, the real Farm."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from farm.core.job import JobState
from farm.core.scheduler import LOCAL
from farm.core.spec import EditSpec
from farm.runtime.model_sync import SendQuestion
from gui.app import LanFarmApp
from gui.send_models_prompt import question_text
from gui.settings import AppSettings, SettingsStore
from tests.gui.conftest import running, until, write_inputs
from tests.gui.test_dashboard import APP_TOKEN, start_node

MODEL = "compact-x4.safetensors"
SPEC = EditSpec(op="upscale", engine="upscale", model=MODEL)


def _setup(store: SettingsStore, tmp_path: Path) -> tuple[Any, Path, LanFarmApp]:
    pytest.importorskip("spandrel")
    from tests.farm.engines import builders

    models = store.load().models_dir
    models.mkdir(parents=True)
    builders.save_safetensors(builders.compact_state_dict(scale=4), models / MODEL)
    node = start_node(tmp_path / "node-home", APP_TOKEN, "--models-dir", str(tmp_path / "node-models"))
    store.set_token(APP_TOKEN)
    store.save(replace(store.load(), send_models="ask", peers=(node.url,), output_dir=tmp_path / "out"))
    return node, models / MODEL, LanFarmApp(store=store, use_tray=False, monitor_interval=0.3)


async def _queue_with_this_pc_paused(app: LanFarmApp, inputs: list[Path]) -> list[Any]:
    """Jobs queued while this PC's worker is paused: they wait, so the farm looks for a node to send to."""
    farm = app.controller.farm
    assert farm is not None
    await until(lambda: any(not w.local for w in farm.workers()), what="the node online")
    app.controller.set_local_paused(True)
    return await app.controller.add_paths(inputs, SPEC)


def test_not_now_runs_the_jobs_here_and_is_not_asked_again(qloop, store: SettingsStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, model, app = _setup(store, tmp_path)
    inputs = write_inputs(tmp_path / "in", 3, masks=False, size=(32, 24))
    asked: list[SendQuestion] = []

    async def scenario() -> None:
        async with running(app):
            window, farm = app.window, app.controller.farm
            assert farm is not None and farm.models.mode == "ask"
            shown = window.ask_send_models

            async def counting(question: SendQuestion) -> Any:
                asked.append(question)
                return await shown(question)

            app.controller.asker = counting
            jobs = await _queue_with_this_pc_paused(app, inputs)
            await until(lambda: bool(window.send_prompts), timeout=30, what="the prompt")
            prompt = window.send_prompts[0]
            assert prompt.isVisible() and not prompt.isModal()
            text = prompt.message.text()
            assert MODEL in text and "gpu-box" in text and f"{model.stat().st_size / (1 << 20):.1f} MB" in text
            assert "3 queued edits" in text and "Transfer: " in text and "not measured yet" in text
            assert {j.state for j in farm.jobs.values()} == {JobState.QUEUED}  # they wait for the answer
            prompt.not_now_button.click()
            await until(lambda: not window.send_prompts, what="the prompt closed")
            app.controller.set_local_paused(False)
            await until(lambda: all(farm.jobs[j.id].state is JobState.DONE for j in jobs), timeout=60, what="done")
            assert {farm.jobs[j.id].worker for j in jobs} == {LOCAL}  # ran here, where the model is
            more = await _queue_with_this_pc_paused(app, write_inputs(tmp_path / "in2", 2, masks=False, size=(32, 24)))
            for _ in range(5):  # the farm looks again and again (every 0.5 s): no new question
                await farm.models._tick()
            app.controller.set_local_paused(False)
            await until(lambda: all(farm.jobs[j.id].state is JobState.DONE for j in more), timeout=60, what="done")
            assert len(asked) == 1 and asked[0].nodes == ("gpu-box",) and asked[0].model == MODEL
            assert not any(d.result for d in farm.models.done) and not (tmp_path / "node-models" / MODEL).exists()
            assert "Not sending compact-x4.safetensors to gpu-box" in "\n".join(app.controller.log.texts())

    try:
        qloop(scenario(), timeout=180)
    finally:
        node.kill()


def test_send_always_copies_the_model_and_switches_the_setting(qloop, store: SettingsStore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, model, app = _setup(store, tmp_path)
    inputs = write_inputs(tmp_path / "in", 3, masks=False, size=(32, 24))

    async def scenario() -> None:
        async with running(app):
            window, farm = app.window, app.controller.farm
            assert farm is not None
            assert window.settings_page.send_models.currentText() == "ask me"
            jobs = await _queue_with_this_pc_paused(app, inputs)
            await until(lambda: bool(window.send_prompts), timeout=30, what="the prompt")
            prompt = window.send_prompts[0]
            prompt.always.setChecked(True)
            prompt.send_button.click()
            await until(lambda: all(farm.jobs[j.id].state is JobState.DONE for j in jobs), timeout=90, what="done")
            assert {farm.jobs[j.id].worker for j in jobs} - {LOCAL}  # the node ran jobs, with the model it got
            assert (tmp_path / "node-models" / MODEL).read_bytes() == model.read_bytes()
            assert farm.models.mode == "auto" and store.load().send_models == "auto"
            assert window.settings_page.send_models.currentText() == "automatically"

    try:
        qloop(scenario(), timeout=180)
    finally:
        node.kill()


def test_the_question_names_model_size_nodes_and_time() -> None:
    q = SendQuestion(MODEL, "a" * 64, 7 << 30, ("gpu-box", "attic"), ("n1", "n2"), 1, 75.0, True)
    text = question_text(q)
    assert "1 queued edit needs compact-x4.safetensors (7.0 GB), and no node that can run it has" in text
    assert "Copy it to gpu-box, attic?" in text and "Transfer: about 75 s at the link rate measured" in text


def test_older_on_off_setting_reads_as_auto_or_off() -> None:
    assert AppSettings.from_strings({"send_models": "true"}).send_models == "auto"
    assert AppSettings.from_strings({"send_models": "false"}).send_models == "off"
    assert AppSettings.from_strings({"send_models": "ask"}).send_models == "ask"
    assert AppSettings.from_strings({"send_models": "sometimes"}).send_models == "auto"
