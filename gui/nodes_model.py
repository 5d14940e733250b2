"""The dashboard's table model: one row per node, fed by the controller."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QColor

from farm.core.nodeinfo import NodeInfo
from farm.core.scheduler import LOCAL, WorkerStatus
from gui.rows import NodeRow

Index = QModelIndex | QPersistentModelIndex
COL_JOB, COL_SPARK = 4, 8

NODE_ROLE = Qt.ItemDataRole.UserRole + 1


COLUMNS = ("Node", "State", "GPU", "VRAM", "Current job", "Done", "Errors", "Speed", "Throughput")


STATE_COLOURS = {
    "idle": "#2e9d57",
    "busy": "#2a6fd6",
    "paused": "#c98a16",
    "blocklisted": "#d2453d",
    "offline": "#8a8f96",
    "unauthorised": "#d2453d",
    "untrusted": "#d2453d",
    "ignored": "#8a8f96",
    "nimby": "#b0479a",  # its owner's states: the PC's user is at it, outside its schedule, shutting down
    "schedule": "#c98a16",
    "draining": "#8a8f96",
    "asleep": "#5a6fa8",  # its PC went to sleep (Wake-on-LAN can wake it)
    "waking": "#2a6fd6",
}


class NodesModel(QAbstractTableModel):
    """Rows keyed by node id; the local worker first. Fed like discovery will feed it."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[NodeRow] = []
        self._index: dict[str, int] = {}

    # ------------------------------------------------------------- Qt model API
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008 - Qt's default argument
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._rows):
            return None
        row = self._rows[index.row()]
        col = index.column()
        if role == NODE_ROLE:
            return row
        if role == Qt.ItemDataRole.DisplayRole and col < COL_SPARK:
            # a node known only by its address (it refused the token) is named by it once, not twice
            title = f"{row.name}\n{row.address}" if row.address and row.name not in row.address else row.name
            job = row.job or (f"waiting: {row.waiting}" if row.waiting and row.state == "idle" else "")
            return (title, row.state_text, row.gpu, row.vram_text, job, str(row.done), str(row.failed), row.speed_text)[
                col
            ]
        if role == Qt.ItemDataRole.DecorationRole and col == 1:
            return QColor(STATE_COLOURS[row.state])
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_SPARK:
                return f"{sum(list(row.history)[-60:])} jobs in the last minute"
            if col == COL_JOB and not row.job and row.waiting:
                return f"Idle while edits wait: {row.waiting}"
            if col == 1 and row.held:
                return f"{row.name} takes no jobs now: {row.held_reason or row.held} (its owner's setting)"
            return row.error or f"{row.name} ({row.id})"
        if role == Qt.ItemDataRole.TextAlignmentRole and col in (5, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    # ------------------------------------------------------------------- feeding
    def rows(self) -> list[NodeRow]:
        return list(self._rows)

    def row(self, node_id: str) -> NodeRow | None:
        i = self._index.get(node_id)
        return self._rows[i] if i is not None else None

    def node_up(self, node_id: str, name: str, address: str, info: NodeInfo | None) -> None:
        row = self.row(node_id)
        if row is None:
            row = NodeRow(node_id, name, address)
            if node_id == LOCAL:
                row.gpu, row.address = "CPU (this PC)", ""
            first = 0 if node_id == LOCAL else len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first)
            self._rows.insert(first, row)
            self._reindex()
            self.endInsertRows()
        row.name = name or row.name
        row.address = address or row.address
        row.online, row.authorised, row.untrusted = True, True, False
        row.error = ""
        if info is not None:
            row.apply_info(info)
        self._changed(node_id)

    def node_down(self, node_id: str, reason: str) -> None:
        row = self.row(node_id)
        if row is not None:
            row.online = False
            row.job, row.progress = "", 0.0
            row.error = reason
            self._changed(node_id)

    def node_unauthorised(self, node_id: str, address: str, error: str) -> None:
        row = self.row(node_id)
        if row is None:
            self.node_up(node_id, address.split("://")[-1], address, None)
            row = self.row(node_id)
            assert row is not None
        row.authorised = False
        row.error = (
            "refused this farm's token. Copy the token below (Show, Copy) into that PC's token file "
            "(lanfarm token --path there says where), then it is asked again."
        )
        self._changed(node_id)

    def node_untrusted(self, node_id: str, address: str, reason: str) -> None:
        """This farm refuses the node (another certificate than the pinned one, or no proof of the token)."""
        self.node_unauthorised(node_id, address, reason)
        row = self.row(node_id)
        assert row is not None
        row.authorised, row.untrusted, row.error = True, True, reason
        self._changed(node_id)

    def update(self, node_id: str, **values: Any) -> None:
        row = self.row(node_id)
        if row is not None:
            for key, value in values.items():
                setattr(row, key, value)
            self._changed(node_id)

    def sample(
        self, node_id: str, status: WorkerStatus | None, done: int, failed: int, job: str, progress: float
    ) -> None:
        row = self.row(node_id)
        if row is not None:
            row.sample(status, done, failed, job, progress)
            self._changed(node_id)

    def remove(self, node_id: str) -> None:
        i = self._index.get(node_id)
        if i is not None:
            self.beginRemoveRows(QModelIndex(), i, i)
            del self._rows[i]
            self._reindex()
            self.endRemoveRows()

    def _reindex(self) -> None:
        self._index = {r.id: i for i, r in enumerate(self._rows)}

    def _changed(self, node_id: str) -> None:
        i = self._index[node_id]
        self.dataChanged.emit(self.index(i, 0), self.index(i, len(COLUMNS) - 1))
