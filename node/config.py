"""Node settings: CLI > env (``LANFARM_*``) > ``node.toml`` > defaults, resolved by :mod:`farm.local.settings`."""

from __future__ import annotations

import os
import re
import socket
import tomllib
import uuid
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, Any

from farm.core.protocol import DEFAULT_PORT
from farm.core.schedule import parse as parse_schedule
from farm.local.files import write_atomic
from farm.local.paths import config_dir, data_dir, models_dir
from farm.local.settings import Origin, Setting, SettingError, parse_bool, parse_list, parse_path, parse_str

CONFIG_FILE = "node.toml"
NODE_ID_FILE = "node-id"


class ConfigError(SettingError):
    """A setting has a value the node cannot use; the message names the setting and where it came from."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything ``lanfarm node`` runs with. ``slots`` None means one per GPU, else one."""

    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    name: str = ""
    slots: int | None = None
    device: str = ""  # the AI engines' device: cpu, cuda, cuda:N, mps ("" or auto: the best found)
    gpus: tuple[int, ...] = ()  # one slot per listed GPU (--gpu N, repeatable); (): one slot per GPU found
    models_dir: Path | None = None
    token_file: Path | None = None
    advertise: bool = True
    interfaces: tuple[str, ...] = ()
    simulate: bool = False
    simulate_slowdown: float = 1.0
    simulate_failures: bool = False
    max_upload_mb: float = 256.0
    blob_cache_mb: float = 4096.0
    models_budget_mb: float = 0.0  # disk for models pushed to this node; 0: as much as the disk has
    job_timeout: float = 1800.0
    result_retention: float = 3600.0
    shutdown_grace: float = 30.0
    cert: Path | None = None
    key: Path | None = None
    schedule: tuple[str, ...] = ()  # weekly windows it takes jobs in (farm.core.schedule); () : always
    timezone: str = ""  # the schedule's zone (IANA name, e.g. Europe/Berlin); "": this PC's
    on_pause: str = "finish"  # a running job when its owner pauses it: finish, or yield (handed back)
    on_schedule: str = "finish"  # ... when its schedule window closes
    on_nimby: str = "yield"  # ... when its user comes back or another program takes the GPU
    nimby: tuple[str, ...] = ()  # NIMBY signals that count: input (the PC's user), gpu (other programs)
    nimby_idle_minutes: float = 10.0  # idle time before a NIMBY-held node offers itself again
    nimby_gpu_mb: float = 1024.0  # other programs' GPU memory above which the GPU counts as taken
    metrics_open: bool = False  # GET /metrics without a signed request (for a Prometheus scraper)
    tls: bool = True  # serve https (a self-signed certificate made on first start, unless cert/key)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * (1 << 20))

    @property
    def blob_cache_bytes(self) -> int:
        return int(self.blob_cache_mb * (1 << 20))

    @property
    def models_budget_bytes(self) -> int | None:
        return int(self.models_budget_mb * (1 << 20)) or None

    @property
    def display_name(self) -> str:
        return self.name or socket.gethostname() or "lanfarm-node"

    @property
    def models_path(self) -> Path:
        return self.models_dir or models_dir()


def _positive(kind: Callable[[Any], Any], *, allow_zero: bool = True) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got {value!r}")
        out = kind(value)
        if out < 0 or (out == 0 and not allow_zero):
            raise ValueError(f"must be {'at least 0' if allow_zero else 'above 0'}, got {value!r}")
        return out

    return convert


def _device(value: Any) -> str:
    text = parse_str(value).strip().lower()
    if text in ("", "auto"):
        return ""
    kind, sep, index = text.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (sep and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"a device is auto, cpu, cuda, cuda:N or mps, got {value!r}")
    return text


def _schedule(value: Any) -> tuple[str, ...]:
    lines = [str(v) for v in value] if isinstance(value, list | tuple) else re.split(r"[;\n]", str(value))
    lines = [" ".join(line.split()) for line in lines if line.strip()]
    parse_schedule(lines)  # a bad line is refused here, by name (ScheduleError is a ValueError)
    return tuple(lines)


def _timezone(value: Any) -> str:
    text = parse_str(value).strip()
    if text:
        try:
            zoneinfo.ZoneInfo(text)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {text!r} (an IANA name like Europe/Berlin)") from None
    return text


def _on_return(value: Any) -> str:
    text = parse_str(value).strip().lower()
    if text not in ("finish", "yield"):
        raise ValueError(f"expected finish or yield, got {value!r}")
    return text


def _signals(value: Any) -> tuple[str, ...]:
    out = tuple(s.lower() for s in parse_list(value))
    unknown = [s for s in out if s not in ("input", "gpu")]
    if unknown:
        raise ValueError(f"NIMBY signals are input and gpu, got {unknown[0]!r}")
    return out


def _gpus(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list | tuple) else parse_list(value)
    out = []
    for item in items:
        if isinstance(item, bool) or not str(item).strip().isdigit():
            raise ValueError(f"GPU numbers are 0, 1, ..., got {item!r}")
        out.append(int(str(item).strip()))
    return tuple(out)


