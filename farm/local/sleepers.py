"""The farm's memory of nodes that can be woken: each node seen with MAC addresses, where it was last, and
how it left (``timeout``: it went silent, as a PC going to sleep does; ``goodbye``: it was stopped).

A node that went silent shows as "asleep" rather than gone, and Wake-on-LAN can bring it back. One
small JSON file in the data folder, written atomically. ``LANFARM_WAKE_ON_LAN=off`` stops every packet.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from farm.local.files import write_atomic
from farm.local.paths import data_dir
from farm.local.settings import parse_bool

FILE = "sleepers.json"
WAKE_ENV = "LANFARM_WAKE_ON_LAN"


@dataclass(frozen=True, slots=True)
class Sleeper:
    id: str
    name: str
    address: str  # host:port where it last answered
    macs: tuple[str, ...]
    last_seen: float
    left: str = ""  # "" while seen online; "timeout" (asleep?) or "goodbye" (stopped) once it left
    waking_until: float = 0.0  # a magic packet was sent: "waking" until then (UNIX seconds), unless it answers

    @property
    def host(self) -> str:
        return self.address.rsplit(":", 1)[0].strip("[]")


def wake_on_lan_enabled() -> bool:
    """Whether the farm may send magic packets (``LANFARM_WAKE_ON_LAN``, default on)."""
    value = os.environ.get(WAKE_ENV, "").strip()
    return parse_bool(value) if value else True


class SleeperBook:
    """Known wakeable nodes, by id; every change is saved at once."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or data_dir() / FILE
        self._nodes: dict[str, Sleeper] = self._load()

    def _load(self) -> dict[str, Sleeper]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {d["id"]: Sleeper(**{**d, "macs": tuple(d["macs"])}) for d in data}
        except (OSError, ValueError, TypeError, KeyError):
            return {}

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps([asdict(s) for s in self._nodes.values()], indent=1).encode()
        write_atomic(self.path, body, overwrite=True)

    def all(self) -> list[Sleeper]:
        return sorted(self._nodes.values(), key=lambda s: (s.name, s.id))

    def find(self, name_or_id: str) -> Sleeper | None:
        return self._nodes.get(name_or_id) or next((s for s in self.all() if s.name == name_or_id), None)

    def seen(self, node_id: str, name: str, address: str, macs: tuple[str, ...], now: float | None = None) -> None:
        """The node answered at ``address``: remember it (nothing is kept for a node without MACs)."""
        if not macs:
            return
        new = Sleeper(node_id, name, address, macs, time.time() if now is None else now)
        if self._nodes.get(node_id) != new:
            self._nodes[node_id] = new
            self._save()

    def waking(self, node_id: str, until: float) -> None:
        known = self._nodes.get(node_id)
        if known is not None:
            self._nodes[node_id] = replace(known, waking_until=until)
            self._save()

    def left(self, node_id: str, how: str) -> None:
        known = self._nodes.get(node_id)
        if known is not None and known.left != how:
            self._nodes[node_id] = replace(known, left=how)
            self._save()
