"""The node dashboard: a table model of NodeRows, a throughput sparkline, and the nodes page widget."""

from __future__ import annotations

from PySide6.QtCore import (
    QPointF,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QGuiApplication, QPainter, QPainterPath, QPalette, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionProgressBar,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from gui.node_checks import NodeChecks
from gui.nodes_model import COL_JOB, COL_SPARK, NODE_ROLE, Index
from gui.rows import NodeRow, plain_error
from gui.viewmodels import FarmController


class JobCellDelegate(QStyledItemDelegate):
    """The current job as a progress bar labelled with its name."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        row: NodeRow = index.data(NODE_ROLE)
        if not row.job:
            super().paint(painter, option, index)
            return
        widget = option.widget
        style = widget.style() if widget else QApplication.style()
        bar = QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(4, 6, -4, -6)
        bar.minimum, bar.maximum, bar.progress = 0, 1000, int(row.progress * 1000)
        # no fraction reported (OpenCV reports none): the name alone, never a fake "0 %"
        bar.text = f"{row.job}  {row.progress:.0%}" if row.progress > 0 else f"{row.job} · working…"
        bar.textVisible = True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        bar.palette = option.palette
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, widget)


class SparklineDelegate(QStyledItemDelegate):
    """Jobs finished per second over the last minute, as a filled line (custom paint)."""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(120, 36)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        row: NodeRow = index.data(NODE_ROLE)
        rect: QRect = option.rect.adjusted(4, 6, -4, -6)
        paint_sparkline(painter, rect, list(row.history), option.palette)


def paint_sparkline(painter: QPainter, rect: QRect, values: list[int], palette: QPalette, slots: int = 60) -> None:
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    base = palette.color(QPalette.ColorRole.Mid)
    painter.setPen(QPen(base, 1))
    painter.drawLine(rect.bottomLeft(), rect.bottomRight())
    if values:
        top = max(max(values), 1)
        step = rect.width() / max(slots - 1, 1)
        x0 = rect.right() - step * (len(values) - 1)
        points = [QPointF(x0 + i * step, rect.bottom() - v / top * (rect.height() - 1)) for i, v in enumerate(values)]
        line = QPainterPath(points[0])
        for p in points[1:]:
            line.lineTo(p)
        area = QPainterPath(line)
        area.lineTo(points[-1].x(), rect.bottom())
        area.lineTo(points[0].x(), rect.bottom())
        area.closeSubpath()
        colour = QColor("#2a6fd6")
        fill = QColor(colour)
        fill.setAlpha(50)
        painter.fillPath(area, fill)
        painter.setPen(QPen(colour, 1.5))
        painter.drawPath(line)
    painter.restore()


class Dashboard(QWidget):
    """The Nodes page: the live table, add by address, pause/ignore/remove, and the farm token."""

    addRequested = Signal(str)

    def __init__(self, controller: FarmController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.model = controller.nodes
        layout = QVBoxLayout(self)

        add_row = QHBoxLayout()
        self.address = QLineEdit(placeholderText="Node address, e.g. 192.168.1.20:7788")
        self.add_button = QPushButton("Add node")
        self.address.returnPressed.connect(self._add)
        self.add_button.clicked.connect(self._add)
        add_row.addWidget(QLabel("Add a node by address:"))
        add_row.addWidget(self.address, 1)
        add_row.addWidget(self.add_button)
        layout.addLayout(add_row)
        self.add_status = QLabel(wordWrap=True)  # "checking ..." then what the address answered; stays
        self.add_status.setVisible(False)
        layout.addWidget(self.add_status)

        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(44)
        self.table.setItemDelegateForColumn(COL_JOB, JobCellDelegate(self.table))
        self.table.setItemDelegateForColumn(COL_SPARK, SparklineDelegate(self.table))
        self.table.setAlternatingRowColors(True)
        self.table.setShowGrid(False)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setMinimumSectionSize(40)
        # columns keep their widths and the table scrolls sideways when narrow: nothing is cut off
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.table.setHorizontalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        for col, width in enumerate((150, 110, 105, 85, 210, 50, 60, 80)):  # a tile: "name tile 3/12"
            self.table.setColumnWidth(col, width)
        # the state column fits the longest state with its colour dot: never elided
        self.table.setColumnWidth(1, max(110, self.table.fontMetrics().horizontalAdvance("unauthorised") + 44))
        self.table.doubleClicked.connect(lambda _i: self.show_errors())
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.empty = QLabel(
            "<b>No other PCs yet.</b> On each PC that should help: install LAN Farm, run "
            "<code>lanfarm node</code> (or the app), and give it this farm's token (below). Nodes on this "
            "network appear here by themselves; elsewhere, add one by its address above."
        )
        self.empty.setWordWrap(True)
        self.empty.setTextFormat(Qt.TextFormat.RichText)
        self.empty.setObjectName("emptyNodes")
        self.empty.setStyleSheet("padding: 10px; border: 1px dashed palette(mid); border-radius: 8px;")
        layout.addWidget(self.empty)
        self.model.rowsInserted.connect(lambda *_a: self._show_empty())
        self.model.rowsRemoved.connect(lambda *_a: self._show_empty())
        self.model.dataChanged.connect(lambda *_a: self._show_empty())
        layout.addWidget(self.table, 1)
        self.detail = QLabel(wordWrap=True)  # the selected node's problem, in full (not only a tooltip)
        self.detail.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.detail.setVisible(False)
        layout.addWidget(self.detail)
        self.model.dataChanged.connect(lambda *_a: self._show_detail())
        self.checks = NodeChecks(controller, self)  # lock, fingerprint, Trust; "Why isn't my PC here?"
        layout.addWidget(self.checks)
        actions = QHBoxLayout()
        self.pause_button = QPushButton("Pause node")
        self.ignore_button = QPushButton("Ignore node")
        self.remove_button = QPushButton("Remove")
        self.pause_button.setCheckable(True)
        self.ignore_button.setCheckable(True)
        self.pause_button.toggled.connect(self._pause)
        self.ignore_button.toggled.connect(self._ignore)
        self.remove_button.clicked.connect(self._remove)
        self.errors_button = QPushButton("Errors…")
        self.errors_button.setToolTip("What went wrong on this node (double-click a row too)")
        self.errors_button.clicked.connect(self.show_errors)
        for b in (self.pause_button, self.ignore_button, self.remove_button, self.errors_button):
            actions.addWidget(b)
        actions.addStretch(1)
        layout.addLayout(actions)

        token_box = QGroupBox("Farm token (pairing)")
        token_row = QHBoxLayout(token_box)
        self.token = QLineEdit(controller.token, readOnly=True)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.show_token = QPushButton("Show")
        self.show_token.setCheckable(True)
        self.copy_token = QPushButton("Copy")
        self.regenerate = QPushButton("Regenerate…")
        self.show_token.toggled.connect(
            lambda on: self.token.setEchoMode(QLineEdit.EchoMode.Normal if on else QLineEdit.EchoMode.Password)
        )
        self.copy_token.clicked.connect(lambda: QGuiApplication.clipboard().setText(self.controller.token))
        self.regenerate.clicked.connect(self._regenerate)
        controller.tokenChanged.connect(self.token.setText)
        token_row.addWidget(self.token, 1)
        for b in (self.show_token, self.copy_token, self.regenerate):
            token_row.addWidget(b)
        hint = QLabel(
            "Every PC of the farm needs the same token: put it in each node's token file "
            "(<code>lanfarm token --path</code> says where) or pass <code>--token-file</code>."
        )
        hint.setWordWrap(True)
        hint.setTextFormat(Qt.TextFormat.RichText)
        outer = QVBoxLayout()
        outer.addWidget(token_box)
        outer.addWidget(hint)
        layout.addLayout(outer)
        self._selection_changed()
        self._show_empty()

    def _show_empty(self) -> None:
        self.empty.setVisible(not any(not r.local for r in self.model.rows()))

    def selected(self) -> NodeRow | None:
        rows = self.table.selectionModel().selectedRows()
        return self.model.data(rows[0], NODE_ROLE) if rows else None

    def _selection_changed(self, *_args: object) -> None:
        row = self.selected()
        for b in (self.pause_button, self.ignore_button, self.remove_button):
            b.setEnabled(row is not None)
        self._show_detail()
        if row is not None:
            self.ignore_button.setEnabled(not row.local)
            self.remove_button.setEnabled(not row.local)
            for b, on in ((self.pause_button, row.paused), (self.ignore_button, row.ignored)):
                b.blockSignals(True)
                b.setChecked(on)
                b.blockSignals(False)

    def _show_detail(self) -> None:
        row = self.selected()
        problem = row.error if row is not None else ""
        self.detail.setText(f"{row.name}: {problem}" if row is not None and problem else "")
        self.detail.setVisible(bool(problem))
        self.checks.show_row(row)
        self.errors_button.setEnabled(row is not None and bool(row.errors or row.error))

    def error_text(self, row: NodeRow) -> str:
        lines = [f"{row.name} ({row.address or 'this PC'}): {row.failed} failed attempt(s)"]
        if row.error:
            lines.append(f"Now: {row.error}")
        lines += [f"• {e}" for e in reversed(row.errors)] or ["No failed attempt recorded."]
        return "\n".join(lines)

    def show_errors(self) -> QMessageBox | None:
        """The selected node's latest errors, readable and copyable."""
        row = self.selected()
        if row is None:
            return None
        box = QMessageBox(QMessageBox.Icon.Information, f"Errors on {row.name}", self.error_text(row), parent=self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.addButton(QMessageBox.StandardButton.Close)
        clear = box.addButton("Clear errors", QMessageBox.ButtonRole.ResetRole)
        node_id = row.id
        clear.clicked.connect(lambda: self.controller.reset_errors(node_id))
        box.open()
        return box

    def _add(self) -> None:
        text = self.address.text().strip()
        self.add_button.setEnabled(False)
        self.add_status.setText(f"Checking {text}…" if text else "")
        self.add_status.setStyleSheet("")
        self.add_status.setVisible(bool(text))
        task = self.controller.spawn(self.controller.add_peer(text), f"adding node {text or '(no address)'}")

        def done(t: object) -> None:
            self.add_button.setEnabled(True)
            if task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                self.add_status.setText(f"Added {text}: {task.result()}")
                self.address.clear()  # kept on failure, to be corrected
            else:
                self.add_status.setText(plain_error(str(exc)))
                self.add_status.setStyleSheet("color: #d2453d;")
            self.add_status.setVisible(True)

        task.add_done_callback(done)

    def _pause(self, on: bool) -> None:
        row = self.selected()
        if row is not None:
            self.controller.set_node_paused(row.id, on)

    def _ignore(self, on: bool) -> None:
        row = self.selected()
        if row is not None:
            self.controller.set_node_ignored(row.id, on)

    def _remove(self) -> None:
        row = self.selected()
        if row is not None:
            self.controller.remove_peer(row.id)

    def _regenerate(self) -> None:
        answer = QMessageBox.question(
            self,
            "Regenerate the farm token?",
            "Nodes that have the old token will refuse this PC until they get the new one. Regenerate?",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.regenerate_token()
