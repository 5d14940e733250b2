"""A node's ``/v1/info`` answer as one typed value: parsed here, and only here, for the whole farm."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from farm.core.availability import Availability, State
from farm.core.descriptor import EngineDescriptor
from farm.errors import FarmError, SpecError


class NodeInfoError(FarmError):
    """A ``/v1/info`` answer that is not what the protocol says."""


@dataclass(frozen=True, slots=True)
class GpuInfo:
    """One GPU of a node; sizes in bytes."""

    index: int
    name: str
    vram_total: int = 0
    vram_free: int = 0
    driver: str = ""

    @property
    def vram_used(self) -> int:
        return max(0, self.vram_total - self.vram_free)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "vram_total": self.vram_total,
            "vram_free": self.vram_free,
            "driver": self.driver,
        }


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model in a node's models folder: ``id`` is its content id (sha256 of the file, or of a
    diffusers folder's manifest); ``kind`` the engine id it is for. Old nodes send only name and size."""

    name: str
    size: int = 0
    id: str = ""
    kind: str = ""
    architecture: str | None = None
    scale: int | None = None

    def to_dict(self) -> dict[str, Any]:
        if not self.id:
            return {"name": self.name, "size": self.size}
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "architecture": self.architecture,
            "scale": self.scale,
            "size": self.size,
        }

    @classmethod
    def from_dict(cls, m: Mapping[str, Any]) -> ModelEntry:
        scale = m.get("scale")
        arch = m.get("architecture")
        return cls(
            str(m["name"]),
            int(m.get("size") or 0),
            id=str(m.get("id") or ""),
            kind=str(m.get("kind") or ""),
            architecture=str(arch) if arch is not None else None,
            scale=int(scale) if scale is not None else None,
        )


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What a node says about itself: hardware, engines (with their availability), models, slots."""

    id: str
    name: str
    version: str = ""
    protocol: int = 0
    lite: bool = False
    cpu: str = ""
    cpu_count: int = 0
    ram_total: int = 0
    backend: str = "cpu"
    gpus: tuple[GpuInfo, ...] = ()
    engines: tuple[EngineDescriptor, ...] = ()
    models: tuple[ModelEntry, ...] = ()
    slots_total: int = 1
    slots_free: int = 0
    queue: int = 0
    uptime: float = 0.0
    jobs_done: int = 0
    jobs_failed: int = 0
    draining: bool = False
    availability: Availability = field(default_factory=Availability)  # state, reason, until (older nodes: available)
    macs: tuple[str, ...] = ()  # its network cards' MAC addresses, for Wake-on-LAN
    nimby: str = ""  # which NIMBY probes watch that PC, or that none works ("": NIMBY off)
    devices: tuple[str, ...] = ()  # the device of each job slot (cuda:0, cuda:1, auto ...)
    tls: bool = False  # serves https; ``fingerprint``: its certificate's SHA-256 (hex)
    fingerprint: str = ""
    model_space: int | None = None  # bytes this node takes for models pushed to it (None: it takes none)

    # --- what callers plan with -------------------------------------------------------------------

    @property
    def gpu_label(self) -> str:
        """The first GPU's name, or ``CPU only``."""
        return self.gpus[0].name or "GPU" if self.gpus else "CPU only"

    @property
    def vram_total_mb(self) -> int:
        return self.gpus[0].vram_total >> 20 if self.gpus else 0

    @property
    def vram_used_mb(self) -> int:
        return self.gpus[0].vram_used >> 20 if self.gpus else 0

    @property
    def memory_mb(self) -> int:
        """Memory a job can use there: the biggest GPU's, else the RAM (else unbounded). When the slots
        run on several GPUs (``devices``: cuda:i), a job may get any of them: the smallest of those."""
        slot_gpus = {int(d.split(":")[1]) for d in self.devices if d.startswith("cuda:") and d[5:].isdigit()}
        sizes = [g.vram_total for g in self.gpus if g.index in slot_gpus and g.vram_total]
        vram = (min(sizes) if sizes else max((g.vram_total for g in self.gpus), default=0)) >> 20
        return vram or (self.ram_total >> 20) or (1 << 30)

    @property
    def available_engines(self) -> tuple[EngineDescriptor, ...]:
        return tuple(e for e in self.engines if e.available)

    @property
    def engine_ids(self) -> tuple[str, ...]:
        return tuple(e.id for e in self.engines)

    def model_ids(self) -> dict[str, frozenset[str]] | None:
        """Content ids of its models per engine id; None for a node that does not say them (older)."""
        if any(not m.id for m in self.models):
            return None
        out: dict[str, set[str]] = {}
        for m in self.models:
            out.setdefault(m.kind, set()).add(m.id)
        return {kind: frozenset(ids) for kind, ids in out.items()}

    def has_model(self, model_id: str) -> bool:
        return any(m.id == model_id for m in self.models)

    # --- wire form --------------------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeInfo:
        """Parse a ``/v1/info`` answer; fields a node leaves out take their defaults. Raises NodeInfoError."""
        if not isinstance(data, Mapping):
            raise NodeInfoError("/v1/info is not a JSON object")
        try:
            node_id = data["id"]
            if not isinstance(node_id, str) or not node_id:
                raise NodeInfoError("/v1/info has no node id")
            hardware = _mapping(data.get("hardware"), "hardware")
            slots = _mapping(data.get("slots"), "slots")
            jobs = _mapping(data.get("jobs"), "jobs")
            gpus = tuple(
                GpuInfo(
                    index=int(g.get("index", i)),
                    name=str(g.get("name") or ""),
                    vram_total=int(g.get("vram_total") or 0),
                    vram_free=int(g.get("vram_free") or 0),
                    driver=str(g.get("driver") or ""),
                )
                for i, g in enumerate(_list(hardware.get("gpus"), "hardware.gpus"))
            )
            engines = tuple(EngineDescriptor.from_dict(e) for e in _list(data.get("engines"), "engines"))
            models = tuple(ModelEntry.from_dict(m) for m in _list(data.get("models"), "models"))
            space = data.get("model_space")
            return cls(
                id=node_id,
                name=str(data.get("name") or node_id),
                version=str(data.get("version") or ""),
                protocol=int(data.get("protocol") or 0),
                lite=bool(data.get("lite", False)),
                cpu=str(hardware.get("cpu") or ""),
                cpu_count=int(hardware.get("cpu_count") or 0),
                ram_total=int(hardware.get("ram_total") or 0),
                backend=str(hardware.get("backend") or "cpu"),
                gpus=gpus,
                engines=engines,
                models=models,
                slots_total=max(1, int(slots.get("total") or 1)),
                slots_free=int(slots.get("free") or 0),
                queue=int(data.get("queue") or 0),
                uptime=float(data.get("uptime") or 0.0),
                jobs_done=int(jobs.get("done") or 0),
                jobs_failed=int(jobs.get("failed") or 0),
                draining=bool(data.get("draining", False)),
                availability=_availability(data),
                macs=tuple(str(m) for m in _list(data.get("macs"), "macs")),
                nimby=str(data.get("nimby") or ""),
                devices=tuple(str(d) for d in _list(data.get("devices"), "devices")),
                tls=bool(data.get("tls", False)),
                fingerprint=str(data.get("fingerprint") or ""),
                model_space=int(space) if space is not None else None,
            )
        except NodeInfoError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, SpecError) as exc:
            raise NodeInfoError(f"/v1/info is malformed: {type(exc).__name__}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The wire form (``lanfarm nodes --json``, and what a node answers)."""
        return {
            "id": self.id,
            "name": self.name,
            "version": self.version,
            "protocol": self.protocol,
            "lite": self.lite,
            "hardware": {
                "cpu": self.cpu,
                "cpu_count": self.cpu_count,
                "ram_total": self.ram_total,
                "backend": self.backend,
                "gpus": [g.to_dict() for g in self.gpus],
            },
            "engines": [e.to_dict() for e in self.engines],
            "models": [m.to_dict() for m in self.models],
            "slots": {"total": self.slots_total, "free": self.slots_free},
            "queue": self.queue,
            "uptime": self.uptime,
            "jobs": {"done": self.jobs_done, "failed": self.jobs_failed},
            "draining": self.draining,
            **self.availability.to_dict(),
            "macs": list(self.macs),
            "nimby": self.nimby,
            "devices": list(self.devices),
            "tls": self.tls,
            "fingerprint": self.fingerprint,
            **({"model_space": self.model_space} if self.model_space is not None else {}),
        }


def _availability(data: Mapping[str, Any]) -> Availability:
    if "state" not in data and data.get("draining"):  # a node from before availability states
        return Availability(State.DRAINING, "draining")
    return Availability.from_dict(data)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise NodeInfoError(f"/v1/info: {what} is not an object")
    return value


def _list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise NodeInfoError(f"/v1/info: {what} is not a list")
    return value
