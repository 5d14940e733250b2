"""Sending Wake-on-LAN magic packets (UDP broadcast to port 9 on the node's subnet, and to its last address).

Only to LAN addresses: a node last seen on loopback is this PC and is never "woken" (so nothing is
sent by tests that run nodes on 127.0.0.1). Never raises: a packet that cannot be sent is logged.
"""

from __future__ import annotations

import logging
import socket

from farm.core.wol import magic_packet, targets
from farm.local.sleepers import Sleeper

log = logging.getLogger(__name__)


def send_wake(sleeper: Sleeper) -> list[tuple[str, int]]:
    """Send a magic packet for each of the node's MACs; returns where they went (empty: nowhere to send)."""
    where = targets(sleeper.host)
    if not where:
        return []
    sent: list[tuple[str, int]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        for mac in sleeper.macs:
            try:
                packet = magic_packet(mac)
            except ValueError as exc:
                log.warning("%s: %s", sleeper.name, exc)
                continue
            for target in where:
                try:
                    sock.sendto(packet, target)
                    sent.append(target)
                except OSError as exc:
                    log.warning("Wake-on-LAN for %s to %s:%d failed: %s", sleeper.name, *target, exc)
    return sent
