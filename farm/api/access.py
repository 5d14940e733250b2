"""Who may call which API: this PC always; other addresses only as ``lanfarm serve`` was told.

The native API (``/farm/v1``) takes another address's request only with the farm token
(``Authorization: Bearer <token>``, the nodes' scheme). IOPaint's clients cannot send a token, so
IOPaint's routes (and its socket.io) answer another address only when it is in the allow-list of
addresses or networks given with ``--allow``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from farm.local.token import tokens_equal

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(texts: Iterable[str]) -> tuple[IpNetwork, ...]:
    """``192.168.1.20``, ``192.168.1.0/24`` or ``fd00::/8`` -> networks; ValueError names a bad one."""
    out = []
    for text in texts:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(ipaddress.ip_network(part, strict=False))
            except ValueError:
                raise ValueError(f"--allow {part!r}: not an IP address or network (e.g. 192.168.1.0/24)") from None
    return tuple(out)


def _address(remote: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not remote:
        return None
    try:
        addr = ipaddress.ip_address(remote.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def is_this_pc(remote: str | None) -> bool:
    """A loopback address (127.0.0.0/8, ::1, ``localhost``): a program on the serving PC."""
    if remote == "localhost":
        return True
    addr = _address(remote)
    return addr is not None and addr.is_loopback


@dataclass(frozen=True, slots=True)
class Access:
    """The serve's access rules: the farm token (native API) and the allow-list (IOPaint's routes)."""

    token: str
    allow: tuple[IpNetwork, ...] = ()

    def iopaint_allowed(self, remote: str | None) -> bool:
        if is_this_pc(remote):
            return True
        addr = _address(remote)
        return addr is not None and any(addr.version == net.version and addr in net for net in self.allow)

    def native_allowed(self, remote: str | None, authorization: str) -> bool:
        if is_this_pc(remote):
            return True
        scheme, _, given = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not self.token:
            return False
        try:
            return tokens_equal(given.strip(), self.token)
        except UnicodeEncodeError:
            return False

    def describe(self) -> str:
        """What ``lanfarm serve`` says at start about other addresses."""
        if not self.allow:
            return "IOPaint API from other addresses: refused (no --allow given)"
        return "IOPaint API from other addresses: open, without a token, to " + ", ".join(str(n) for n in self.allow)
