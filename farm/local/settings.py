"""One way to resolve a setting: CLI > ``LANFARM_*`` environment > settings file > default.

Every command, the node and the app look their settings up through :func:`resolve`, which also says
where each value came from (``cli``, ``env``, ``file`` or ``default``), so ``lanfarm node
--print-config`` and the app can tell a person why a value is what it is.

A source that is ``None`` was not given; an environment variable that is unset or blank was not given
either (``LANFARM_TOKEN= lanfarm node`` is the same as no ``LANFARM_TOKEN``). A source may be
:class:`Deferred` so that it is only read when no stronger source is given (a token file is not
opened when ``LANFARM_TOKEN`` is set).

The readers below (:func:`models_dir`, :func:`discovery_enabled`, :func:`interfaces`) are the one place
their variables are read; the farm token's reader is :func:`farm.local.token.resolve_token`. This module
imports nothing of the project but :mod:`farm.errors`, so every other module may use it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from farm.errors import FarmError

T = TypeVar("T")
Origin = Literal["cli", "env", "file", "default"]
ORIGINS: tuple[Origin, ...] = ("cli", "env", "file", "default")

ENV_PREFIX = "LANFARM_"
MODELS_DIR_ENV = "LANFARM_MODELS_DIR"
DISCOVERY_ENV = "LANFARM_DISCOVERY"
INTERFACES_ENV = "LANFARM_INTERFACES"


class SettingError(FarmError, ValueError):
    """A setting has a value that cannot be used; the message names the setting and where it came from."""


@dataclass(frozen=True, slots=True)
class Deferred:
    """A source read only when it is needed: ``read()`` returns the raw value, or None for "not given"."""

    read: Callable[[], Any]


@dataclass(frozen=True, slots=True)
class Resolved(Generic[T]):
    """A setting's value and where it came from: ``origin`` is the layer, ``source`` names it for a person
    (``--port``, ``LANFARM_PORT``, ``node.toml port``, ``default``)."""

    name: str
    value: T
    origin: Origin
    source: str


def env_name(name: str) -> str:
    """The environment variable of a setting: ``models_dir`` -> ``LANFARM_MODELS_DIR``."""
    return ENV_PREFIX + name.upper()


def flag_name(name: str) -> str:
    """The command-line option of a setting: ``models_dir`` -> ``--models-dir``."""
    return "--" + name.replace("_", "-")


def resolve(
    name: str,
    *,
    default: T,
    parse: Callable[[Any], T],
    cli: Any = None,
    env: Mapping[str, str] | None = None,
    file: Any = None,
    env_var: str | None = None,
    flag: str | None = None,
    file_label: str = "settings file",
    file_source: str | None = None,
) -> Resolved[T]:
    """The first given source of CLI > environment > file, parsed; else ``default`` (not parsed).

    ``env`` is the environment to read ``env_var`` (default ``LANFARM_<NAME>``) from, ``os.environ``
    when None. ``parse`` turns a raw value into the setting's type and raises ValueError/TypeError on a
    bad one; that becomes a :class:`SettingError` naming the source (``--flag``, the variable, or
    ``<file_label> <name>``, or ``file_source``). The first given source decides: a bad CLI value is an
    error even when the environment holds a good one.
    """
    environ = os.environ if env is None else env
    var = env_var or env_name(name)
    env_raw = environ.get(var)
    if env_raw is not None and not env_raw.strip():
        env_raw = None
    layers: tuple[tuple[Origin, str, Any], ...] = (
        ("cli", flag or flag_name(name), cli),
        ("env", var, env_raw),
        ("file", file_source or f"{file_label} {name}", file),
    )
    for origin, source, raw in layers:
        try:
            if isinstance(raw, Deferred):
                raw = raw.read()
            if raw is None:
                continue
            return Resolved(name, parse(raw), origin, source)
        except (TypeError, ValueError) as exc:
            if isinstance(exc, SettingError):
                raise
            raise SettingError(f"{source}: {exc}") from None
    return Resolved(name, default, "default", "default")


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """A declared setting: its name, parser and default; ``env_var`` and ``flag`` default to
    ``LANFARM_<NAME>`` and ``--<name>``. A table of these is a program's settings (``node.config``)."""

    name: str
    parse: Callable[[Any], T]
    default: T
    env_var: str = ""
    flag: str = ""

    def resolve(
        self,
        *,
        cli: Any = None,
        env: Mapping[str, str] | None = None,
        file: Any = None,
        file_label: str = "settings file",
    ) -> Resolved[T]:
        return resolve(
            self.name,
            default=self.default,
            parse=self.parse,
            cli=cli,
            env=env,
            file=file,
            env_var=self.env_var or None,
            flag=self.flag or None,
            file_label=file_label,
        )


