"""Where LAN Farm keeps its files (platformdirs); ``LANFARM_HOME`` moves them all (tests, portable installs)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

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


def models_dir() -> Path:
    """Default models folder; ``LANFARM_MODELS_DIR`` or a setting may point elsewhere."""
    env = os.environ.get("LANFARM_MODELS_DIR")
    return Path(env) if env else data_dir() / "models"
