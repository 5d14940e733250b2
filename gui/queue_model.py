"""The queue: a list model over the farm's jobs (10,000 rows stay fast) and the delegate that paints a row.

Farm events are staged and applied in one flush (10 a second): new jobs in one insert, changed rows
in one ``dataChanged`` range, elapsed times of running jobs refreshed once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionProgressBar, QStyleOptionViewItem

from farm.core.job import Job, JobState
from gui.rows import FIX_LABELS, Counts, JobRow, format_seconds
from gui.thumbnails import ThumbnailCache

JOB_ROLE = Qt.ItemDataRole.UserRole + 1
Index = QModelIndex | QPersistentModelIndex

STATE_COLOURS = {
    JobState.QUEUED: QColor("#7a7f87"),
    JobState.DISPATCHED: QColor("#3d7fd9"),
    JobState.RUNNING: QColor("#2a6fd6"),
    JobState.DONE: QColor("#2e9d57"),
    JobState.FAILED: QColor("#d2453d"),
    JobState.CANCELLED: QColor("#9a9a9a"),
}
STATE_LABELS = {JobState.DISPATCHED: "sending", JobState.RUNNING: "running"}


class QueueModel(QAbstractListModel):
    """One row per job, in submission order."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.clock = clock
        self.thumbnails = ThumbnailCache(parent=self)
        self.thumbnails.ready.connect(self._thumbnail_ready)
        self.worker_names: dict[str, str] = {}
        self._rows: list[JobRow] = []
        self._by_id: dict[str, JobRow] = {}
        self._index: dict[str, int] = {}
        self._new: list[JobRow] = []
        self._changed: set[str] = set()
        self._running: set[str] = set()
        self._counts: dict[JobState, int] = dict.fromkeys(JobState, 0)
        self._last_tick = 0.0

    # ------------------------------------------------------------- Qt model API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's default argument
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        if role == JOB_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole:
            return row.job.name
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.get(row.job.input)
        if role == Qt.ItemDataRole.ToolTipRole:
            job = row.job
            lines = [f"{job.input}", f"→ {job.output}"]
            if job.mask:
                lines.insert(1, f"mask {job.mask}")
            if job.error:
                lines.append(job.error)
            return "\n".join(lines)
        return None

    # ------------------------------------------------------------------ updates
    def stage(self, job: Job, progress: float | None) -> None:
        """Record a farm event; shown at the next :meth:`flush`."""
        row = self._by_id.get(job.id)
        if row is None:
            row = self._by_id[job.id] = JobRow(job)
            self._new.append(row)
        row.update(progress, self.clock())
        row.seen = job.state
        self._changed.add(job.id)

    def staged_state(self, job_id: str) -> JobState | None:
        """The job's state at its latest staged event (None: not seen yet)."""
        row = self._by_id.get(job_id)
        return row.seen if row is not None else None

    def flush(self) -> bool:
        """Apply staged changes; True when anything changed."""
        changed = bool(self._new or self._changed)
        if self._new:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(self._new) - 1)
            for i, row in enumerate(self._new, first):
                self._index[row.job.id] = i
            self._rows.extend(self._new)
            self._new = []
            self.endInsertRows()
        lo, hi = len(self._rows), -1
        for job_id in self._changed:
            i = self._index[job_id]
            lo, hi = min(lo, i), max(hi, i)
            row = self._rows[i]
            state = row.job.state
            if row.counted is not state:
                if row.counted is not None:
                    self._counts[row.counted] -= 1
                self._counts[state] += 1
                row.counted = state
            if state in (JobState.RUNNING, JobState.DISPATCHED):
                self._running.add(job_id)
            else:
                self._running.discard(job_id)
        self._changed.clear()
        now = self.clock()
        if self._running and now - self._last_tick >= 1.0:  # elapsed times move on
            self._last_tick = now
            for job_id in self._running:
                i = self._index[job_id]
                lo, hi = min(lo, i), max(hi, i)
        if hi >= lo:
            self.dataChanged.emit(self.index(lo), self.index(hi))
        return changed

    def running_progress(self) -> float:
        """The summed progress of the running edits that report one (for the batch's ETA)."""
        rows = (self._by_id.get(job_id) for job_id in self._running)
        return sum(r.progress for r in rows if r is not None and r.reported)

    def counts(self) -> Counts:
        c = self._counts
        return Counts(
            queued=c[JobState.QUEUED],
            running=c[JobState.DISPATCHED] + c[JobState.RUNNING],
            done=c[JobState.DONE],
            failed=c[JobState.FAILED],
            cancelled=c[JobState.CANCELLED],
        )

    def clear_finished(self) -> None:
        """Drop done, failed and cancelled rows from the list (the files stay)."""
        self.flush()
        self.beginResetModel()
        keep = [r for r in self._rows if not r.job.state.finished]
        for r in self._rows:
            if r.job.state.finished:
                self._by_id.pop(r.job.id, None)
                if r.counted is not None:
                    self._counts[r.counted] -= 1
        self._rows = keep
        self._index = {r.job.id: i for i, r in enumerate(keep)}
        self.endResetModel()

    # ------------------------------------------------------------------ lookups
    def row_of(self, job_id: str) -> int | None:
        return self._index.get(job_id)

    def job_row(self, row: int) -> JobRow:
        return self._rows[row]

    def job_rows(self, indexes: Iterable[Index]) -> list[JobRow]:
        return [self._rows[i.row()] for i in indexes if i.isValid() and i.row() < len(self._rows)]

    def _thumbnail_ready(self, key: str) -> None:
        # Only visible rows ask for thumbnails, so a linear scan of the few matching rows is rare; an
        # index by path would cost memory on every one of 10,000 rows.
        rows = [i for i, r in enumerate(self._rows) if str(r.job.input) == key]
        if rows:
            self.dataChanged.emit(self.index(min(rows)), self.index(max(rows)), [Qt.ItemDataRole.DecorationRole])


