"""Node addresses (``host:port``) and the saved list of peers for LANs where multicast is blocked."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from farm.errors import FarmError
from farm.imageio import write_atomic
from farm.paths import config_dir

DEFAULT_PORT = 7788


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """Where a node listens. ``str()`` is ``host:port`` (``[v6]:port`` for IPv6)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self}"

    @classmethod
    def parse(cls, text: str, default_port: int = DEFAULT_PORT) -> Address:
        """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` (``http://`` allowed); FarmError otherwise."""
        text = text.strip().removeprefix("http://").rstrip("/")
        if text.startswith("["):
            host, sep, rest = text[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise FarmError(f"{text!r}: expected [IPv6]:PORT")
            port_text = rest[1:]
        elif text.count(":") > 1:  # a bare IPv6 address
            host, port_text = text, ""
        else:
            host, _, port_text = text.partition(":")
        if not host:
            raise FarmError(f"{text!r}: no host")
        try:
            port = int(port_text) if port_text else default_port
        except ValueError:
            raise FarmError(f"{text!r}: port {port_text!r} is not a number") from None
        if not 0 < port < 65536:
            raise FarmError(f"{text!r}: port {port} is out of range")
        return cls(host, port)


def peers_path() -> Path:
    return config_dir() / "peers.json"


def load_peers(path: Path | None = None) -> list[Address]:
    """The saved peers (none if the file is missing); FarmError if the file is not a peer list."""
    path = path or peers_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise FarmError(f"{path}: cannot read the peer list: {exc}") from None
    items = data.get("peers") if isinstance(data, dict) else None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise FarmError(f"{path}: expected {{\"peers\": [\"host:port\", ...]}}")
    return [Address.parse(item) for item in items]


def save_peers(peers: list[Address], path: Path | None = None) -> None:
    path = path or peers_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"peers": [str(p) for p in dict.fromkeys(peers)]}, indent=2) + "\n"
    write_atomic(path, body.encode(), overwrite=True)


def add_peer(address: Address, path: Path | None = None) -> bool:
    """Save ``address``; False if it was already saved."""
    peers = load_peers(path)
    if address in peers:
        return False
    save_peers([*peers, address], path)
    return True


def remove_peer(address: Address, path: Path | None = None) -> bool:
    """Forget ``address``; False if it was not saved."""
    peers = load_peers(path)
    if address not in peers:
        return False
    save_peers([p for p in peers if p != address], path)
    return True
