"""The Nodes tab's trust and diagnosis widgets: the selected node's lock and certificate fingerprint with a
Trust button for a refused one, and "Why isn't my PC here?" showing farm.runtime.doctor's verdicts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMessageBox, QPushButton, QWidget

from farm.local.pins import colons
from farm.runtime.doctor import Verdict
from gui.rows import NodeRow, plain_error
from gui.viewmodels import FarmController

LOCK, OPEN = "\N{LOCK}", "\N{OPEN LOCK}"


def security_text(row: NodeRow) -> str:
    """What the dashboard says of a node's connection: lock and fingerprint, plain HTTP, or refused."""
    if row.local:
        return ""
    if row.untrusted:
        return f"{OPEN} Not trusted, no work sent: if you reinstalled that PC, press Trust"
    if row.tls and row.fingerprint:
        return f"{LOCK} TLS, pinned certificate SHA-256 {colons(row.fingerprint, 0)}"
    if row.online and row.authorised and row.gpu != "?":
        return f"{OPEN} Plain HTTP (started with --no-tls): others on this network can read its images"
    return ""


def verdicts_text(verdicts: list[Verdict]) -> str:
    return "\n".join(v.text() for v in verdicts)


class NodeChecks(QWidget):
    """Under the nodes table: the selected node's security line and Trust button, and the diagnosis."""

    def __init__(self, controller: FarmController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self._row: NodeRow | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.security = QLabel(wordWrap=True)
        self.security.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.trust_button = QPushButton("Trust")
        self.trust_button.setToolTip("Trust this node's new certificate (it must still prove the farm token)")
        self.trust_button.clicked.connect(self._trust)
        self.why_button = QPushButton("Why isn't my PC here?")
        self.why_button.setToolTip("Check mDNS, ports, TLS, the token and the protocol, with the fix for each")
        self.why_button.clicked.connect(self.diagnose)
        layout.addWidget(self.security, 1)
        layout.addWidget(self.trust_button)
        layout.addWidget(self.why_button)
        self.report: QMessageBox | None = None
        self.show_row(None)

    def show_row(self, row: NodeRow | None) -> None:
        self._row = row
        text = security_text(row) if row is not None else ""
        self.security.setText(text)
        self.security.setVisible(bool(text))
        self.trust_button.setVisible(row is not None and row.untrusted)

    def _trust(self) -> None:
        row = self._row
        if row is None:
            return
        answer = QMessageBox.question(
            self,
            f"Trust {row.name}?",
            f"{row.error}\n\nTrust the certificate it shows now? Do this only if you reinstalled that PC "
            "or deleted its certificate; it must still prove it holds this farm's token.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.controller.spawn(self.controller.trust_node(row.id), f"trusting {row.name}")

    def diagnose(self) -> None:
        """Run the checks and show their verdicts in a dialog (it opens at once, filled in when done)."""
        self.why_button.setEnabled(False)
        box = QMessageBox(QMessageBox.Icon.Information, "Why isn't my PC here?", "Checking…", parent=self)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.addButton(QMessageBox.StandardButton.Close)
        box.open()
        self.report = box
        task = self.controller.spawn(self.controller.diagnose(), "checking the network")

        def done(_t: object) -> None:
            self.why_button.setEnabled(True)
            if task.cancelled() or self.report is not box:
                return
            exc = task.exception()
            box.setText(plain_error(str(exc)) if exc is not None else verdicts_text(task.result()))

        task.add_done_callback(done)
