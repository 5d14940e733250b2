"""This PC's network cards' MAC addresses (for Wake-on-LAN): read once, never raises."""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_NONE = "00:00:00:00:00:00"


def mac_addresses(sys_net: Path = Path("/sys/class/net")) -> tuple[str, ...]:
    """Lower-case ``aa:bb:cc:dd:ee:ff`` of each physical-looking card (loopback and virtual ones left out)."""
    found: list[str] = []
    if os.name == "posix" and sys_net.is_dir():
        for card in sorted(sys_net.iterdir()):
            if card.name == "lo" or (card / "bridge").exists() or card.name.startswith(("veth", "docker", "virbr")):
                continue
            try:
                mac = (card / "address").read_text(encoding="ascii").strip().lower()
            except OSError:
                continue
            if _MAC.match(mac) and mac != _NONE and mac not in found:
                found.append(mac)
        return tuple(found)
    node = uuid.getnode()
    if node >> 40 & 1:  # the multicast bit: a random number, not a card
        return ()
    return (":".join(f"{node >> s & 0xFF:02x}" for s in range(40, -8, -8)),)
