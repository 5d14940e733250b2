"""App settings: a pure value type, stored by QSettings in an ini file under ``farm.local.paths.config_dir()``.

The farm token is not kept here: it lives in the token file that ``lanfarm token`` and the node use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from farm.core.spec import FORMAT_SUFFIX
from farm.local import paths
from farm.local import token as auth

SETTINGS_FILE = "app.ini"


def default_output_dir() -> Path:
    pictures = Path.home() / "Pictures"
    return (pictures if pictures.is_dir() else Path.home()) / "LAN Farm"


@dataclass(frozen=True, slots=True)
class AppSettings:
    """What the user chose; every field has a safe default so a damaged file never stops the app."""

    output_dir: Path = field(default_factory=default_output_dir)
    output_format: str = "png"
    quality: int = 95
    local_worker: bool = True
    local_slots: int = 1
    discovery: bool = True
    models_dir: Path = field(default_factory=paths.models_dir)
    peers: tuple[str, ...] = ()
    engine: str = "cv2"
    tray_notice_shown: bool = False

    def with_peer(self, address: str) -> AppSettings:
        return self if address in self.peers else replace(self, peers=(*self.peers, address))

    def without_peer(self, address: str) -> AppSettings:
        return replace(self, peers=tuple(p for p in self.peers if p != address))

    def to_strings(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in asdict(self).items():
            if isinstance(value, bool):
                out[key] = "true" if value else "false"
            elif isinstance(value, tuple | list):
                out[key] = json.dumps(list(value))
            else:
                out[key] = str(value)
        return out

    @classmethod
    def from_strings(cls, raw: Mapping[str, Any]) -> AppSettings:
        """Parse what the ini file holds; unknown keys are ignored, bad values fall back to defaults."""
        base = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in raw or raw[f.name] is None:
                continue
            text = str(raw[f.name]) if not isinstance(raw[f.name], list) else raw[f.name]
            default = getattr(base, f.name)
            try:
                values[f.name] = _parse(text, default)
            except (ValueError, TypeError):
                continue
        out = replace(base, **values)
        if out.output_format not in FORMAT_SUFFIX:
            out = replace(out, output_format="png")
        return replace(out, quality=min(100, max(1, out.quality)), local_slots=min(64, max(1, out.local_slots)))


def _parse(text: Any, default: Any) -> Any:
    if isinstance(default, bool):
        if str(text).lower() in ("true", "1", "yes"):
            return True
        if str(text).lower() in ("false", "0", "no"):
            return False
        raise ValueError(text)
    if isinstance(default, int):
        return int(text)
    if isinstance(default, Path):
        if not str(text).strip():
            raise ValueError("empty path")
        return Path(str(text)).expanduser()
    if isinstance(default, tuple):
        items = text if isinstance(text, list) else json.loads(text)
        if not isinstance(items, list):
            raise ValueError(text)
        return tuple(str(i) for i in items)
    return str(text)


class SettingsStore:
    """Loads and saves :class:`AppSettings` (ini via QSettings) and the farm token (token file)."""

    def __init__(self, path: Path | None = None, token_path: Path | None = None) -> None:
        self.path = path or paths.config_dir() / SETTINGS_FILE
        self.token_path = token_path or auth.token_path()

    def _qsettings(self) -> QSettings:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return QSettings(str(self.path), QSettings.Format.IniFormat)

    def load(self) -> AppSettings:
        qs = self._qsettings()
        return AppSettings.from_strings({key: qs.value(key) for key in qs.allKeys()})

    def save(self, settings: AppSettings) -> None:
        qs = self._qsettings()
        for key, value in settings.to_strings().items():
            qs.setValue(key, value)
        qs.sync()

    def token(self) -> str:
        return auth.load_or_create_token(self.token_path)

    def set_token(self, token: str) -> str:
        token = token.strip()
        if len(token) < 16:
            raise ValueError("a farm token has at least 16 characters")
        return auth.save_token(token, self.token_path)

    def regenerate_token(self) -> str:
        return auth.save_token(auth.new_token(), self.token_path)
