"""Render the main window, the node dashboard and the mask editor to PNG files in docs/screenshots/.

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

    from farm.core.spec import EditSpec
    from farm.engines.installed import default_registry
    from gui.app import LanFarmApp
    from gui.settings import AppSettings, SettingsStore

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
    shots = []
    try:
        await app.start()
        for _, url in nodes:
            await app.controller.add_peer(url)
        files = inputs(tmp / "photos")
        # real OpenCV edits of the samples on this PC, then a longer batch on the SIMULATED GPUs
        await app.controller.add_paths(files[:4] + [files[-1]], window.current_spec())
        await wait(lambda: app.controller.queue.counts().unfinished == 0, 20)
        sim = EditSpec(engine="sim", params={"seconds_per_mp": 9.0})
        await app.controller.add_paths(files[4:-1], sim)
        await asyncio.sleep(2.2)
        view, model = window.queue_view, app.controller.queue
        view.selectionModel().select(model.index(1), QItemSelectionModel.SelectionFlag.ClearAndSelect)
        await wait(lambda: window.compare.is_ready, 10)
        window.compare.set_split(0.46)
        await asyncio.sleep(0.4)
        shots.append(save(window.grab(), out / "main-window.png"))

        window.tabs.setCurrentIndex(1)
        await asyncio.sleep(5.0)  # let the sparklines collect a few seconds
        window.dashboard.table.selectRow(1)
        await asyncio.sleep(0.3)
        shots.append(save(window.grab(), out / "dashboard.png"))

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
    finally:
        await app.stop()
        for proc, _ in nodes:
            proc.kill()
            proc.wait()
            if proc.stdout:
                proc.stdout.close()
    return shots


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
        loop = qasync.QEventLoop(qapp)
        asyncio.set_event_loop(loop)
        with loop:
            shots = loop.run_until_complete(shoot(args.out.resolve(), Path(tmp)))
    for shot in shots:
        print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
