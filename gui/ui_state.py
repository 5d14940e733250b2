"""What the window remembers between runs (not settings): geometry, the last folder, brush size,
each engine's last parameters. Kept in the ``ui`` group of the settings' ini file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from farm.core.params import ParamValue


class UiState:
    """Small remembered values; anything unreadable reads as "nothing remembered"."""

    def __init__(self, ini: Path) -> None:
        self.ini = ini

    def _qs(self) -> QSettings:
        self.ini.parent.mkdir(parents=True, exist_ok=True)
        qs = QSettings(str(self.ini), QSettings.Format.IniFormat)
        qs.beginGroup("ui")
        return qs

    def _get(self, key: str) -> Any:
        qs = self._qs()
        return qs.value(key)

    def _set(self, key: str, value: Any) -> None:
        qs = self._qs()
        qs.setValue(key, value)
        qs.endGroup()
        qs.sync()

    def geometry(self) -> QByteArray | None:
        value = self._get("geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def set_geometry(self, value: QByteArray) -> None:
        self._set("geometry", value)

    def last_folder(self) -> str:
        value = self._get("last_folder")
        return str(value) if value and Path(str(value)).is_dir() else ""

    def set_last_folder(self, folder: Path) -> None:
        self._set("last_folder", str(folder))

    def brush_size(self, default: int) -> int:
        try:
            return int(self._get("brush_size") or default)
        except (TypeError, ValueError):
            return default

    def set_brush_size(self, size: int) -> None:
        self._set("brush_size", int(size))

    def params(self, engine: str) -> dict[str, ParamValue]:
        try:
            value = json.loads(str(self._get(f"params_{engine}") or "{}"))
        except ValueError:
            return {}
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}

    def set_params(self, engine: str, values: dict[str, ParamValue]) -> None:
        self._set(f"params_{engine}", json.dumps(values))
