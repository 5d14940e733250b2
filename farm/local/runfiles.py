"""Which nodes run on this PC: each ``lanfarm node`` leaves a small file while it runs (its id, port, pid),
so that ``lanfarm node pause`` and the app's tray find it. Never the token (that comes from the token file)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from farm.errors import FarmError
from farm.local.files import write_atomic
from farm.local.paths import data_dir

FOLDER = "running"


class NoLocalNode(FarmError):
    """No node runs on this PC (or several do and the caller must pick one by port)."""


@dataclass(frozen=True, slots=True)
class RunningNode:
    """A node process on this PC: ``url`` is where this PC reaches it (loopback when it listens everywhere)."""

    id: str
    name: str
    pid: int
    port: int
    url: str

    def to_json(self) -> bytes:
        return json.dumps(asdict(self)).encode()


def folder() -> Path:
    return data_dir() / FOLDER


def local_url(scheme: str, host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::", "localhost"):
        host = "127.0.0.1"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def record(node: RunningNode) -> Path:
    """Say that ``node`` runs (until :func:`forget`); one file per node id."""
    path = folder() / f"{node.id}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, node.to_json(), overwrite=True)
    return path


def forget(path: Path) -> None:
    path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there; a dead one fails to connect instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_nodes() -> list[RunningNode]:
    """The nodes running on this PC now, by port; files left by a killed node are removed."""
    found = []
    try:
        paths = sorted(folder().glob("*.json"))
    except OSError:
        return []
    for path in paths:
        try:
            node = RunningNode(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue
        if _alive(node.pid):
            found.append(node)
        else:
            path.unlink(missing_ok=True)
    return sorted(found, key=lambda n: n.port)


def pick(port: int | None = None) -> RunningNode:
    """The node on this PC to talk to: the only one, or the one on ``port``. Raises NoLocalNode."""
    nodes = running_nodes()
    if port:
        nodes = [n for n in nodes if n.port == port]
        if not nodes:
            raise NoLocalNode(f"no node of this PC listens on port {port} (start one with `lanfarm node`)")
    if not nodes:
        raise NoLocalNode("no node runs on this PC (start one with `lanfarm node`)")
    if len(nodes) > 1:
        ports = ", ".join(str(n.port) for n in nodes)
        raise NoLocalNode(f"{len(nodes)} nodes run on this PC (ports {ports}); pick one with --port")
    return nodes[0]
