"""Where a node listens: ``host:port`` and whether it speaks TLS, parsed from what people type.

``https://H:P`` or a bare ``H:P`` is a TLS node (the default since nodes serve https); ``http://H:P``
is a plain one (a node started with ``--no-tls``).
"""

from __future__ import annotations

from dataclasses import dataclass

from farm.core.protocol import DEFAULT_PORT
from farm.errors import FarmError


@dataclass(frozen=True, slots=True, order=True)
class Address:
    """Where a node listens. ``str()`` is ``host:port`` (``[v6]:port`` for IPv6); ``tls`` False: plain HTTP."""

    host: str
    port: int
    tls: bool = True

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self}"

    @property
    def text(self) -> str:
        """What to save or type to get this address back: ``host:port``, ``http://host:port`` if plain."""
        return str(self) if self.tls else self.url

    @classmethod
    def parse(cls, text: str, default_port: int = DEFAULT_PORT) -> Address:
        """``host``, ``host:port``, ``[v6]`` or ``[v6]:port``, optionally after ``https://`` (the default)
        or ``http://`` (a plain node); FarmError otherwise."""
        text = text.strip()
        scheme, sep, rest = text.partition("://")
        tls = True
        if sep:
            if scheme.lower() not in ("http", "https"):
                raise FarmError(f"{text!r}: a node address starts with https:// or http://, not {scheme}://")
            tls, text = scheme.lower() == "https", rest
        text = text.rstrip("/")
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
        return cls(host, port, tls)
