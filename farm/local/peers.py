"""Node addresses (``host:port``) and the saved list of peers for LANs where multicast is blocked."""

from __future__ import annotations

import json
from pathlib import Path

from farm.core.address import Address
from farm.errors import FarmError
from farm.local.files import write_atomic
from farm.local.paths import config_dir


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
        raise FarmError(f'{path}: expected {{"peers": ["host:port", ...]}}')
    return [Address.parse(item) for item in items]


def save_peers(peers: list[Address], path: Path | None = None) -> None:
    path = path or peers_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"peers": [p.text for p in dict.fromkeys(peers)]}, indent=2) + "\n"
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
