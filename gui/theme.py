"""The app's look: its icons, and a light or dark palette that follows the system's colour scheme."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QWidget

import resources

ICONS = Path(resources.__file__).resolve().parent / "icons"
ACCENT = QColor("#3d7fd9")


def icon(name: str) -> QIcon:
    """An icon from resources/icons (``action-add``, ``tray-idle`` ...)."""
    return QIcon(str(ICONS / f"{name}.svg"))


def dark_palette() -> QPalette:
    p = QPalette()
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, "#23262b"),
        (roles.WindowText, "#e6e8eb"),
        (roles.Base, "#1b1d21"),
        (roles.AlternateBase, "#262a30"),
        (roles.ToolTipBase, "#31363d"),
        (roles.ToolTipText, "#e6e8eb"),
        (roles.PlaceholderText, "#8d949e"),
        (roles.Text, "#e6e8eb"),
        (roles.Button, "#2c3036"),
        (roles.ButtonText, "#e6e8eb"),
        (roles.BrightText, "#ffffff"),
        (roles.Mid, "#4a5058"),
        (roles.Dark, "#16181b"),
        (roles.Highlight, ACCENT.name()),
        (roles.HighlightedText, "#ffffff"),
        (roles.Link, "#6ea8ff"),
    ):
        p.setColor(role, QColor(colour))
    for role in (roles.Text, roles.WindowText, roles.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b717a"))
    return p


def light_palette() -> QPalette:
    p = QApplication.style().standardPalette()
    p.setColor(QPalette.ColorRole.Highlight, ACCENT)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor("#f3f5f8"))
    return p


def apply_theme(app: QApplication, scheme: Qt.ColorScheme | None = None) -> str:
    """Fusion with the palette for the system's scheme (or ``scheme``); follows later changes too.
    Returns "dark" or "light"."""
    app.setStyle("Fusion")
    scheme = QGuiApplication.styleHints().colorScheme() if scheme is None else scheme
    dark = scheme == Qt.ColorScheme.Dark
    app.setPalette(dark_palette() if dark else light_palette())
    for top in app.topLevelWidgets():  # style sheets resolve palette(...) once: resolve them again
        for widget in [top, *top.findChildren(QWidget)]:
            sheet = widget.styleSheet()
            if sheet:
                widget.setStyleSheet("")
                widget.setStyleSheet(sheet)
    return "dark" if dark else "light"


def follow_system(app: QApplication) -> None:
    QGuiApplication.styleHints().colorSchemeChanged.connect(lambda s: apply_theme(app, s))
