"""EditSpec: what to do to an image. JSON-serialisable with a schema version; it crosses the network."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from farm.core.params import ParamValue
from farm.core.protocol import SPEC_SCHEMA_VERSION
from farm.errors import SpecError

HdStrategyName = Literal["original", "crop", "resize"]
OutputFormat = Literal["keep", "png", "jpeg", "webp"]
OPERATIONS = ("inpaint", "upscale")
_MODEL_ID_RE = re.compile(r"[0-9a-f]{64}")
FORMAT_SUFFIX: dict[str, str] = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
#: ``keep``: the input's own format (JPEG stays JPEG at about its quality, WebP stays WebP, anything else
#: becomes PNG); resolved per image by :func:`kept_format`.
OUTPUT_FORMATS = ("keep", *FORMAT_SUFFIX)


@dataclass(frozen=True, slots=True)
class HdStrategy:
    """IOPaint-style handling of big images; applied by the pipeline to every inpaint engine.

    ``original`` runs on the whole image; ``crop`` runs on a box around the mask grown by ``margin``;
    ``resize`` scales the image so its long side is ``resize_limit``. Both only apply when the long side
    exceeds ``trigger``, and only the masked pixels of the engine's output are pasted back.
    """

    strategy: HdStrategyName = "crop"
    trigger: int = 800
    margin: int = 128
    resize_limit: int = 1280

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "trigger": self.trigger,
            "margin": self.margin,
            "resize_limit": self.resize_limit,
        }

    @classmethod
    def from_dict(cls, data: Any) -> HdStrategy:
        data = _object(data, "hd")
        _no_unknown(data, {"strategy", "trigger", "margin", "resize_limit"}, "hd")
        strategy = data.get("strategy", "crop")
        if strategy not in ("original", "crop", "resize"):
            raise SpecError(f"hd.strategy must be original, crop or resize; got {strategy!r}")
        return cls(
            strategy=strategy,
            trigger=_int(data.get("trigger", 800), "hd.trigger", 16, 1 << 16),
            margin=_int(data.get("margin", 128), "hd.margin", 0, 1 << 14),
            resize_limit=_int(data.get("resize_limit", 1280), "hd.resize_limit", 16, 1 << 16),
        )


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """How the result is encoded. ``keep`` writes the input's own format (see :func:`kept_format`);
    ``quality`` applies to JPEG and WebP (with ``keep``, a JPEG's own quality is used instead)."""

    format: OutputFormat = "png"
    quality: int = 95

    @property
    def suffix(self) -> str:
        """The file suffix; for ``keep`` it depends on the input: use :meth:`suffix_for`."""
        return FORMAT_SUFFIX["png" if self.format == "keep" else self.format]

    def suffix_for(self, input_format: str | None) -> str:
        """The suffix of the output of an input in ``input_format`` (Pillow's name, e.g. ``JPEG``)."""
        return FORMAT_SUFFIX[self.format if self.format != "keep" else kept_format(input_format)]

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "quality": self.quality}

    @classmethod
    def from_dict(cls, data: Any) -> OutputSpec:
        data = _object(data, "output")
        _no_unknown(data, {"format", "quality"}, "output")
        fmt = data.get("format", "png")
        if fmt == "jpg":
            fmt = "jpeg"
        if not isinstance(fmt, str) or fmt not in OUTPUT_FORMATS:
            raise SpecError(f"output.format must be keep, png, jpeg or webp; got {fmt!r}")
        return cls(format=cast(OutputFormat, fmt), quality=_int(data.get("quality", 95), "output.quality", 1, 100))


def kept_format(input_format: str | None) -> str:
    """The output format ``keep`` gives an input in ``input_format`` (Pillow's name): JPEG and WebP stay,
    everything else (PNG, TIFF, BMP, GIF, unknown) is written as PNG, which keeps 16 bits and alpha."""
    name = (input_format or "").upper()
    return {"JPEG": "jpeg", "MPO": "jpeg", "WEBP": "webp"}.get(name, "png")


@dataclass(frozen=True, slots=True)
class EditSpec:
    """One edit: operation, engine and its params, HD strategy and output encoding.

    ``params`` holds only what the caller set; :meth:`farm.engines.Registry.resolve` checks it
    against the engine's declared schema and fills the defaults.
    """

    op: str = "inpaint"
    engine: str = "cv2"
    params: Mapping[str, ParamValue] = field(default_factory=dict)
    hd: HdStrategy = field(default_factory=HdStrategy)
    output: OutputSpec = field(default_factory=OutputSpec)
    model: str | None = None
    model_id: str | None = None  # the model's content id (sha256): routing matches on it, not the name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema": SPEC_SCHEMA_VERSION,
            "op": self.op,
            "engine": self.engine,
            "params": dict(self.params),
            "hd": self.hd.to_dict(),
            "output": self.output.to_dict(),
        }
        if self.model is not None:
            out["model"] = self.model
        if self.model_id is not None:
            out["model_id"] = self.model_id
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Any) -> EditSpec:
        """Parse and shape-check a spec; raises SpecError with a message a person can act on."""
        data = _object(data, "spec")
        schema = data.get("schema")
        if schema != SPEC_SCHEMA_VERSION:
            raise SpecError(
                f"unsupported spec schema version {schema!r} (this build reads "
                f"version {SPEC_SCHEMA_VERSION}); update LAN Farm on both ends"
            )
        _no_unknown(data, {"schema", "op", "engine", "params", "hd", "output", "model", "model_id"}, "spec")
        op = data.get("op")
        if not isinstance(op, str) or op not in OPERATIONS:
            raise SpecError(f"op must be one of {', '.join(OPERATIONS)}; got {op!r}")
        engine = data.get("engine")
        if not isinstance(engine, str) or not engine or len(engine) > 64:
            raise SpecError("engine must be a non-empty name")
        params = data.get("params", {})
        if not isinstance(params, dict) or not all(isinstance(k, str) for k in params):
            raise SpecError("params must be an object of name -> value")
        for key, value in params.items():
            if not isinstance(value, bool | int | float | str):
                raise SpecError(f"param {key!r} must be a number, text or true/false")
        model = data.get("model")
        if model is not None and (not isinstance(model, str) or not model or len(model) > 255):
            raise SpecError("model must be a file name")
        model_id = data.get("model_id")
        if model_id is not None and (not isinstance(model_id, str) or not _MODEL_ID_RE.fullmatch(model_id)):
            raise SpecError("model_id must be a model's content id: 64 lower-case hex digits (its sha256)")
        if model_id is not None and model is None:
            raise SpecError("model_id needs model (the model's name, for people)")
        return cls(
            op=op,
            engine=engine,
            params=dict(params),
            hd=HdStrategy.from_dict(data.get("hd", {})),
            output=OutputSpec.from_dict(data.get("output", {})),
            model=model,
            model_id=model_id,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> EditSpec:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SpecError(f"spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)


def _object(data: Any, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError(f"{where} must be a JSON object")
    return data


def _no_unknown(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise SpecError(f"unknown field {unknown[0]!r} in {where}")


def _int(value: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise SpecError(f"{where} must be a whole number from {lo} to {hi}; got {value!r}")
    return value
