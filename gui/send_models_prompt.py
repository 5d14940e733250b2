"""The "Send models to nodes: ask me" prompt: queued jobs need a model of this PC that no capable node has.

It says which model (name, size), which nodes, how long the copy should take, and offers Send / Not now,
with "Always send automatically" (which switches the setting). It is not modal: the farm and the rest of
the app go on while it is open (closing it is "Not now"). The farm remembers the answer for that model
and those nodes until the app quits, so it never asks twice (farm/runtime/model_sync.py).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QCheckBox, QDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from farm.runtime.model_sync import SendQuestion

Answer = Literal["send", "not_now", "always"]


def size_text(size: int) -> str:
    return f"{size / (1 << 30):.1f} GB" if size >= 1 << 30 else f"{size / (1 << 20):.1f} MB"


def duration_text(seconds: float) -> str:
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {round(seconds)} s"
    minutes = round(seconds / 60)
    return f"about {minutes} min" if minutes < 90 else f"about {seconds / 3600:.1f} h"


def question_text(q: SendQuestion) -> str:
    """The prompt's message (plain text, one fact a line)."""
    jobs = f"{q.jobs} queued edit{'s' if q.jobs != 1 else ''} need{'s' if q.jobs == 1 else ''}"
    nodes = ", ".join(q.nodes)
    how = "at the link rate measured" if q.measured else "at 100 Mbit/s (the link is not measured yet)"
    return (
        f"{jobs} {q.model} ({size_text(q.size)}), and no node that can run {'them' if q.jobs != 1 else 'it'} "
        "has that model.\n\n"
        f"Copy it to {nodes}?\n"
        f"Transfer: {duration_text(q.seconds)} {how}.\n\n"
        "Not now: the edits run where the model is (this PC), and LAN Farm does not ask again about "
        "this model and these nodes until it restarts."
    )


class SendModelsPrompt(QDialog):
    """One question, answered once: ``answered`` carries "send", "not_now" or "always"."""

    answered = Signal(str)

    def __init__(self, question: SendQuestion, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.question = question
        self.answer: Answer | None = None
        self.setWindowTitle("Send a model to nodes?")
        self.setModal(False)
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.message = QLabel(question_text(question))
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.always = QCheckBox("Always send models automatically (changes the setting to “automatically”)")
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.not_now_button = QPushButton("Not now")
        self.send_button.clicked.connect(self._send)
        self.not_now_button.clicked.connect(lambda: self._answer("not_now"))
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.not_now_button)
        buttons.addWidget(self.send_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.always)
        layout.addLayout(buttons)
        self.setMinimumWidth(460)

    def _send(self) -> None:
        self._answer("always" if self.always.isChecked() else "send")

    def _answer(self, answer: Answer) -> None:
        if self.answer is None:
            self.answer = answer
            self.answered.emit(answer)
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.answer is None:  # the window closed: not now
            self.answer = "not_now"
            self.answered.emit("not_now")
        super().closeEvent(event)


async def answer_of(prompt: SendModelsPrompt) -> Answer:
    """Show ``prompt`` and wait (on the loop, which goes on) for its answer; cancelled: it closes."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def answered(text: str) -> None:
        if not answer.done():
            answer.set_result(text)

    prompt.answered.connect(answered)
    prompt.show()
    try:
        await answer
    finally:
        if prompt.answer is None:  # cancelled (the app quits): the window goes too
            prompt.answer = "not_now"
            prompt.close()
    return prompt.answer