# --- parsers: raw text (env, ini) or typed values (CLI, TOML) -> the setting's type --------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    low = str(value).strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"expected on/off (true/false, yes/no, 1/0), got {value!r}")


def parse_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected text, got {value!r}")
    return value


def parse_path(value: Any) -> Path:
    if isinstance(value, Path):
        return value.expanduser()
    text = parse_str(value).strip()
    if not text:
        raise ValueError("expected a path, got nothing")
    return Path(text).expanduser()


def parse_list(value: Any) -> tuple[str, ...]:
    """A comma list (``"a, b"``) or a sequence of texts, blanks dropped."""
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return tuple(str(i).strip() for i in items if str(i).strip())


# --- the settings shared by every command, the node and the app ------------------------------------------


def models_dir(
    cli: Path | None = None,
    *,
    default: Path,
    file: Any = None,
    env: Mapping[str, str] | None = None,
    file_label: str = "settings file",
) -> Resolved[Path]:
    """The models folder: ``--models-dir`` > ``LANFARM_MODELS_DIR`` > the settings file > ``default``
    (:func:`farm.local.paths.default_models_dir`; :func:`farm.local.paths.models_dir` is this without a
    CLI option or file)."""
    return resolve(
        "models_dir",
        default=default,
        parse=parse_path,
        cli=cli,
        env=env,
        file=file,
        env_var=MODELS_DIR_ENV,
        file_label=file_label,
    )


def discovery_enabled(
    cli: bool | None = None,
    *,
    file: Any = None,
    env: Mapping[str, str] | None = None,
    file_label: str = "settings file",
) -> Resolved[bool]:
    """Whether mDNS discovery is on: the CLI (``--no-discovery`` gives False; None: not given) >
    ``LANFARM_DISCOVERY`` (on/off, 1/0, true/false, yes/no) > the settings file > on."""
    return resolve(
        "discovery",
        default=True,
        parse=parse_bool,
        cli=cli,
        env=env,
        file=file,
        env_var=DISCOVERY_ENV,
        flag="--no-discovery",
        file_label=file_label,
    )


def interfaces(
    cli: Sequence[str] | None = None,
    *,
    file: Any = None,
    env: Mapping[str, str] | None = None,
    file_label: str = "settings file",
) -> Resolved[tuple[str, ...]]:
    """Interface addresses mDNS is confined to: ``--interface`` (repeatable; empty: not given) >
    ``LANFARM_INTERFACES`` (a comma list) > the settings file > () (all interfaces)."""
    return resolve(
        "interfaces",
        default=(),
        parse=parse_list,
        cli=tuple(cli) if cli else None,
        env=env,
        file=file,
        env_var=INTERFACES_ENV,
        flag="--interface",
        file_label=file_label,
    )


__all__ = [
    "DISCOVERY_ENV",
    "INTERFACES_ENV",
    "MODELS_DIR_ENV",
    "ORIGINS",
    "Deferred",
    "Origin",
    "Resolved",
    "Setting",
    "SettingError",
    "discovery_enabled",
    "env_name",
    "flag_name",
    "interfaces",
    "models_dir",
    "parse_bool",
    "parse_list",
    "parse_path",
    "parse_str",
    "resolve",
]
