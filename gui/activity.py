"""What happened, kept: the activity log (plain values) and the strip at the bottom of the window.

Every message the app has for the user (a node went offline, a batch ended, a file was skipped, an
address did not answer) is one :class:`Entry`. The strip shows the latest one until a newer one
comes, coloured by level, and opens the whole history on a click: nothing vanishes after a timer.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

LEVEL_COLOURS = {"info": "#2a6fd6", "ok": "#2e9d57", "warning": "#c98a16", "error": "#d2453d"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing the user was told: when (wall clock), how serious, what."""

    at: float
    level: str  # "info" | "ok" | "warning" | "error"
    text: str

    @property
    def clock(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.at))


class ActivityLog(QObject):
    """The session's messages, newest last (at most ``limit``)."""

    posted = Signal(object)  # Entry

    def __init__(self, limit: int = 500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.entries: deque[Entry] = deque(maxlen=limit)

    def post(self, text: str, level: str = "info") -> Entry:
        entry = Entry(time.time(), level if level in LEVEL_COLOURS else "info", text)
        self.entries.append(entry)
        self.posted.emit(entry)
        return entry

    @property
    def latest(self) -> Entry | None:
        return self.entries[-1] if self.entries else None

    def texts(self) -> list[str]:
        return [e.text for e in self.entries]


class ActivityStrip(QFrame):
    """The latest message with its time, and a button that shows every earlier one."""

    def __init__(self, log: ActivityLog, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.log = log
        self.setObjectName("activityStrip")
        self.setFrameShape(QFrame.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 2, 8, 2)
        layout.setSpacing(2)
        top = QHBoxLayout()
        self.dot = QLabel("●")
        self.time = QLabel()
        self.time.setStyleSheet("color: palette(placeholder-text);")
        self.text = QLabel("Ready: drop images anywhere on this window")
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setMinimumWidth(50)
        self.history_button = QToolButton()
        self.history_button.setText("History")
        self.history_button.setCheckable(True)
        self.history_button.setToolTip("Everything that happened in this session")
        self.history_button.toggled.connect(self._toggle_history)
        top.addWidget(self.dot)
        top.addWidget(self.time)
        top.addWidget(self.text, 1)
        top.addWidget(self.history_button)
        layout.addLayout(top)
        self.history = QListWidget()
        self.history.setVisible(False)
        self.history.setMaximumHeight(160)
        self.history.setWordWrap(True)
        layout.addWidget(self.history)
        self._colour("info")
        log.posted.connect(self._posted)
        for entry in log.entries:
            self._posted(entry)

    def _posted(self, entry: Entry) -> None:
        self.text.setText(entry.text)
        self.text.setToolTip(entry.text)
        self.time.setText(entry.clock)
        self._colour(entry.level)
        item = QListWidgetItem(f"{entry.clock}  {entry.text}")
        item.setForeground(QColor(LEVEL_COLOURS[entry.level]) if entry.level in ("warning", "error") else QColor())
        if entry.level not in ("warning", "error"):
            item.setData(Qt.ItemDataRole.ForegroundRole, None)
        self.history.insertItem(0, item)

    def _colour(self, level: str) -> None:
        self.dot.setStyleSheet(f"color: {LEVEL_COLOURS[level]};")

    def _toggle_history(self, on: bool) -> None:
        self.history.setVisible(on)