class QueueDelegate(QStyledItemDelegate):
    """Thumbnail, name, state · node · elapsed, and a progress bar or state badge on the right."""

    ROW_HEIGHT = 58
    THUMB = 48
    BAR_WIDTH = 150

    def __init__(self, model: QueueModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model = model

    @staticmethod
    def node_shown(job: Job) -> bool:
        """A queued job is on no PC: its row names none (not the PC it last ran on)."""
        return bool(job.worker) and job.state is not JobState.QUEUED

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(320, self.ROW_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        row: JobRow | None = index.data(JOB_ROLE)
        if row is None:
            return
        job = row.job
        widget = option.widget
        style = widget.style() if widget else QApplication.style()
        style.drawPrimitive(QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, widget)
        rect: QRect = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        palette: QPalette = option.palette
        text_colour = palette.color(QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text)
        painter.save()
        pad = (self.ROW_HEIGHT - self.THUMB) // 2
        thumb_rect = QRect(rect.left() + pad, rect.top() + pad, self.THUMB, self.THUMB)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if pixmap is not None:
            x = thumb_rect.left() + (self.THUMB - pixmap.width()) // 2
            y = thumb_rect.top() + (self.THUMB - pixmap.height()) // 2
            painter.drawPixmap(x, y, pixmap)
        else:
            painter.fillRect(thumb_rect, palette.color(QPalette.ColorRole.AlternateBase))
        right = rect.right() - 10 - self.BAR_WIDTH
        text_left = thumb_rect.right() + 10
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(text_colour)
        name_rect = QRect(text_left, rect.top() + 8, right - text_left - 10, 20)
        painter.drawText(
            name_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            painter.fontMetrics().elidedText(job.name, Qt.TextElideMode.ElideMiddle, name_rect.width()),
        )
        painter.setFont(option.font)
        parts = [STATE_LABELS.get(job.state, job.state.value)]
        if job.split:
            parts.append(job.split)  # "8 tiles": the dashboard shows which PC runs which
        if self.node_shown(job):
            parts.append(self.model.worker_names.get(job.worker or "", job.worker or ""))
        elapsed = format_seconds(row.elapsed(self.model.clock()))
        if elapsed:
            parts.append(elapsed)
        detail = " · ".join(parts)
        if job.state is JobState.FAILED:
            reason, action = row.fix()
            detail = f"{detail} · double-click: {FIX_LABELS[action]} — {reason}"
        elif job.error:
            detail += f" — {job.error}"
        detail_rect = QRect(text_left, rect.top() + 30, right - text_left - 10, 20)
        painter.setPen(
            text_colour
            if selected
            else (STATE_COLOURS[job.state] if job.error else palette.color(QPalette.ColorRole.PlaceholderText))
        )
        painter.drawText(
            detail_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            painter.fontMetrics().elidedText(detail, Qt.TextElideMode.ElideRight, detail_rect.width()),
        )
        bar_rect = QRect(right, rect.top() + (self.ROW_HEIGHT - 18) // 2, self.BAR_WIDTH, 18)
        if job.state in (JobState.RUNNING, JobState.DISPATCHED):
            bar = QStyleOptionProgressBar()
            bar.rect = bar_rect
            busy, bar.text = row.bar()
            bar.minimum, bar.maximum = 0, 1000
            if busy:  # a moving stripe: time passes, no fraction is claimed
                width = 1000 // 4
                offset = int(self.model.clock() * 400) % (1000 + width) - width
                bar.progress = 0
                painter.fillRect(bar_rect, palette.color(QPalette.ColorRole.AlternateBase))
                stripe = QRect(
                    bar_rect.left() + max(offset, 0) * bar_rect.width() // 1000,
                    bar_rect.top(),
                    (min(offset + width, 1000) - max(offset, 0)) * bar_rect.width() // 1000,
                    bar_rect.height(),
                )
                painter.fillRect(stripe, STATE_COLOURS[job.state].lighter(150))
                painter.setPen(text_colour)
                painter.drawText(bar_rect, Qt.AlignmentFlag.AlignCenter, bar.text)
                painter.restore()
                return
            bar.progress = int(row.progress * 1000)
            bar.textVisible = True
            bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
            bar.palette = palette
            style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)
        else:
            colour = STATE_COLOURS[job.state]
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            badge = QColor(colour)
            badge.setAlpha(38)
            painter.setBrush(badge)
            painter.drawRoundedRect(bar_rect, 9, 9)
            painter.setPen(text_colour if selected else colour)
            painter.drawText(bar_rect, Qt.AlignmentFlag.AlignCenter, job.state.value)
        painter.restore()
