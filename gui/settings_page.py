"""The Settings page: edits an AppSettings and hands it to the controller (which saves it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.settings import AppSettings
from gui.viewmodels import FarmController


def _folder_row(edit: QLineEdit, parent: QWidget, title: str) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    browse = QPushButton("Browse…")

    def pick() -> None:
        folder = QFileDialog.getExistingDirectory(parent, title, edit.text())
        if folder:
            edit.setText(folder)

    browse.clicked.connect(pick)
    row.addWidget(browse)
    return row


#: The "Send models to nodes" choices: the setting's value -> what the page shows.
SEND_MODELS = {"auto": "automatically", "ask": "ask me", "off": "never"}
RESTART_NOTE = "Discovery and models-folder changes take effect at the next start."


class SettingsPage(QWidget):
    def __init__(self, controller: FarmController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        form = QFormLayout()
        self.output_dir = QLineEdit()
        form.addRow("Output folder", _folder_row(self.output_dir, self, "Output folder"))
        self.format = QComboBox()
        self.format.addItems(["keep", "png", "jpeg", "webp"])
        self.format.setToolTip("keep: a JPEG stays a JPEG at about its own quality, WebP stays WebP, others become PNG")
        self.quality = QSpinBox(minimum=1, maximum=100, suffix=" %")
        fmt = QHBoxLayout()
        fmt.addWidget(self.format)
        fmt.addWidget(QLabel("quality"))
        fmt.addWidget(self.quality)
        fmt.addStretch(1)
        form.addRow("Output format", fmt)
        self.local_worker = QCheckBox("Edit on this PC too")
        self.local_slots = QSpinBox(minimum=1, maximum=64, suffix=" at once")
        local = QHBoxLayout()
        local.addWidget(self.local_worker)
        local.addWidget(self.local_slots)
        local.addStretch(1)
        form.addRow("Local worker", local)
        self.discovery = QCheckBox("Find nodes on the local network (mDNS)")
        form.addRow("Discovery", self.discovery)
        self.send_models = QComboBox()
        for mode, label in SEND_MODELS.items():
            self.send_models.addItem(label, mode)
        self.send_models.setToolTip(
            "when queued jobs need a model of this PC that no capable node has: copy it to the nodes that "
            "have the engine, memory and disk for it, ask first, or never (the jobs then run where they can)"
        )
        form.addRow("Send models to nodes", self.send_models)
        self.split_edits = QCheckBox("Split one big edit across PCs when that ends it sooner")
        self.split_edits.setToolTip(
            "a big upscale goes out as tiles, an inpaint with separate spots as one crop per spot; each PC "
            "does some and the result is stitched here without seams (lanfarm run --tiles)"
        )
        form.addRow("Big edits", self.split_edits)
        self.serve_api = QCheckBox("Let other programs use the farm")
        self.serve_api.setToolTip(
            "IOPaint's API and the farm API: Krita's IOPaint plugin, IOPaint's web UI or a script on this PC "
            "can send edits to the whole farm at http://127.0.0.1:PORT (docs/clients.md); other PCs cannot"
        )
        self.serve_port = QSpinBox(minimum=1, maximum=65535)
        self.serve_port.setToolTip("the port on 127.0.0.1 (8080: IOPaint's, which Krita's plugin expects)")
        serve = QHBoxLayout()
        serve.addWidget(self.serve_api)
        serve.addWidget(self.serve_port)
        serve.addStretch(1)
        form.addRow("Other programs", serve)
        self.models_dir = QLineEdit()
        form.addRow("Models folder", _folder_row(self.models_dir, self, "Models folder"))
        self.peers = QListWidget()
        self.peers.setMaximumHeight(110)
        form.addRow("Saved nodes", self.peers)
        self.apply_button = QPushButton("Apply")
        self.apply_button.clicked.connect(self.apply)
        self.note = QLabel(RESTART_NOTE)
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text);")
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.note, 1)
        buttons.addWidget(self.apply_button)
        layout.addLayout(buttons)
        layout.addStretch(1)
        controller.settingsChanged.connect(self.load)
        self.load(controller.settings)
        for edit in (self.output_dir, self.models_dir):
            edit.textChanged.connect(self._changed)
        self.format.currentTextChanged.connect(self._changed)
        self.send_models.currentIndexChanged.connect(self._changed)
        for spin in (self.quality, self.local_slots, self.serve_port):
            spin.valueChanged.connect(self._changed)
        for box in (self.local_worker, self.discovery, self.split_edits, self.serve_api):
            box.toggled.connect(self._changed)

    @property
    def pending(self) -> bool:
        """Edits on the page that are not applied yet."""
        return self.settings() != self.controller.settings

    def _changed(self, *_args: object) -> None:
        """Edits not applied yet are marked as such (and Apply is the way to apply them)."""
        pending = self.pending
        self.apply_button.setEnabled(pending)
        self.note.setText("Not applied yet: press Apply. " + RESTART_NOTE if pending else RESTART_NOTE)
        self.note.setStyleSheet("color: #c98a16;" if pending else "color: palette(placeholder-text);")

    def load(self, s: AppSettings) -> None:
        self.output_dir.setText(str(s.output_dir))
        self.format.setCurrentText(s.output_format)
        self.quality.setValue(s.quality)
        self.local_worker.setChecked(s.local_worker)
        self.local_slots.setValue(s.local_slots)
        self.discovery.setChecked(s.discovery)
        self.serve_api.setChecked(s.serve_api)
        self.send_models.setCurrentIndex(max(0, self.send_models.findData(s.send_models)))
        self.split_edits.setChecked(s.split_edits)
        self.serve_port.setValue(s.serve_port)
        self.models_dir.setText(str(s.models_dir))
        self.peers.clear()
        self.peers.addItems(list(s.peers))
        self._changed()

    def settings(self) -> AppSettings:
        s = self.controller.settings
        out = self.output_dir.text().strip()
        models = self.models_dir.text().strip()
        return replace(
            s,
            output_dir=Path(out).expanduser() if out else s.output_dir,
            output_format=self.format.currentText(),
            quality=self.quality.value(),
            local_worker=self.local_worker.isChecked(),
            local_slots=self.local_slots.value(),
            discovery=self.discovery.isChecked(),
            serve_api=self.serve_api.isChecked(),
            send_models=str(self.send_models.currentData()),
            split_edits=self.split_edits.isChecked(),
            serve_port=self.serve_port.value(),
            models_dir=Path(models).expanduser() if models else s.models_dir,
        )

    def apply(self) -> None:
        self.controller.update_settings(self.settings())
        self.controller.post("Settings applied", "ok")
