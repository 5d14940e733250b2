"""GUI tests: Qt offscreen, a Qt warning fails the test, the farm on a qasync loop, discovery off."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before anything imports Qt

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication

# isort: split
import qasync  # after PySide6: qasync drives the first Qt binding it finds already imported

from gui.app import LanFarmApp
from gui.settings import AppSettings, SettingsStore
from tests.conftest import box_mask, png_bytes, scene

T = TypeVar("T")
HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).parent == HERE:
            item.add_marker(pytest.mark.gui)
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            # the offscreen platform's own notice about window size hints, not an app problem
            item.add_marker(pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints"))


@pytest.fixture
def qloop(qapp: QApplication) -> Iterator[Callable[[Coroutine[Any, Any, T]], T]]:
    """Runs a coroutine on a qasync loop over the test's QApplication (Qt events are processed meanwhile)."""
    loop = qasync.QEventLoop(qapp, already_running=False)
    asyncio.set_event_loop(loop)

    def run(coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))

    yield run
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()
    asyncio.set_event_loop(None)
    # Free this test's widgets here, on the GUI thread: left to a later garbage collection that happens
    # to run on a worker thread, shiboken defers their deletion and a widget tree can die out of order.
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Wait (on the loop, Qt events flowing) until ``condition()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(app: LanFarmApp, files: Sequence[Path] = ()) -> AsyncIterator[LanFarmApp]:
    """The app started, and stopped (farm closed) however the test ends."""
    await app.start(files)
    try:
        yield app
    finally:
        await app.stop()
        app.window.deleteLater()


@pytest.fixture
def store(tmp_path: Path, lanfarm_home: Path) -> SettingsStore:
    """Settings under the test's LANFARM_HOME: output in tmp, discovery off (nothing multicasts)."""
    s = SettingsStore()
    s.save(
        AppSettings(
            output_dir=tmp_path / "out",
            discovery=False,
            local_slots=2,
            models_dir=tmp_path / "models",
            tray_notice_shown=True,
        )
    )
    return s


def write_inputs(folder: Path, n: int, *, masks: bool = True, size: tuple[int, int] = (160, 120)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"img{i}.png"
        p.write_bytes(png_bytes(scene(*size, seed=i)))
        if masks:
            (folder / f"img{i}_mask.png").write_bytes(png_bytes(box_mask(*size)))
        out.append(p)
    return out
