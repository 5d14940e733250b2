"""The Models window: this PC's models (name, engine, size, content id) and "Copy to nodes".

The list is read in a worker thread (ids are hashed once, then cached); "Copy to nodes" (a button,
and the list's context menu) sends the selected model to every online node that has its engine,
through the farm (``Farm.models.copy_to_nodes``): each node checks that the model loads before it
offers it. Progress and the outcome per node show in the status line, throttled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from farm.engines.model_ids import ModelCard, ModelIds
from farm.runtime.farm import Farm
from farm.runtime.model_sync import TransferDone

COLUMNS = ("Name", "Engine", "Size", "Id")
PROGRESS_EVERY = 0.1  # seconds between progress updates of the status line


def outcome_text(done: list[TransferDone]) -> str:
    """One line for what a copy did, node by node."""
    if not done:
        return "No online node has the engine for this model"
    parts = []
    for d in done:
        if d.result is None:
            parts.append(f"{d.node_name} refused it: {d.error}")
        elif d.result.already:
            parts.append(f"{d.node_name} already had it")
        else:
            parts.append(f"copied to {d.node_name}")
    return f"{done[0].model}: " + "; ".join(parts)


class ModelsDialog(QDialog):
    """This PC's models folder, with "Copy to nodes"."""

    copied = Signal(list)  # list[TransferDone] when a copy ended

    def __init__(self, folder: Path, farm: Farm | None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Models")
        self.folder = folder
        self.farm = farm
        self.cards: list[ModelCard] = []
        self._tasks: set[asyncio.Future[list[TransferDone]]] = set()
        self._last_progress = 0.0
        self._add_widgets()
        self._connect_signals()

    def _add_widgets(self) -> None:
        self.table = QTableWidget(0, len(COLUMNS), self)
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.copy_action = QAction("Copy to nodes", self)
        self.copy_action.setEnabled(False)
        self.table.addAction(self.copy_action)
        self.copy_button = QPushButton("Copy to nodes", self)
        self.copy_button.setEnabled(False)
        self.status = QLabel(f"Models folder: {self.folder}", self)
        self.status.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        self.resize(640, 320)

    def _connect_signals(self) -> None:
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.copy_action.triggered.connect(self.copy_selected)
        self.copy_button.clicked.connect(self.copy_selected)

    # ------------------------------------------------------------------ the list
    async def reload(self) -> None:
        """Read the models folder (off the loop) and show it."""
        self.cards = await asyncio.to_thread(ModelIds(self.folder).cards)
        self.table.setRowCount(len(self.cards))
        for row, card in enumerate(self.cards):
            values = (card.name, card.kind, f"{card.size / (1 << 20):.1f} MB", card.id[:12])
            for col, text in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(text))
        if not self.cards:
            self.status.setText(f"No models in {self.folder}")
        self._selection_changed()

    def selected(self) -> ModelCard | None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return self.cards[rows.pop()] if len(rows) == 1 else None

    def _selection_changed(self) -> None:
        can = self.selected() is not None and self.farm is not None and not self._tasks
        self.copy_action.setEnabled(can)
        self.copy_button.setEnabled(can)

    # ------------------------------------------------------------------ copying
    def copy_selected(self) -> None:
        card = self.selected()
        if card is None or card.path is None or self.farm is None or self._tasks:
            return
        task = asyncio.ensure_future(self.copy(card.path))
        self._tasks.add(task)
        task.add_done_callback(self._copy_ended)
        self._selection_changed()

    async def copy(self, path: Path) -> list[TransferDone]:
        assert self.farm is not None
        self.status.setText(f"Copying {path.name} to the nodes…")
        names = {w.id: w.name for w in self.farm.workers()}
        done = await self.farm.models.copy_to_nodes(
            path, progress=lambda node, have, total: self._progress(path.name, names.get(node, node), have, total)
        )
        self.status.setText(outcome_text(done))
        self.copied.emit(done)
        return done

    def _progress(self, model: str, node: str, have: int, total: int) -> None:
        now = time.monotonic()
        if have < total and now - self._last_progress < PROGRESS_EVERY:
            return
        self._last_progress = now
        self.status.setText(f"Copying {model} to {node}: {100 * have // max(1, total)} %")

    def _copy_ended(self, task: asyncio.Future[list[TransferDone]]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.status.setText(f"Copy failed: {task.exception()}")
        self._selection_changed()

    async def close_tasks(self) -> None:
        """Cancel a copy under way (the window closes with the app)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
