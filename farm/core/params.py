"""Declared engine parameters: a schema the GUI turns into a form and the node validates against."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from farm.errors import SpecError

ParamKind = Literal["int", "float", "bool", "str", "choice"]
ParamValue = int | float | bool | str


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One typed engine parameter with its default and bounds."""

    name: str
    kind: ParamKind
    default: ParamValue
    label: str = ""
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    multiline: bool = False

    def coerce(self, value: Any) -> ParamValue:
        """Return ``value`` checked and converted to this param's type, or raise SpecError."""
        where = f"param {self.name!r}"
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            raise SpecError(f"{where} must be true or false, got {value!r}")
        if self.kind == "str":
            if isinstance(value, str) and len(value) <= 10_000:
                return value
            raise SpecError(f"{where} must be a text of at most 10000 characters")
        if self.kind == "choice":
            if isinstance(value, str) and value in self.choices:
                return value
            raise SpecError(f"{where} must be one of {', '.join(self.choices)}; got {value!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SpecError(f"{where} must be a number, got {value!r}")
        if self.kind == "int":
            if isinstance(value, float):
                if not value.is_integer():
                    raise SpecError(f"{where} must be a whole number, got {value!r}")
                value = int(value)
        else:
            value = float(value)
            if value != value or value in (float("inf"), float("-inf")):
                raise SpecError(f"{where} must be a finite number")
        if self.minimum is not None and value < self.minimum:
            raise SpecError(f"{where} must be at least {self.minimum:g}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise SpecError(f"{where} must be at most {self.maximum:g}, got {value}")
        return value

    @classmethod
    def from_schema(cls, data: Mapping[str, Any]) -> ParamSpec:
        """The inverse of :meth:`to_schema` (a node's engine, described in its /v1/info)."""
        kind = data.get("kind")
        if kind not in ("int", "float", "bool", "str", "choice") or not isinstance(data.get("name"), str):
            raise SpecError(f"not a param schema: {data!r}")
        return cls(
            name=data["name"],
            kind=kind,
            default=data.get("default", ""),
            label=str(data.get("label", "")),
            help=str(data.get("help", "")),
            minimum=data.get("minimum"),
            maximum=data.get("maximum"),
            choices=tuple(data.get("choices", ())),
            multiline=bool(data.get("multiline", False)),
        )

    def to_schema(self) -> dict[str, Any]:
        """JSON form of this param for forms in other processes (the GUI, the node API)."""
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "default": self.default,
            "label": self.label or self.name.replace("_", " ").capitalize(),
        }
        if self.help:
            out["help"] = self.help
        if self.minimum is not None:
            out["minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices:
            out["choices"] = list(self.choices)
        if self.multiline:
            out["multiline"] = True
        return out


@dataclass(frozen=True, slots=True)
class ParamSchema:
    """The ordered params of one engine."""

    params: tuple[ParamSpec, ...] = field(default_factory=tuple)

    def defaults(self) -> dict[str, ParamValue]:
        return {p.name: p.default for p in self.params}

    def validate(self, given: Mapping[str, Any]) -> dict[str, ParamValue]:
        """Defaults overlaid with ``given``, each value checked; unknown names are refused."""
        if not isinstance(given, Mapping):
            raise SpecError("params must be an object of name -> value")
        known = {p.name: p for p in self.params}
        unknown = sorted(set(given) - set(known))
        if unknown:
            allowed = ", ".join(known) or "none"
            raise SpecError(f"unknown param {unknown[0]!r} (allowed: {allowed})")
        out = self.defaults()
        for name, value in given.items():
            out[name] = known[name].coerce(value)
        return out

    def to_schema(self) -> list[dict[str, Any]]:
        return [p.to_schema() for p in self.params]

    @classmethod
    def from_schema(cls, data: Any) -> ParamSchema:
        return cls.of(*(ParamSpec.from_schema(p) for p in data or ()))

    @classmethod
    def of(cls, *params: ParamSpec) -> ParamSchema:
        names = [p.name for p in params]
        if len(names) != len(set(names)):
            raise ValueError(f"duplicate param names in {names}")
        return cls(tuple(params))
