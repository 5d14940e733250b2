"""The farm token: one random secret shared by the apps and nodes of a farm.

Looked up one way everywhere (:func:`resolve_token`): ``--token-file`` > ``LANFARM_TOKEN`` > the saved
token file (:func:`token_path`, or a ``token_file`` from a settings file, which takes its place).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path

from farm.local.files import write_atomic
from farm.local.paths import config_dir
from farm.local.settings import Deferred, Origin, Resolved, resolve

TOKEN_ENV = "LANFARM_TOKEN"
TOKEN_FILE_ENV = "LANFARM_TOKEN_FILE"


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


def _token_text(value: object) -> str:
    token = str(value).strip()
    if not token:
        raise ValueError("no farm token")
    return token


def resolve_token(
    token_file: Path | None = None,
    *,
    origin: Origin = "cli",
    saved: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved[str | None]:
    """The farm token in effect and where it came from; value None when there is none (never creates one).

    ``--token-file`` > ``LANFARM_TOKEN`` > the saved token file ``saved`` (default :func:`token_path`).
    ``token_file`` is a ``--token-file`` unless ``origin`` says it came from elsewhere: ``"env"``
    (``LANFARM_TOKEN_FILE``: below ``LANFARM_TOKEN``) or ``"file"`` (a settings file's ``token_file``:
    below ``LANFARM_TOKEN``); either takes the saved token file's place. Files are read only when they
    decide; an empty one is a ValueError.
    """
    saved_path = saved or token_path()
    given = Deferred(lambda: read_token(token_file)) if token_file is not None else None

    def read_saved() -> str | None:
        return read_token(saved_path) if saved_path.exists() else None

    in_file_layer = given is not None and origin in ("env", "file")
    token = resolve(
        "token",
        default=None,
        parse=_token_text,
        cli=given if origin == "cli" else None,
        env=env,
        file=given if in_file_layer else Deferred(read_saved),
        env_var=TOKEN_ENV,
        flag="--token-file",
        file_source=f"token file {token_file if in_file_layer else saved_path}",
    )
    if in_file_layer and origin == "env" and token.origin == "file":
        return Resolved(token.name, token.value, "env", f"{TOKEN_FILE_ENV} ({token_file})")
    return token


def find_token(token_file: Path | None = None) -> str | None:
    """``token_file``, else ``LANFARM_TOKEN``, else the saved token; None when there is none (never creates one)."""
    return resolve_token(token_file).value


def load_or_create_token(
    path: Path | None = None, *, token_file: Path | None = None, token_file_origin: Origin = "cli"
) -> str:
    """The token in effect (:func:`resolve_token`: ``token_file`` > ``LANFARM_TOKEN`` > the token file
    ``path``, default :func:`token_path`); without one a new token is saved (owner-only) in ``path``."""
    token = resolve_token(token_file, origin=token_file_origin, saved=path).value
    return token if token is not None else save_token(new_token(), path)


def save_token(token: str, path: Path | None = None) -> str:
    path = path or token_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new config folder is private
    write_atomic(path, token.encode() + b"\n", overwrite=True, mode=0o600)  # never readable by others
    return token


def tokens_equal(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the token."""
    return hmac.compare_digest(given.encode(), expected.encode())