def _port(value: Any) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"a port is 0-65535, got {value!r}")
    return port


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "host": parse_str,
    "port": _port,
    "name": parse_str,
    "slots": _positive(int, allow_zero=False),
    "device": _device,
    "gpus": _gpus,
    "models_dir": parse_path,
    "token_file": parse_path,
    "advertise": parse_bool,
    "interfaces": parse_list,
    "simulate": parse_bool,
    "simulate_slowdown": _positive(float, allow_zero=False),
    "simulate_failures": parse_bool,
    "max_upload_mb": _positive(float, allow_zero=False),
    "blob_cache_mb": _positive(float, allow_zero=False),
    "models_budget_mb": _positive(float),
    "job_timeout": _positive(float),
    "result_retention": _positive(float),
    "shutdown_grace": _positive(float),
    "cert": parse_path,
    "key": parse_path,
    "schedule": _schedule,
    "timezone": _timezone,
    "on_pause": _on_return,
    "on_schedule": _on_return,
    "on_nimby": _on_return,
    "nimby": _signals,
    "nimby_idle_minutes": _positive(float),
    "nimby_gpu_mb": _positive(float),
    "metrics_open": parse_bool,
    "tls": parse_bool,
}
#: Every node setting, resolved by :func:`farm.local.settings.resolve` (``LANFARM_<NAME>``, ``--<name>``).
TABLE: tuple[Setting[Any], ...] = tuple(Setting(f.name, _CONVERT[f.name], f.default) for f in fields(NodeConfig))
SETTINGS = tuple(s.name for s in TABLE)
assert set(SETTINGS) == set(_CONVERT)


def resolve(
    cli: Mapping[str, Any], env: Mapping[str, str], file: Mapping[str, Any]
) -> tuple[NodeConfig, dict[str, Origin]]:
    """Merge the sources (CLI > env > file > default); return the config and where each value came from.

    ``cli`` holds only options the user gave (None means not given). Unknown file keys raise.
    """
    unknown = sorted(set(file) - set(SETTINGS))
    if unknown:
        raise ConfigError(f"{CONFIG_FILE}: unknown setting {unknown[0]!r} (known: {', '.join(SETTINGS)})")
    resolved = {}
    for setting in TABLE:
        try:
            resolved[setting.name] = setting.resolve(
                cli=cli.get(setting.name), env=env, file=file.get(setting.name), file_label=CONFIG_FILE
            )
        except SettingError as exc:
            raise ConfigError(str(exc)) from None
    config = NodeConfig(**{name: r.value for name, r in resolved.items()})
    if (config.cert is None) != (config.key is None):
        raise ConfigError("TLS needs both --cert and --key")
    if config.cert is not None and not config.tls:
        raise ConfigError("--cert/--key serve TLS, --no-tls (tls = false) serves plain HTTP: give one")
    return config, {name: r.origin for name, r in resolved.items()}


def read_file(path: Path) -> dict[str, Any]:
    """The TOML settings file; empty when missing. A ``[node]`` table is accepted too."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    node = data.get("node")
    return dict(node) if isinstance(node, dict) else data


def default_file() -> Path:
    return config_dir() / CONFIG_FILE


def load(
    cli: Mapping[str, Any], *, config_file: Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[NodeConfig, dict[str, Origin]]:
    return resolve(cli, os.environ if env is None else env, read_file(config_file or default_file()))


def describe(config: NodeConfig, origin: Mapping[str, str]) -> str:
    """TOML a person can paste into node.toml, each line saying where its value came from."""
    lines = []
    for name in SETTINGS:
        value = getattr(config, name)
        if name == "name" and not value:  # say the name it will use, not ""
            lines.append(f"{'name = ' + _quote(config.display_name):<44} # default (this PC's host name)")
            continue
        if name == "device" and not value:
            lines.append(f"{'# device = (auto: cuda, else mps, else cpu)':<44} # {origin.get(name, 'default')}")
            continue
        if value is None:
            text = f"# {name} = (unset)"
        elif isinstance(value, bool):
            text = f"{name} = {'true' if value else 'false'}"
        elif isinstance(value, int | float):
            text = f"{name} = {value}"
        elif isinstance(value, tuple):
            text = f"{name} = [{', '.join(str(v) if isinstance(v, int) else _quote(v) for v in value)}]"
        else:
            text = f"{name} = {_quote(str(value))}"
        lines.append(f"{text:<44} # {origin.get(name, 'default')}")
    return "\n".join(lines)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class NodeIdClaim:
    """This process's node id, held while it runs: the first id of this home that no running node holds.

    Two nodes started from one home (on two ports, say) get two ids, so neither hides the other in
    the farm; a restarted node gets its own id back. The hold is an exclusive lock on a file beside the
    id, released when the process ends (even killed), so nothing stale is left.
    """

    def __init__(self, node_id: str, handle: IO[str] | None) -> None:
        self.node_id = node_id
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing the file drops the lock
            self._handle = None


def claim_node_id(folder: Path | None = None, *, most: int = 64) -> NodeIdClaim:
    """Claim the first free node id of this home (see :class:`NodeIdClaim`)."""
    folder = folder or data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: one node per home, as before
        return NodeIdClaim(load_or_create_node_id(folder), None)
    for n in range(most):
        suffix = "" if n == 0 else f"-{n}"
        handle = open(folder / f"{NODE_ID_FILE}{suffix}.lock", "a+")  # noqa: SIM115 - held for the process
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return NodeIdClaim(load_or_create_node_id(folder, name=f"{NODE_ID_FILE}{suffix}"), handle)
    raise ConfigError(f"{most} nodes already run from {folder}; give this one its own LANFARM_HOME")


def load_or_create_node_id(folder: Path | None = None, *, name: str = "") -> str:
    """A stable id for this node, created on first start and kept in the data folder."""
    path = (folder or data_dir()) / (name or NODE_ID_FILE)
    try:
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text
    except FileNotFoundError:
        pass
    node_id = uuid.uuid4().hex[:16]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(path, node_id.encode() + b"\n")
    except FileExistsError:  # another process won the race; use its id
        return path.read_text(encoding="utf-8").strip()
    return node_id
