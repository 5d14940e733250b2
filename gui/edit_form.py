"""The edit picker: an engine list and a form generated from the engine's declared params schema.

No engine has a hand-written form: each ParamSpec kind maps to one widget (int -> spin box, float ->
double spin box, bool -> check box, choice -> combo box, str -> line or text edit).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from farm.core.params import ParamSpec, ParamValue
from farm.core.spec import EditSpec, HdStrategy, OutputSpec
from farm.engines import EngineDescriptor

INT_LIMIT = 2**31 - 1


def make_control(param: ParamSpec) -> tuple[QWidget, Callable[[], ParamValue], Callable[[ParamValue], None]]:
    """A widget for ``param`` with a getter and a setter for its value."""
    tip = param.help
    if param.kind == "bool":
        box = QCheckBox()
        box.setToolTip(tip)
        box.setChecked(bool(param.default))
        return box, box.isChecked, lambda v: box.setChecked(bool(v))
    if param.kind == "choice":
        combo = QComboBox()
        combo.setToolTip(tip)
        combo.addItems(list(param.choices))
        combo.setCurrentText(str(param.default))
        return combo, combo.currentText, lambda v: combo.setCurrentText(str(v))
    if param.kind == "int":
        spin = QSpinBox()
        spin.setToolTip(tip)
        spin.setRange(
            int(param.minimum) if param.minimum is not None else -INT_LIMIT,
            int(param.maximum) if param.maximum is not None else INT_LIMIT,
        )
        spin.setValue(int(param.default))
        return spin, spin.value, lambda v: spin.setValue(int(v))
    if param.kind == "float":
        dspin = QDoubleSpinBox(decimals=3)
        dspin.setToolTip(tip)
        dspin.setRange(
            param.minimum if param.minimum is not None else -1e9, param.maximum if param.maximum is not None else 1e9
        )
        span = dspin.maximum() - dspin.minimum()
        dspin.setSingleStep(0.1 if span <= 100 else 1.0)
        dspin.setValue(float(param.default))
        return dspin, dspin.value, lambda v: dspin.setValue(float(v))
    if param.multiline:
        text = QPlainTextEdit(str(param.default))
        text.setToolTip(tip)
        text.setFixedHeight(64)
        return text, text.toPlainText, lambda v: text.setPlainText(str(v))
    line = QLineEdit(str(param.default))
    line.setToolTip(tip)
    return line, line.text, lambda v: line.setText(str(v))


class EditForm(QWidget):
    """Pick an engine, set its params; :meth:`spec` is the EditSpec the next drop will use."""

    engineChanged = Signal(str)

    def __init__(
        self,
        descriptors: Sequence[EngineDescriptor],
        engine: str = "cv2",
        output: OutputSpec | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.descriptors = {d.id: d for d in descriptors}
        self.output = output or OutputSpec()
        self._getters: dict[str, Callable[[], ParamValue]] = {}
        self._setters: dict[str, Callable[[ParamValue], None]] = {}
        self.controls: dict[str, QWidget] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QFormLayout()
        self.engine = QComboBox()
        self.engine.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.engine.setMinimumContentsLength(14)
        self.engine.view().setTextElideMode(Qt.TextElideMode.ElideRight)
        self.unavailable = QLabel(wordWrap=True)  # why some engines cannot be picked, in full
        self.unavailable.setObjectName("unavailableEngines")
        self.unavailable.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.unavailable.setStyleSheet("color: palette(placeholder-text); font-size: 90%;")
        self.unavailable.setTextFormat(Qt.TextFormat.RichText)
        self.unavailable.linkActivated.connect(lambda link: self._show_reasons(link == "more"))
        self._reasons: list[str] = []
        self._expanded = False
        self._fill_engines(descriptors)
        top.addRow("Engine", self.engine)
        top.addRow(self.unavailable)
        self.hd = QComboBox()
        self.hd.setToolTip("How big images are handled: crop around the mask, resize, or whole")
        for key, text in (
            ("crop", "Crop around the mask"),
            ("resize", "Resize big images"),
            ("original", "Whole image"),
        ):
            self.hd.addItem(text, key)
        top.addRow("Big images", self.hd)
        layout.addLayout(top)
        self.params_form = top  # one grid: the engine's params line up with Engine and Big images
        self._fixed_rows = top.rowCount()
        self.note = QLabel(wordWrap=True)
        self.note.setStyleSheet("color: palette(placeholder-text);")
        layout.addWidget(self.note)
        self.engine.currentIndexChanged.connect(self._rebuild)
        self.set_engine(engine)
        self._rebuild()

    def set_descriptors(self, descriptors: Sequence[EngineDescriptor]) -> None:
        """The farm's engines changed (a node with other engines came or went): keep the choice if it stays."""
        if [(d.id, d.available, d.models) for d in descriptors] == [
            (d.id, d.available, d.models) for d in self.descriptors.values()
        ]:
            return
        current = self.engine_id
        values = self.values()
        self.descriptors = {d.id: d for d in descriptors}
        self.engine.blockSignals(True)
        self.engine.clear()
        self._fill_engines(descriptors)
        self.set_engine(current)
        self.engine.blockSignals(False)
        self._rebuild()
        if self.engine_id == current:
            for name, value in values.items():
                if name in self._setters:
                    self._setters[name](value)

    def _fill_engines(self, descriptors: Sequence[EngineDescriptor]) -> None:
        """Available engines can be picked; the others are listed greyed out, their reason below."""
        model = self.engine.model()
        assert isinstance(model, QStandardItemModel)
        reasons = []
        for d in descriptors:
            self.engine.addItem(d.title if d.available else f"{d.title} (unavailable)", d.id)
            if not d.available:
                item = model.item(self.engine.count() - 1)
                item.setEnabled(False)
                item.setToolTip(d.unavailable_reason)
                reasons.append(f"{d.title} is unavailable: {d.unavailable_reason.replace('`', '')}")
        self._reasons = reasons
        self._show_reasons(self._expanded)
        self.unavailable.setVisible(bool(reasons))

    def _show_reasons(self, expanded: bool) -> None:
        """A line naming the greyed-out engines; "why?" opens each one's full reason (what file to put where)."""
        self._expanded = expanded
        if not self._reasons:
            self.unavailable.setText("")
            return
        n = len(self._reasons)
        if expanded:
            body = "<br>".join(html.escape(r) for r in self._reasons)
            self.unavailable.setText(f"{body}<br><a href='less'>hide</a>")
        else:
            self.unavailable.setText(
                f"{n} engine{'s' if n != 1 else ''} greyed out: no model file here. <a href='more'>Why?</a>"
            )
        self.unavailable.setToolTip("\n".join(self._reasons))

    @property
    def unavailable_reasons(self) -> list[str]:
        return list(self._reasons)

    @property
    def engine_id(self) -> str:
        return str(self.engine.currentData())

    def descriptor(self) -> EngineDescriptor:
        return self.descriptors[self.engine_id]

    def set_engine(self, engine_id: str) -> None:
        """Pick an engine; an unavailable or unknown one falls back to the first available."""
        index = self.engine.findData(engine_id)
        desc = self.descriptors.get(engine_id)
        if index < 0 or desc is None or not desc.available:
            usable = (i for i in range(self.engine.count()) if self.descriptors[self.engine.itemData(i)].available)
            index = next(usable, 0)
        self.engine.setCurrentIndex(index)

    def set_param(self, name: str, value: ParamValue) -> None:
        self._setters[name](value)

    def values(self) -> dict[str, ParamValue]:
        return {name: get() for name, get in self._getters.items()}

    def spec(self) -> EditSpec:
        desc = self.descriptor()
        op = "inpaint" if "inpaint" in desc.operations else sorted(desc.operations)[0]
        return EditSpec(
            op=op,
            engine=desc.id,
            params=self.values(),
            hd=HdStrategy(strategy=self.hd.currentData()),
            output=self.output,
        )

    def _rebuild(self, *_args: object) -> None:
        while self.params_form.rowCount() > self._fixed_rows:
            self.params_form.removeRow(self._fixed_rows)
        self._getters.clear()
        self._setters.clear()
        self.controls.clear()
        desc = self.descriptors.get(self.engine_id)
        if desc is None:
            return
        for param in desc.params.params:
            widget, getter, setter = make_control(param)
            widget.setObjectName(f"param-{param.name}")
            self.params_form.addRow(param.label or param.name.replace("_", " ").capitalize(), widget)
            self._getters[param.name], self._setters[param.name] = getter, setter
            self.controls[param.name] = widget
        notes = ["needs a mask: NAME_mask.png beside each image, or paint one" if desc.needs_mask else "no mask needed"]
        if desc.simulated:
            notes.append("SIMULATED engine (benchmarks and tests)")
        self.note.setText("; ".join(notes))
        self.engineChanged.emit(desc.id)
