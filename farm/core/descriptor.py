"""An engine as callers plan with it: a torch-free descriptor (what this PC and every node advertise)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from farm.core.params import ParamSchema


@dataclass(frozen=True, slots=True)
class EngineDescriptor:
    """What callers plan with: operations, params, devices, memory need, size rules, availability."""

    id: str
    title: str
    operations: frozenset[str]
    params: ParamSchema = field(default_factory=ParamSchema)
    devices: tuple[str, ...] = ("cpu",)
    memory_mb: int = 256
    needs_mask: bool = True
    size_multiple: int = 1
    scale: int = 1
    models: tuple[str, ...] = ()
    available: bool = True
    unavailable_reason: str = ""
    simulated: bool = False
    #: The edit costs less than decoding and encoding its whole frame (OpenCV's inpaint): cutting a crop for a
    #: node and pasting its result back would cost this PC about as much as running it here, so the whole
    #: input travels to nodes from the first job (the farm does not wait to measure it).
    light: bool = False

    def to_dict(self) -> dict[str, object]:
        """JSON form, as /v1/info and the GUI's edit picker use it."""
        return {
            "id": self.id,
            "title": self.title,
            "operations": sorted(self.operations),
            "params": self.params.to_schema(),
            "devices": list(self.devices),
            "memory_mb": self.memory_mb,
            "needs_mask": self.needs_mask,
            "size_multiple": self.size_multiple,
            "scale": self.scale,
            "models": list(self.models),
            "available": self.available,
            "unavailable_reason": self.unavailable_reason,
            "simulated": self.simulated,
            "light": self.light,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EngineDescriptor:
        """The inverse of :meth:`to_dict`: an engine as a node describes it. Raises SpecError/KeyError."""
        return cls(
            id=str(data["id"]),
            title=str(data.get("title") or data["id"]),
            operations=frozenset(data.get("operations") or ()),
            params=ParamSchema.from_schema(data.get("params")),
            devices=tuple(data.get("devices") or ("cpu",)),
            memory_mb=int(data.get("memory_mb") or 0),
            needs_mask=bool(data.get("needs_mask", True)),
            size_multiple=int(data.get("size_multiple") or 1),
            scale=int(data.get("scale") or 1),
            models=tuple(data.get("models") or ()),
            available=bool(data.get("available", True)),
            unavailable_reason=str(data.get("unavailable_reason") or ""),
            simulated=bool(data.get("simulated", False)),
            light=bool(data.get("light", False)),
        )


def merge_descriptors(local: Sequence[EngineDescriptor], remote: Sequence[EngineDescriptor]) -> list[EngineDescriptor]:
    """The engines a farm offers: this PC's, plus what only nodes have; an engine available anywhere
    is available, with the models of every worker that has it."""
    merged: dict[str, EngineDescriptor] = {d.id: d for d in local}
    for d in remote:
        have = merged.get(d.id)
        if have is None or (d.available and not have.available):
            base = d
        elif d.available:
            base = have
        else:
            continue
        models = tuple(dict.fromkeys((*(have.models if have else ()), *d.models)))
        merged[d.id] = replace(base, models=models)
    return list(merged.values())
