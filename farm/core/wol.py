"""Wake-on-LAN, purely: the magic packet (6 x 0xFF, then the MAC 16 times) and where it goes."""

from __future__ import annotations

import ipaddress
import re

PORT = 9  # the discard port, where network cards listen for magic packets
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")


def parse_mac(text: str) -> bytes:
    """``aa:bb:cc:dd:ee:ff`` (or with ``-``, or bare hex) -> 6 bytes; ValueError if it is not a MAC."""
    low = text.strip().lower()
    if not _MAC.match(low):
        raise ValueError(f"{text!r} is not a MAC address like aa:bb:cc:dd:ee:ff")
    return bytes.fromhex(low.replace(":", "").replace("-", ""))


def magic_packet(mac: str) -> bytes:
    return b"\xff" * 6 + parse_mac(mac) * 16


def targets(address: str, prefix: int = 24) -> list[tuple[str, int]]:
    """Where a magic packet for a node last seen at ``address`` goes: its subnet's broadcast, then the
    address itself (a switch or router that still knows the MAC delivers it). None for loopback or
    anything that is not an IPv4 LAN address: a node on this PC cannot be asleep."""
    try:
        ip = ipaddress.IPv4Address(address)
    except ValueError:
        return []
    if ip.is_loopback or ip.is_multicast or ip.is_unspecified:
        return []
    network = ipaddress.IPv4Network(f"{ip}/{prefix}", strict=False)
    return [(str(network.broadcast_address), PORT), (str(ip), PORT)]
