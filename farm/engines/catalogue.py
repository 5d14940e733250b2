"""AI model files in the models folder: find them, tell which engine each is for, hash, add new ones.

Everything here except :func:`inspect_model` and :func:`check_loads` is torch-free: which engine a
file belongs to is read from its tensor names without unpickling anything (a safetensors header, or
the opcodes of a ``.pth`` zip's ``data.pkl`` walked with :mod:`pickletools`, which never executes).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pickletools
import struct
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from farm.errors import EngineError
from farm.local.files import write_atomic
from farm.local.paths import cache_dir

ModelKind = Literal["lama", "upscale", "sd-inpaint", "unknown"]
ModelFormat = Literal["safetensors", "pth", "torchscript", "diffusers", "single-file", "other"]

# IOPaint keeps its LaMa as TorchScript under this exact name. torch.jit.load runs the code inside a
# TorchScript file, so this is the one .pt name LAN Farm loads; any other .pt is refused.
IOPAINT_LAMA_NAME = "big-lama.pt"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".ckpt")
SINGLE_FILE_CONFIG_SUFFIX = "-config"
AI_EXTRA_HINT = (
    "AI engines need the `ai` extra: pip install 'lanfarm[ai]' (adds torch, spandrel, "
    "safetensors, diffusers and transformers, for LaMa inpainting, upscaling with ESRGAN/"
    "Real-ESRGAN/SwinIR-style models and Stable Diffusion inpainting)"
)
AI_MODULES = ("torch", "spandrel", "safetensors")
SD_MODULES = ("torch", "diffusers", "transformers")

_LAMA_KEYS = ("model.model.1.bn_l.running_mean", "generator.model.1.bn_l.running_mean")
_SD_UNET_PREFIX = "model.diffusion_model."
_SDXL_MARKER = "conditioner.embedders.1."
_MAX_HEADER_BYTES = 100 << 20
_INDEX_VERSION = 1


@dataclass(frozen=True, slots=True)
class ModelFile:
    """A model in the models folder: ``name`` is what an EditSpec's ``model`` field holds."""

    name: str
    path: Path
    kind: ModelKind
    format: ModelFormat
    size_bytes: int
    mtime_ns: int
    note: str = ""

    @property
    def size_mb(self) -> float:
        return self.size_bytes / (1 << 20)


@dataclass(frozen=True, slots=True)
class ModelDetails:
    """A model with what loading or hashing it told: architecture, scale, sha256, or why it failed."""

    model: ModelFile
    architecture: str | None = None
    scale: int | None = None
    sha256: str | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, object]:
        m = self.model
        return {
            "name": m.name,
            "path": str(m.path),
            "engine": m.kind,
            "format": m.format,
            "size_bytes": m.size_bytes,
            "architecture": self.architecture,
            "scale": self.scale,
            "sha256": self.sha256,
            "error": self.error or m.note or None,
        }


def missing_modules(names: Iterable[str]) -> list[str]:
    """Which of ``names`` cannot be imported here, checked without importing them."""
    return [n for n in names if importlib.util.find_spec(n) is None]


def iopaint_lama_path() -> Path | None:
    """IOPaint's downloaded big-lama.pt, if this user has one (offered, never used in place)."""
    torch_home = os.environ.get("TORCH_HOME")
    base = Path(torch_home) if torch_home else Path.home() / ".cache" / "torch"
    path = base / "hub" / "checkpoints" / IOPAINT_LAMA_NAME
    return path if path.is_file() else None


# --- finding and classifying, torch-free ------------------------------------------------------------


def scan_models(models_dir: Path) -> list[ModelFile]:
    """The models directly inside ``models_dir``, sorted by name; unusable entries carry a ``note``."""
    if not models_dir.is_dir():
        return []
    entries = sorted(models_dir.iterdir(), key=lambda p: p.name)
    single_files = {p.stem for p in entries if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES}
    found = []
    for path in entries:
        if path.name.startswith("."):
            continue
        if (
            path.is_dir()
            and path.name.endswith(SINGLE_FILE_CONFIG_SUFFIX)
            and path.name.removesuffix(SINGLE_FILE_CONFIG_SUFFIX) in single_files
        ):
            continue  # the configs of a single-file checkpoint, not a model of its own
        model = classify(path)
        if model is not None:
            found.append(model)
    return found


