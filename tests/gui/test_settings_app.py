"""Settings survive a restart; the edit form comes from the params schema; tray, single instance, CLI."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QLineEdit, QPlainTextEdit, QSpinBox

from farm.core.params import ParamSchema, ParamSpec
from farm.engines import EngineDescriptor
from gui import cli
from gui.app import NO_TRAY_NOTICE, LanFarmApp, SingleInstance, Tray, instance_key
from gui.edit_form import EditForm
from gui.settings import AppSettings, SettingsStore
from tests.conftest import subprocess_env
from tests.gui.conftest import running, until


def test_settings_survive_a_restart_of_the_app(qloop, store: SettingsStore, tmp_path: Path) -> None:
    first = LanFarmApp(store=store, use_tray=False)

    async def change() -> None:
        async with running(first):
            page = first.window.settings_page
            page.output_dir.setText(str(tmp_path / "elsewhere"))
            page.format.setCurrentText("webp")
            page.quality.setValue(80)
            page.local_slots.setValue(3)
            page.local_worker.setChecked(False)
            page.discovery.setChecked(False)
            page.apply_button.click()
            first.controller.update_settings(first.controller.settings.with_peer("http://10.0.0.5:7788"))
            first.window.edit_form.set_engine("cv2")
            token = first.controller.regenerate_token()
            assert first.window.dashboard.token.text() == token

    qloop(change())
    second = LanFarmApp(store=SettingsStore(), use_tray=False)  # a fresh store reads the same files

    async def check() -> None:
        s = second.controller.settings
        assert (s.output_dir, s.output_format, s.quality, s.local_slots, s.local_worker, s.discovery) == (
            tmp_path / "elsewhere",
            "webp",
            80,
            3,
            False,
            False,
        )
        assert s.peers == ("http://10.0.0.5:7788",)
        page = second.window.settings_page
        assert page.format.currentText() == "webp" and page.local_slots.value() == 3
        assert [page.peers.item(i).text() for i in range(page.peers.count())] == ["http://10.0.0.5:7788"]
        assert second.window.current_spec().output.format == "webp"
        second.controller.settings = replace_peers(s)  # do not probe 10.0.0.5 from a test
        async with running(second):
            assert second.controller.token == first.controller.token
            assert second.controller.farm is not None and "local" not in second.controller.farm.worker_ids

    qloop(check())


def test_splitting_big_edits_is_a_setting_that_applies_at_once_and_stays(qloop, store: SettingsStore) -> None:
    app = LanFarmApp(store=store, use_tray=False)

    async def switch_off() -> None:
        async with running(app):
            page, farm = app.window.settings_page, app.controller.farm
            assert farm is not None and page.split_edits.isChecked() and farm.tiles == "auto"
            page.split_edits.setChecked(False)
            assert page.pending
            page.apply_button.click()
            assert farm.tiles == "off"

    qloop(switch_off())
    again = LanFarmApp(store=SettingsStore(), use_tray=False)

    async def check() -> None:
        assert again.controller.settings.split_edits is False
        async with running(again):
            assert again.controller.farm is not None and again.controller.farm.tiles == "off"
            assert not again.window.settings_page.split_edits.isChecked()

    qloop(check())


def replace_peers(s: AppSettings) -> AppSettings:
    return replace(s, peers=())


def test_a_damaged_settings_file_falls_back_to_defaults(store: SettingsStore) -> None:
    store.path.write_text("[General]\nlocal_slots=many\noutput_format=gif\nquality=500\npeers=not json\n")
    s = store.load()
    assert (s.local_slots, s.output_format, s.quality, s.peers) == (1, "keep", 100, ())


def test_edit_form_is_generated_from_the_params_schema(qtbot) -> None:
    desc = EngineDescriptor(
        id="x",
        title="Every kind",
        operations=frozenset({"inpaint"}),
        params=ParamSchema.of(
            ParamSpec("steps", "int", 20, minimum=1, maximum=150),
            ParamSpec("strength", "float", 0.75, minimum=0.0, maximum=1.0),
            ParamSpec("hd", "bool", True),
            ParamSpec("sampler", "choice", "ddim", choices=("ddim", "euler")),
            ParamSpec("prompt", "str", "", multiline=True),
            ParamSpec("seed_text", "str", "42"),
        ),
    )
    other = EngineDescriptor(
        id="y",
        title="One",
        operations=frozenset({"upscale"}),
        needs_mask=False,
        params=ParamSchema.of(ParamSpec("scale", "choice", "4", choices=("2", "4"))),
    )
    form = EditForm([desc, other], engine="x")
    qtbot.addWidget(form)
    kinds = {name: type(w) for name, w in form.controls.items()}
    assert kinds == {
        "steps": QSpinBox,
        "strength": QDoubleSpinBox,
        "hd": QCheckBox,
        "sampler": QComboBox,
        "prompt": QPlainTextEdit,
        "seed_text": QLineEdit,
    }
    assert form.controls["steps"].maximum() == 150
    assert form.values() == {
        "steps": 20,
        "strength": 0.75,
        "hd": True,
        "sampler": "ddim",
        "prompt": "",
        "seed_text": "42",
    }
    form.set_param("steps", 30)
    form.set_param("sampler", "euler")
    spec = form.spec()
    assert spec.engine == "x" and spec.params["steps"] == 30 and spec.params["sampler"] == "euler"
    assert desc.params.validate(spec.params)  # what the form makes, the engine accepts
    form.set_engine("y")
    assert list(form.controls) == ["scale"] and form.spec().op == "upscale"
    assert "no mask" in form.note.text()


def test_tray_menu_icons_and_no_tray_notice(qloop, store: SettingsStore) -> None:
    store.save(replace(store.load(), tray_notice_shown=False))
    app = LanFarmApp(store=store, use_tray=False)

    async def scenario() -> None:
        async with running(app):
            assert app.window.banner.isVisible() and app.window.banner.text() == NO_TRAY_NOTICE
            assert store.load().tray_notice_shown
            tray = Tray(app)  # the menu works even where no tray can show it
            labels = [a.text() for a in tray.menu.actions() if a.text() and a.isVisible()]  # no node on this PC
            assert labels == ["Show window", "Pause queue", "Pause this PC", "Open output folder", "Quit LAN Farm"]
            for state in ("working", "error", "idle"):
                tray.set_activity(state)
                assert not tray.icon.icon().isNull()
            app.window.close()  # without a tray, closing the window quits
            await until(lambda: app._quit is not None and app._quit.is_set(), what="quit requested")

    qloop(scenario())
    again = LanFarmApp(store=store, use_tray=False)

    async def second() -> None:
        async with running(again):
            assert not again.window.banner.isVisible()  # said once

    qloop(second())


# offscreen has no tray and cannot raise windows: it says so, which is not the app's fault
@pytest.mark.qt_log_ignore("systemTrayWindowChanged", "does not support raise", "propagateSizeHints")
def test_closing_the_window_keeps_a_tray_app_running(qloop, store: SettingsStore) -> None:
    app = LanFarmApp(store=store, use_tray=True)

    async def scenario() -> None:
        async with running(app):
            assert app.window.isVisible()
            app.window.close()
            assert not app.window.isVisible() and not app._quit.is_set()
            app.receive([])
            assert app.window.isVisible()

    qloop(scenario())


def test_second_launch_hands_its_files_to_the_first(qloop, qtbot, tmp_path: Path) -> None:
    key = instance_key() + "-test"
    first = SingleInstance(key)
    assert first.listen()
    got: list[list[str]] = []
    first.received.connect(got.append)
    try:
        second = SingleInstance(key)
        assert second.hand_over([tmp_path / "a.png"])

        async def scenario() -> None:
            await until(lambda: bool(got), what="files received")

        qloop(scenario())
        assert got == [[str((tmp_path / "a.png").resolve())]]
    finally:
        first.close()
    assert not SingleInstance(key).hand_over([], timeout_ms=200)  # nobody listens any more


def test_cli_imports_no_qt_and_explains_a_missing_pyside(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = "import sys, farm.cli; farm.cli.build_parser(); assert 'PySide6' not in sys.modules, 'Qt imported'"
    subprocess.run([sys.executable, "-c", code], env=subprocess_env(), check=True, timeout=60)
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    args = parser.parse_args(["x.png"])
    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec", lambda name: None if name == "PySide6" else real(name))
    assert args.handler(args) == 2
    assert "needs PySide6" in capsys.readouterr().err
