"""App settings: a pure value type, stored by QSettings in an ini file under ``farm.local.paths.config_dir()``.

The farm token is not kept here: it lives in the token file that ``lanfarm token`` and the node use.
As everywhere (``farm.local.settings``), the environment beats the file: ``LANFARM_MODELS_DIR`` and
``LANFARM_DISCOVERY`` beat ``app.ini``, ``LANFARM_TOKEN`` beats the token file, and a value that came
from the environment is never written to ``app.ini``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from farm.core.spec import OUTPUT_FORMATS
from farm.local import paths
from farm.local import settings as resolver
from farm.local import token as auth
from farm.runtime.model_sync import SYNC_MODES

SETTINGS_FILE = "app.ini"
log = logging.getLogger(__name__)


def default_output_dir() -> Path:
    return paths.pictures_dir()


@dataclass(frozen=True, slots=True)
class AppSettings:
    """What the user chose; every field has a safe default so a damaged file never stops the app."""

    output_dir: Path = field(default_factory=default_output_dir)
    output_format: str = "keep"  # the input's own format (farm.core.spec.kept_format)
    quality: int = 95
    local_worker: bool = True
    local_slots: int = 1
    discovery: bool = True
    models_dir: Path = field(default_factory=paths.default_models_dir)
    peers: tuple[str, ...] = ()
    engine: str = "cv2"
    tray_notice_shown: bool = False
    serve_api: bool = False  # let other programs use the farm: IOPaint's API and the farm API, this PC only
    serve_port: int = 8080  # IOPaint's port, the Krita plugin's fixed URL
    # a model queued jobs need, to nodes that can run them but lack it: "auto", "ask" (a prompt) or "off"
    send_models: str = "auto"
    split_edits: bool = True  # one big upscale as tiles (an inpaint as regions) across PCs, when it ends sooner

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
        if out.output_format not in OUTPUT_FORMATS:
            out = replace(out, output_format="keep")
        out = replace(out, send_models=_sync_mode(out.send_models))
        return replace(out, quality=min(100, max(1, out.quality)), local_slots=min(64, max(1, out.local_slots)))


def _sync_mode(text: str) -> str:
    """The model-sending mode from the file; the older on/off checkbox reads as auto/off."""
    word = text.strip().lower()
    if word in SYNC_MODES:
        return word
    return "off" if word in ("false", "0", "no") else "auto"


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
    """Loads and saves :class:`AppSettings` (ini via QSettings) and the farm token (token file).

    :meth:`load` applies the environment over the file (``LANFARM_MODELS_DIR``, ``LANFARM_DISCOVERY``);
    :meth:`origins` says where each of those values came from. :meth:`save` leaves a value that came
    from the environment, and was not changed since, out of the file, so the file keeps its own.
    """

    def __init__(self, path: Path | None = None, token_path: Path | None = None) -> None:
        self.path = path or paths.config_dir() / SETTINGS_FILE
        self.token_path = token_path or auth.token_path()
        self._resolved: dict[str, resolver.Resolved[Any]] = {}

    def _qsettings(self) -> QSettings:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return QSettings(str(self.path), QSettings.Format.IniFormat)

    def load(self) -> AppSettings:
        qs = self._qsettings()
        raw = {key: qs.value(key) for key in qs.allKeys()}
        settings = AppSettings.from_strings(raw)
        resolved = {name: _resolve(name, _from_file(raw, name, settings)) for name in ENV_SETTINGS}
        self._resolved = resolved
        return replace(settings, **{name: r.value for name, r in resolved.items()})

    def origins(self) -> dict[str, resolver.Resolved[Any]]:
        """Where the environment-overridable settings of the last :meth:`load` came from."""
        return dict(self._resolved)

    def save(self, settings: AppSettings) -> None:
        qs = self._qsettings()
        for key, value in settings.to_strings().items():
            came = self._resolved.get(key)
            if came is not None and came.origin == "env" and getattr(settings, key) == came.value:
                continue  # the environment's value, unchanged: the file keeps its own
            qs.setValue(key, value)
        qs.sync()

    def token_setting(self) -> resolver.Resolved[str | None]:
        """The farm token in effect and where it came from (``LANFARM_TOKEN`` > the token file)."""
        return auth.resolve_token(saved=self.token_path)

    def token(self) -> str:
        """The farm token in effect: ``LANFARM_TOKEN``, else the token file (created on first use)."""
        return auth.load_or_create_token(self.token_path)

    def set_token(self, token: str) -> str:
        """Save ``token`` in the token file; return the token in effect (``LANFARM_TOKEN`` if set)."""
        token = token.strip()
        if len(token) < 16:
            raise ValueError("a farm token has at least 16 characters")
        auth.save_token(token, self.token_path)
        return self.token()

    def regenerate_token(self) -> str:
        """Save a new token in the token file; return the token in effect (``LANFARM_TOKEN`` if set)."""
        auth.save_token(auth.new_token(), self.token_path)
        return self.token()


#: The settings of app.ini that a ``LANFARM_*`` variable beats.
ENV_SETTINGS = ("models_dir", "discovery")


def _resolve(name: str, file: Any) -> resolver.Resolved[Any]:
    """``name`` resolved env > app.ini > default; a variable the app cannot use is ignored (and logged):
    a bad environment must not stop the app, just as a damaged file does not."""
    environments: tuple[Mapping[str, str] | None, ...] = (None, {})
    for env in environments:
        try:
            if name == "models_dir":
                return resolver.models_dir(
                    default=paths.default_models_dir(), file=file, env=env, file_label=SETTINGS_FILE
                )
            return resolver.discovery_enabled(file=file, env=env, file_label=SETTINGS_FILE)
        except resolver.SettingError as exc:
            log.warning("ignoring %s", exc)
    raise AssertionError("unreachable: without the environment a setting always resolves")


def _from_file(raw: Mapping[str, Any], name: str, parsed: AppSettings) -> Any:
    """The file's value of ``name`` when it holds a usable one (as :meth:`AppSettings.from_strings` read
    it), else None: a damaged value falls back to the environment or the default."""
    if raw.get(name) is None:
        return None
    try:
        _parse(raw[name], getattr(AppSettings(), name))
    except (ValueError, TypeError):
        return None
    return getattr(parsed, name)
