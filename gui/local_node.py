"""The tray's lines for the node running on this PC (``lanfarm node``): its state, Pause and Resume.

Shown only while this PC runs a node (found by its run file, :mod:`farm.local.runfiles`); requests are
signed with the app's farm token (:mod:`farm.runtime.owner`). Refreshed every few seconds and after
each click.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from farm.core.availability import Availability
from farm.errors import FarmError
from farm.local.runfiles import RunningNode, running_nodes
from farm.runtime import owner

log = logging.getLogger(__name__)


class LocalNodeMenu(QObject):
    """Adds "This PC's node: <state>", "Pause this PC's node" and "Resume this PC's node" to ``menu``."""

    changed = Signal()

    def __init__(
        self, menu: QMenu, token: Callable[[], str], *, interval_ms: int = 3000, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self._token = token
        first = menu.actions()[0] if menu.actions() else None
        self.status_action = QAction("", menu)
        self.status_action.setEnabled(False)
        self.pause_action = QAction("Pause this PC's node", menu)
        self.resume_action = QAction("Resume this PC's node", menu)
        self.separator = QAction(menu)
        self.separator.setSeparator(True)
        for action in (self.status_action, self.pause_action, self.resume_action, self.separator):
            if first is not None:
                menu.insertAction(first, action)
            else:
                menu.addAction(action)
        self.pause_action.triggered.connect(lambda: self._spawn(self._pause()))
        self.resume_action.triggered.connect(lambda: self._spawn(self._resume()))
        self.node: RunningNode | None = None
        self.availability: Availability | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.refresh_soon)
        self._show(None, None, "")

    def start(self) -> None:
        self._timer.start()
        self.refresh_soon()

    async def stop(self) -> None:
        self._timer.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def refresh_soon(self) -> None:
        self._spawn(self.refresh())

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def refresh(self) -> None:
        nodes = await asyncio.to_thread(running_nodes)
        if not nodes:
            self._show(None, None, "")
            return
        node = nodes[0]
        try:
            info = await owner.status(node, self._token())
        except (FarmError, OSError) as exc:
            self._show(node, None, f"This PC's node: {exc}")
            return
        self._show(node, info.availability, f"This PC's node: {info.availability.label()}")

    async def _pause(self) -> None:
        if self.node is not None:
            await self._act(owner.pause(self.node, self._token(), None, "paused from the app"))

    async def _resume(self) -> None:
        if self.node is not None:
            await self._act(owner.resume(self.node, self._token()))

    async def _act(self, request: Awaitable[Availability]) -> None:
        try:
            await request
        except (FarmError, OSError) as exc:
            log.warning("this PC's node: %s", exc)
        await self.refresh()

    def _show(self, node: RunningNode | None, availability: Availability | None, text: str) -> None:
        self.node, self.availability = node, availability
        self.status_action.setText(text)
        self.status_action.setVisible(node is not None)
        self.separator.setVisible(node is not None)
        self.pause_action.setVisible(availability is not None and availability.available)
        self.resume_action.setVisible(availability is not None and not availability.available)
        self.changed.emit()
