"""The mDNS advert of a node: service type and TXT record, encoded and parsed in one place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeAdvert:
    """What a node says about itself over mDNS. Never holds the farm token."""

    id: str
    name: str
    version: str
    proto: int
    gpu: str = "cpu"
    vram_mb: int = 0
    engines: tuple[str, ...] = ()
    slots: int = 1
    free: int = 1
    state: str = "available"  # farm.core.availability.State: available, paused, draining, nimby, schedule
    tls: bool = False  # serves https with the certificate whose SHA-256 is ``fingerprint``
    fingerprint: str = ""

    def to_txt(self) -> dict[str, str]:
        return {
            "id": self.id,
            "name": self.name[:63],
            "ver": self.version,
            "proto": str(self.proto),
            "gpu": self.gpu[:63],
            "vram": str(self.vram_mb),
            "engines": ",".join(self.engines),
            "slots": str(self.slots),
            "free": str(self.free),
            "state": self.state,
            "tls": "1" if self.tls else "0",
            "fp": self.fingerprint,
        }

    @classmethod
    def from_txt(cls, txt: Mapping[bytes | str, bytes | str | None]) -> NodeAdvert:
        """Parse a TXT record (zeroconf gives bytes keys and values); ValueError if it is not ours."""
        d = {_s(k): _s(v) for k, v in txt.items()}
        try:
            return cls(
                id=_need(d, "id"),
                name=d.get("name") or _need(d, "id"),
                version=d.get("ver", "?"),
                proto=int(_need(d, "proto")),
                gpu=d.get("gpu") or "cpu",
                vram_mb=int(d.get("vram") or 0),
                engines=tuple(e for e in (d.get("engines") or "").split(",") if e),
                slots=int(d.get("slots") or 1),
                free=int(d.get("free") or 0),
                state=d.get("state") or "available",
                tls=d.get("tls") == "1",
                fingerprint=d.get("fp", ""),
            )
        except (TypeError, ValueError) as exc:
            raise ValueError(f"not a LAN Farm advert: {exc}") from None


def _s(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _need(d: Mapping[str, str], key: str) -> str:
    value = d.get(key)
    if not value:
        raise ValueError(f"TXT has no {key!r}")
    return value
