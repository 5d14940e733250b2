"""Pinned node certificates: which TLS certificate (SHA-256) each node of the farm proved to be its own.

One private JSON file (owner-only, like the token) beside the peers: ``{"pins": {NODE_ID: {"name": ...,
"address": ..., "fingerprint": ...}}}``. A node is pinned on first contact, once it proved it holds the
farm token bound to its certificate (farm.runtime.trust); a later, different certificate is refused
until the user trusts it (``lanfarm nodes trust NAME``, the app's Trust button), which drops the pin.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from farm.errors import FarmError
from farm.local.files import write_atomic
from farm.local.paths import config_dir

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Pin:
    """A node's pinned certificate."""

    node_id: str
    name: str
    address: str
    fingerprint: str

    def matches(self, text: str) -> bool:
        """Whether ``text`` names this node: its name, id (or a prefix of 6+), or address."""
        text = text.strip()
        return (
            text.lower() == self.name.lower()
            or text == self.address
            or (len(text) >= 6 and self.node_id.startswith(text))
        )


def pins_path() -> Path:
    return config_dir() / "pins.json"


def load_pins(path: Path | None = None) -> dict[str, Pin]:
    """The pins by node id (none if the file is missing); FarmError if the file is not a pin list."""
    path = path or pins_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FarmError(f"{path}: cannot read the pinned certificates: {exc}") from None
    items = data.get("pins") if isinstance(data, dict) else None
    if not isinstance(items, dict):
        raise FarmError(f'{path}: expected {{"pins": {{NODE_ID: {{"fingerprint": ...}}}}}}')
    pins = {}
    for node_id, item in items.items():
        fp = str(item.get("fingerprint", "")).lower() if isinstance(item, dict) else ""
        if not _FINGERPRINT.fullmatch(fp):
            raise FarmError(f"{path}: node {node_id}: {fp!r} is not a SHA-256 fingerprint")
        pins[node_id] = Pin(node_id, str(item.get("name") or node_id), str(item.get("address") or ""), fp)
    return pins


def save_pins(pins: dict[str, Pin], path: Path | None = None) -> None:
    """Write the pins atomically, readable by this user only (the folder is made private if new)."""
    path = path or pins_path()
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    body = {
        "pins": {
            p.node_id: {"name": p.name, "address": p.address, "fingerprint": p.fingerprint}
            for p in sorted(pins.values(), key=lambda p: p.node_id)
        }
    }
    write_atomic(path, (json.dumps(body, indent=2) + "\n").encode(), overwrite=True, mode=0o600)


def colons(fingerprint: str, groups: int = 8) -> str:
    """A fingerprint for people: its first ``groups`` bytes as ``AB:CD:...`` (0: all of it)."""
    pairs = [fingerprint[i : i + 2].upper() for i in range(0, len(fingerprint), 2)]
    shown = pairs if groups <= 0 else pairs[:groups]
    return ":".join(shown) + ("…" if 0 < groups < len(pairs) else "")
