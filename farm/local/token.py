"""The farm token: one random secret shared by the apps and nodes of a farm."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from farm.local.files import write_atomic
from farm.local.paths import config_dir

TOKEN_ENV = "LANFARM_TOKEN"


def token_path() -> Path:
    return config_dir() / "farm-token"


def new_token() -> str:
    return secrets.token_urlsafe(32)


def read_token(path: Path) -> str:
    """The token stored in ``path`` (surrounding whitespace ignored); ValueError if empty."""
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ValueError(f"{path} holds no farm token")
    return token


def load_or_create_token(path: Path | None = None) -> str:
    """``LANFARM_TOKEN`` if set, else the token file, created (owner-only) with a new token on first use."""
    env = os.environ.get(TOKEN_ENV)
    if env and path is None:
        return env.strip()
    path = path or token_path()
    if path.exists():
        return read_token(path)
    return save_token(new_token(), path)


def find_token(token_file: Path | None = None) -> str | None:
    """``token_file``, else ``LANFARM_TOKEN``, else the saved token; None when there is none (never creates one)."""
    if token_file is not None:
        return read_token(token_file)
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    return read_token(token_path()) if token_path().exists() else None


def save_token(token: str, path: Path | None = None) -> str:
    path = path or token_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, token.encode() + b"\n", overwrite=True)
    path.chmod(0o600)
    return token


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the token."""
    return hmac.compare_digest(given.encode(), expected.encode())
