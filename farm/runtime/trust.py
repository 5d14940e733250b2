"""Which nodes the farm trusts: pinned certificates (farm.local.pins) and the addresses that proved the token.

The farm sends work, and signed requests, only to a node that proved it holds the farm token bound to
the certificate it serves (``GET /v1/identity``, farm.core.signing.identity_proof). The first proof
pins that certificate; from then on every connection must show it (``aiohttp.Fingerprint``), and a
node showing another one is refused until the user trusts it (:meth:`Trust.trust`). The HTTP side is
in farm.runtime.client; this module holds the decisions and the file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from farm.errors import FarmError
from farm.local.pins import Pin, colons, load_pins, pins_path, save_pins

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    """A node that showed another certificate than the one pinned for it."""

    node_id: str
    name: str
    address: str
    pinned: str
    offered: str

    @property
    def message(self) -> str:
        return (
            f"{self.name} at {self.address} shows a new TLS certificate (SHA-256 {colons(self.offered)}), "
            f"not the one pinned for it ({colons(self.pinned)}): refused. If you reinstalled that node or "
            f"deleted its certificate, trust the new one with `lanfarm nodes trust {self.name}` (or Trust in "
            "the app's Nodes tab); otherwise another machine may be posing as it"
        )


class Trust:
    """Pins (loaded from ``path`` on first use, saved at once when one is added) and, for this run,
    which base URLs proved the farm token with which certificate ("" for a plain-HTTP node)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or pins_path()
        self._pins: dict[str, Pin] | None = None
        self._stamp: tuple[int, int] | None = None  # the file's (mtime_ns, size) when read
        self._proven: dict[str, tuple[str, str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.refused: dict[str, Refusal] = {}

    def pins(self) -> dict[str, Pin]:
        """The pins, read again when the file changed (`lanfarm nodes trust` while the app runs)."""
        stamp = _stamp(self.path)
        if self._pins is None or stamp != self._stamp:
            try:
                self._pins = load_pins(self.path)
            except FarmError as exc:  # a damaged file pins nothing; nothing new is pinned over it
                log.warning("%s", exc)
                self._pins = {}
            self._stamp = stamp
        return self._pins

    async def _save(self, pins: dict[str, Pin]) -> None:
        await asyncio.to_thread(save_pins, dict(pins), self.path)
        self._pins, self._stamp = pins, _stamp(self.path)

    def proven(self, base_url: str) -> str | None:
        """The certificate fingerprint ``base_url`` proved the token with this run; None if not yet."""
        found = self._proven.get(base_url)
        return found[1] if found else None

    def lock(self, base_url: str) -> asyncio.Lock:
        """One proof at a time per address (many requests may start at once)."""
        return self._locks.setdefault(base_url, asyncio.Lock())

    def check(self, node_id: str, fingerprint: str, address: str) -> Refusal | None:
        """Whether the certificate ``fingerprint`` that node ``node_id`` names may be used ("" : plain)."""
        pin = self.pins().get(node_id)
        if pin is None or not fingerprint or pin.fingerprint == fingerprint.lower():
            self.refused.pop(node_id, None)
            return None
        refusal = Refusal(node_id, pin.name, address, pin.fingerprint, fingerprint.lower())
        if node_id not in self.refused:
            log.warning("%s", refusal.message)
        self.refused[node_id] = refusal
        return refusal

    async def accept(self, base_url: str, node_id: str, name: str, address: str, fingerprint: str) -> None:
        """``base_url`` proved the token for ``fingerprint``: use it; pin it if the node had no pin."""
        self._proven[base_url] = (node_id, fingerprint.lower())
        pins = self.pins()
        pin = pins.get(node_id)
        if not fingerprint or (pin is not None and (pin.name, pin.address) == (name, address)):
            return
        if pin is not None and pin.fingerprint != fingerprint.lower():
            return  # check() refuses it; never replaced without the user
        if pin is None:
            log.info("pinned the certificate of %s at %s: %s", name, address, colons(fingerprint, 0))
        pins[node_id] = Pin(node_id, name, address, fingerprint.lower())
        await self._save(pins)

    def forget(self, base_url: str) -> None:
        """The connection to ``base_url`` showed another certificate: prove again before more work."""
        self._proven.pop(base_url, None)

    def find(self, text: str) -> list[Pin | Refusal]:
        """Pins and refusals whose node ``text`` names (name, id prefix or address)."""
        found: list[Pin | Refusal] = [p for p in self.pins().values() if p.matches(text)]
        found += [r for r in self.refused.values() if text in (r.name, r.address) or r.node_id.startswith(text)]
        return found

    async def trust(self, text: str) -> list[str]:
        """Trust whatever certificate the node ``text`` names shows next: drop its pin (the next proof pins
        the new one). Returns the node ids whose pins were dropped (none: no such node)."""
        ids = sorted({item.node_id for item in self.find(text)})
        pins = self.pins()
        for node_id in ids:
            pins.pop(node_id, None)
            self.refused.pop(node_id, None)
            self._proven = {url: v for url, v in self._proven.items() if v[0] != node_id}
        if ids:
            await self._save(pins)
        return ids


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size
