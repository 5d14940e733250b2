"""Render the app's screens and states to PNG files in docs/screenshots/.

The screens: the main window (a batch with its ETA and a before/after), the node dashboard, the mask
editor; the states: empty, a failed row with its fix, paused, a node going offline mid-batch, a 75 MP
before/after, and the dark palette.

Everything shown is real: the farm runs on the app's qasync loop, the sample images are edited by the
local OpenCV engine, and the two nodes are `lanfarm node --simulate` processes on 127.0.0.1 (their
engine is the SIMULATED GPU, which sleeps). Run on a real screen or under Xvfb:

    Xvfb :99 -screen 0 1280x800x24 -nolisten tcp &
    DISPLAY=:99 QT_QPA_PLATFORM=xcb python scripts/screenshots.py [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TOKEN = "screenshot-farm-token-0123456789abcdef"


def start_node(home: Path, name: str) -> tuple[subprocess.Popen[bytes], str]:
    home.mkdir(parents=True)
    (home / "token").write_text(TOKEN)
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
            "--simulate",
            "--name",
            name,
            "--token-file",
            str(home / "token"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline().decode()
            if line.startswith("lanfarm node listening on "):
                return proc, line.strip().rsplit(" ", 1)[1]
    proc.kill()
    raise SystemExit(f"node {name} did not start")


def inputs(folder: Path) -> list[Path]:
    """The samples (with NAME_mask.png beside each), some variants, and one broken file."""
    import cv2

    samples = REPO / "resources" / "samples"
    folder.mkdir(parents=True)
    out = []
    for src in sorted(samples.glob("*.png")):
        for variant, hue in (("", 0), ("-b", 30), ("-c", 120)):
            dst = folder / f"{src.stem}{variant}.png"
            image, mask = cv2.imread(str(src)), cv2.imread(str(samples / "masks" / src.name), cv2.IMREAD_GRAYSCALE)
            if hue:  # the same scene in other colours (the caption stays readable, unlike a mirror image)
                hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
                hsv[:, :, 0] = (hsv[:, :, 0].astype(int) + hue // 2) % 180
                image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
            cv2.imwrite(str(dst), image)
            cv2.imwrite(str(folder / f"{dst.stem}_mask.png"), mask)
            out.append(dst)
    broken = folder / "scan-07.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a picture")
    shutil.copy(folder / "dusk_mask.png", folder / "scan-07_mask.png")
    return out + [broken]


async def shoot(out: Path, tmp: Path) -> list[Path]:
    from PySide6.QtCore import QItemSelectionModel, QPointF, Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from farm.core.spec import EditSpec
    from farm.engines.installed import default_registry
    from gui.app import LanFarmApp
    from gui.settings import AppSettings, SettingsStore
    from gui.theme import apply_theme

    store = SettingsStore()
    store.set_token(TOKEN)
    store.save(
        AppSettings(
            output_dir=tmp / "Pictures" / "LAN Farm",
            discovery=False,
            local_slots=1,
            tray_notice_shown=True,
            models_dir=tmp / "models",
        )
    )
    nodes = [start_node(tmp / "node-a", "studio-pc"), start_node(tmp / "node-b", "attic-gpu")]
    app = LanFarmApp(store=store, registry=default_registry(simulate=True), use_tray=False, monitor_interval=0.5)
    window = app.window
    window.resize(1280, 800)
    qapp = QApplication.instance()
    assert isinstance(qapp, QApplication)
    shots = []
    try:
        await app.start()
        await asyncio.sleep(0.5)
        shots.append(save(window.grab(), out / "empty.png"))  # the designed empty state
        for _, url in nodes:
            await app.controller.add_peer(url)
        files = inputs(tmp / "photos")
        # real OpenCV edits of the samples on this PC (one broken file fails), then a longer batch on
        # the SIMULATED GPUs
        await app.controller.add_paths(files[:4] + [files[-1]], window.current_spec())
        await wait(lambda: app.controller.queue.counts().unfinished == 0, 20)
        view, model = window.queue_view, app.controller.queue
        # LaMa without its model file: no PC can run it, so it ends at once with the reason and a fix
        await app.controller.add_paths(files[2:3], EditSpec(engine="lama"))
        await wait(lambda: app.controller.queue.counts().failed >= 1, 20)
        await wait(lambda: app.controller.queue.counts().failed >= 2, 20)
        failed = next(i for i in range(model.rowCount()) if "engine lama" in (model.job_row(i).job.error or ""))
        view.selectionModel().select(model.index(failed), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        await asyncio.sleep(0.3)
        shots.append(save(window.grab(), out / "failed-row.png"))

        sim = EditSpec(engine="sim", params={"seconds_per_mp": 9.0})
        await app.controller.add_paths(files[4:-1], sim)
        await wait(lambda: "about" in window.batch_bar.format(), 40)  # two edits done: an ETA
        view.selectionModel().select(model.index(1), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        await wait(lambda: window.compare.is_ready, 10)
        window.compare.set_split(0.46)
        await asyncio.sleep(0.4)
        shots.append(save(window.grab(), out / "main-window.png"))

        window.pause_action.setChecked(True)
        await asyncio.sleep(0.4)
        shots.append(save(window.grab(), out / "paused.png"))
        window.pause_action.setChecked(False)

        window.tabs.setCurrentIndex(1)
        await asyncio.sleep(4.0)  # let the sparklines collect a few seconds
        window.dashboard.table.selectRow(1)
        await asyncio.sleep(0.3)
        shots.append(save(window.grab(), out / "dashboard.png"))

        # attic-gpu dies mid-batch: the notice says so, and where its edits went
        await app.controller.add_paths(files[:-1], sim)
        await wait(lambda: any(r.name == "attic-gpu" and r.state == "busy" for r in app.controller.nodes.rows()), 30)
        attic = nodes[1][0]
        attic.kill()
        attic.wait()
        await wait(lambda: any("attic-gpu went offline" in t for t in app.controller.log.texts()), 30)
        attic_row = next(i for i, r in enumerate(app.controller.nodes.rows()) if r.name == "attic-gpu")
        window.dashboard.table.selectRow(attic_row)
        await asyncio.sleep(1.2)
        shots.append(save(window.grab(), out / "node-offline.png"))
        window.tabs.setCurrentIndex(0)

        editor = window.open_mask_editor(files[1])
        editor.resize(1100, 760)
        await wait(lambda: editor.save_button.isEnabled(), 10)
        canvas = editor.canvas
        canvas.set_brush_size(34)
        path = [(180 + 55 * i, 282 + (6 if i % 2 else -6)) for i in range(6)]
        QTest.mousePress(
            canvas,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
            canvas.to_widget(QPointF(*path[0])).toPoint(),
        )
        for p in path[1:]:
            QTest.mouseMove(canvas, canvas.to_widget(QPointF(*p)).toPoint())
        QTest.mouseRelease(
            canvas,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
            canvas.to_widget(QPointF(*path[-1])).toPoint(),
        )
        QTest.mouseMove(canvas, canvas.to_widget(QPointF(520, 330)).toPoint())
        await asyncio.sleep(0.3)
        shots.append(save(editor.grab(), out / "mask-editor.png"))
        editor.reject()

        # a 75 MP before/after: decoded scaled, in the real compare pane
        before, after = await asyncio.to_thread(big_pair, tmp / "big")
        window.compare.show_pair(before, after)
        await wait(lambda: window.compare.is_ready or bool(window.compare.error), 120)
        window.compare.set_split(0.5)
        window.compare.resize(900, 560)
        await asyncio.sleep(0.3)
        shots.append(save(window.compare.grab(), out / "compare-75mp.png"))

        apply_theme(qapp, Qt.ColorScheme.Dark)  # the palette a dark desktop gets
        view.selectionModel().select(model.index(2), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        await asyncio.sleep(0.8)
        shots.append(save(window.grab(), out / "dark.png"))
        apply_theme(qapp, Qt.ColorScheme.Light)
    finally:
        await app.stop()
        for proc, _ in nodes:
            proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
    return shots


def big_pair(folder: Path) -> tuple[Path, Path]:
    """A 10000x7500 (75 MP) picture and an edit of it, as PNG files."""
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    h, w = 7500, 10000
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    image = np.empty((h, w, 3), np.uint8)
    image[:, :, 0] = (x * 0.4 + y * 0.6).astype(np.uint8)
    image[:, :, 1] = (255 - y * 0.5).astype(np.uint8)
    image[:, :, 2] = (x * 0.8).astype(np.uint8)
    cv2.circle(image, (3000, 3700), 900, (40, 40, 230), -1)
    cv2.putText(image, "75 MP", (5200, 4200), cv2.FONT_HERSHEY_SIMPLEX, 40, (255, 255, 255), 80)
    before = folder / "panorama.png"
    cv2.imwrite(str(before), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    cv2.circle(image, (3000, 3700), 900, (90, 170, 90), -1)  # the "edit": the red disc painted out
    after = folder / "panorama-edited.png"
    cv2.imwrite(str(after), image, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    return before, after


async def wait(condition, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit("timed out preparing a screenshot")
        await asyncio.sleep(0.05)


def save(pixmap, path: Path) -> Path:  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    if not pixmap.save(str(path)):
        raise SystemExit(f"could not write {path}")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LANFARM_HOME"] = str(Path(tmp) / "home")
        os.environ.pop("LANFARM_TOKEN", None)
        import qasync
        from PySide6.QtWidgets import QApplication

        qapp = QApplication.instance() or QApplication([sys.argv[0]])
        qapp.setApplicationName("LAN Farm")
        from PySide6.QtCore import Qt

        from gui.theme import apply_theme

        apply_theme(qapp, Qt.ColorScheme.Light)
        loop = qasync.QEventLoop(qapp)
        asyncio.set_event_loop(loop)
        with loop:
            shots = loop.run_until_complete(shoot(args.out.resolve(), Path(tmp)))
    for shot in shots:
        print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