def classify(path: Path) -> ModelFile | None:
    """What engine ``path`` is for, from names and tensor keys; None when it is no model file at all."""
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            return None
        size, mtime = _tree_stat(path)
        cls = _read_json(index).get("_class_name", "")
        if isinstance(cls, str) and cls.startswith("StableDiffusion"):
            return ModelFile(path.name, path, "sd-inpaint", "diffusers", size, mtime)
        return ModelFile(
            path.name,
            path,
            "unknown",
            "diffusers",
            size,
            mtime,
            note=f"a diffusers {cls or 'pipeline'} folder, not Stable Diffusion",
        )
    if not path.is_file():
        return None
    stat = path.stat()
    suffix = path.suffix.lower()

    def made(kind: ModelKind, fmt: ModelFormat, note: str = "") -> ModelFile:
        return ModelFile(path.name, path, kind, fmt, stat.st_size, stat.st_mtime_ns, note)

    if path.name == IOPAINT_LAMA_NAME:
        return made("lama", "torchscript")
    if suffix == ".pt":
        return made(
            "unknown",
            "torchscript",
            note=f"TorchScript files run code when loaded; only "
            f"IOPaint's {IOPAINT_LAMA_NAME} is accepted. Use a .safetensors or .pth instead",
        )
    if suffix not in WEIGHT_SUFFIXES:
        return None
    fmt: ModelFormat = "safetensors" if suffix == ".safetensors" else "pth"
    try:
        keys = read_tensor_names(path)
    except (OSError, ValueError):
        keys = None  # corrupt: loading it will say so, naming the file
    if keys is None:  # an old (pre-zip) torch file or a damaged one: guess by name
        return made("lama" if "lama" in path.name.lower() else "upscale", fmt)
    if any(k in keys for k in _LAMA_KEYS):
        return made("lama", fmt)
    if any(k.startswith(_SD_UNET_PREFIX) for k in keys):
        return made("sd-inpaint", "single-file")
    return made("upscale", fmt)


def read_tensor_names(path: Path) -> set[str] | None:
    """Tensor names of a .safetensors or zip-format .pth/.ckpt, read without unpickling.

    Returns None for a legacy (non-zip) torch file; raises ValueError for a corrupt one.
    """
    if path.suffix.lower() == ".safetensors":
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) != 8:
                raise ValueError("too short for a safetensors file")
            (length,) = struct.unpack("<Q", head)
            if length > _MAX_HEADER_BYTES:
                raise ValueError("safetensors header is implausibly large")
            try:
                header = json.loads(fh.read(length))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise ValueError("safetensors header is not valid JSON") from None
        if not isinstance(header, dict):
            raise ValueError("safetensors header is not a JSON object")
        return {k for k in header if k != "__metadata__"}
    if not zipfile.is_zipfile(path):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            pkl = next((n for n in zf.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None)
            if pkl is None:
                raise ValueError("a zip without data.pkl, not a torch file")
            if zf.getinfo(pkl).file_size > _MAX_HEADER_BYTES:
                raise ValueError("data.pkl is implausibly large")
            data = zf.read(pkl)
        # genops only decodes opcodes; nothing in the pickle is imported or called.
        return {
            str(arg)
            for op, arg, _pos in pickletools.genops(data)
            if op.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE", "BINUNICODE8")
        }
    except (zipfile.BadZipFile, ValueError, EOFError, KeyError) as exc:
        raise ValueError(f"corrupt torch file ({exc})") from None


def models_for(models: Iterable[ModelFile], kind: str) -> list[ModelFile]:
    """The usable models of one engine kind, in folder order."""
    return [m for m in models if m.kind == kind and not m.note]


def estimate_memory_mb(model: ModelFile) -> int:
    """Memory to hold and run ``model``: weights as stored plus working room for activations."""
    working = {"lama": 1024, "upscale": 1024, "sd-inpaint": 2048}.get(model.kind, 512)
    return int(model.size_mb) + working


def single_file_config_dir(model: ModelFile) -> Path:
    """Where the diffusers configs of a single-file SD checkpoint must be (loading is offline)."""
    return model.path.with_name(model.path.stem + SINGLE_FILE_CONFIG_SUFFIX)


def sd_architecture(folder: Path) -> str:
    """SD 1.x / 2.x / XL and inpaint or not, from a diffusers folder's configs."""
    index = _read_json(folder / "model_index.json")
    unet = _read_json(folder / "unet" / "config.json")
    cls = str(index.get("_class_name", ""))
    cross = unet.get("cross_attention_dim")
    family = "SDXL" if "XL" in cls or cross == 2048 else "SD 2.x" if cross == 1024 else "SD 1.x"
    return f"{family} {'inpaint' if unet.get('in_channels') == 9 else 'base'}"


# --- hashes and what loading found, cached by mtime + size -------------------------------------------


class ModelIndex:
    """A small JSON cache of sha256 / architecture / scale per model path, valid while mtime+size hold."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "model-index.json"
        self._entries: dict[str, dict[str, object]] = {}
        self._dirty = False
        try:
            data = json.loads(self.path.read_text("utf-8"))
            if data.get("version") == _INDEX_VERSION and isinstance(data.get("entries"), dict):
                self._entries = data["entries"]
        except (OSError, ValueError, AttributeError):
            pass

    def get(self, model: ModelFile) -> dict[str, object]:
        entry = self._entries.get(str(model.path.resolve()))
        if entry and entry.get("size") == model.size_bytes and entry.get("mtime_ns") == model.mtime_ns:
            return entry
        return {}

    def put(self, model: ModelFile, **values: object) -> None:
        entry = {**self.get(model), **values, "size": model.size_bytes, "mtime_ns": model.mtime_ns}
        self._entries[str(model.path.resolve())] = entry
        self._dirty = True

    def save(self) -> None:
        if not self._dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"version": _INDEX_VERSION, "entries": self._entries}, indent=1)
        write_atomic(self.path, body.encode(), overwrite=True)  # a listing and a node may save at once
        self._dirty = False


def sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder as the hash of its files' relative paths and hashes."""
    if path.is_file():
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return digest.hexdigest()
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(path).as_posix()}\0{sha256_of(file)}\n".encode())
    return digest.hexdigest()


