"""Where LAN Farm keeps its files (platformdirs); ``LANFARM_HOME`` moves them all (tests, portable installs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from farm.local import settings

APP = "lanfarm"


def _home() -> Path | None:
    home = os.environ.get("LANFARM_HOME")
    return Path(home) if home else None


def config_dir() -> Path:
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP, appauthor=False))


def data_dir() -> Path:
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP, appauthor=False))


def cache_dir() -> Path:
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP, appauthor=False))


def pictures_dir() -> Path:
    """Where results go unless the user picks a folder: ``Pictures/LAN Farm`` (under ``LANFARM_HOME``
    when that is set, so a test or portable install never writes into the user's own folders)."""
    home = _home()
    if home is not None:
        return home / "Pictures" / "LAN Farm"
    pictures = Path(platformdirs.user_pictures_dir())
    return (pictures if pictures.is_dir() else Path.home()) / "LAN Farm"


def default_models_dir() -> Path:
    """The models folder when nothing else is set: ``models/`` in the data folder."""
    return data_dir() / "models"


def models_dir() -> Path:
    """The models folder in effect without a CLI option or settings file: ``LANFARM_MODELS_DIR``, else
    :func:`default_models_dir` (:func:`farm.local.settings.models_dir` says where a value came from)."""
    return settings.models_dir(default=default_models_dir()).value