def describe(
    models: Iterable[ModelFile],
    index: ModelIndex,
    *,
    inspect: Callable[[ModelFile], tuple[str, int]] | None,
    hashes: bool = True,
) -> list[ModelDetails]:
    """Details for each model; ``inspect`` (``farm.engines.installed.inspect_model``, needs torch) loads
    models to learn architecture and scale."""
    out = []
    for model in models:
        cached = index.get(model)
        details = ModelDetails(model, error=model.note or None)
        if hashes:
            sha = cached.get("sha256")
            if not isinstance(sha, str):
                sha = sha256_of(model.path)
                index.put(model, sha256=sha)
            details = replace(details, sha256=sha)
        if model.note:
            out.append(details)
            continue
        if "architecture" in cached or "error" in cached:
            arch, scale, error = cached.get("architecture"), cached.get("scale"), cached.get("error")
            details = replace(
                details,
                architecture=arch if isinstance(arch, str) else None,
                scale=scale if isinstance(scale, int) else None,
                error=error if isinstance(error, str) else None,
            )
        elif model.kind == "sd-inpaint" and model.format == "diffusers":
            details = replace(details, architecture=sd_architecture(model.path), scale=1)
        elif model.kind == "lama" and model.format == "torchscript":
            details = replace(details, architecture="LaMa (IOPaint TorchScript)", scale=1)
        elif inspect is not None:
            try:
                arch, scale = inspect(model)
                index.put(model, architecture=arch, scale=scale, error=None)
                details = replace(details, architecture=arch, scale=scale)
            except EngineError as exc:
                index.put(model, error=str(exc))
                details = replace(details, error=str(exc))
        out.append(details)
    return out


def known_scale(model: ModelFile, index: ModelIndex | None = None) -> int | None:
    """The scale recorded for ``model`` by an earlier load, if any (descriptors are built torch-free)."""
    scale = (index or ModelIndex()).get(model).get("scale")
    return scale if isinstance(scale, int) else None


def details_json(details: Iterable[ModelDetails]) -> list[dict[str, object]]:
    return [d.to_dict() for d in details]


def _tree_stat(folder: Path) -> tuple[int, int]:
    size, mtime = 0, 0
    for file in folder.rglob("*"):
        if file.is_file():
            st = file.stat()
            size += st.st_size
            mtime = max(mtime, st.st_mtime_ns)
    return size, mtime


def _read_json(path: Path) -> dict[str, object]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = [
    "AI_EXTRA_HINT",
    "IOPAINT_LAMA_NAME",
    "ModelDetails",
    "ModelFile",
    "ModelIndex",
    "classify",
    "describe",
    "estimate_memory_mb",
    "iopaint_lama_path",
    "known_scale",
    "missing_modules",
    "models_for",
    "read_tensor_names",
    "scan_models",
    "sha256_of",
    "single_file_config_dir",
]
