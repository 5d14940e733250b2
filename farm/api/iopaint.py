"""IOPaint 1.6's HTTP API, answered by the whole farm.

Paths, request bodies and answers follow IOPaint's ``iopaint/api.py`` and ``iopaint/schema.py``
(Sanster/IOPaint): ``GET /api/v1/server-config``, ``GET/POST /api/v1/model``, ``POST /api/v1/inpaint``,
``GET /api/v1/samplers``, ``POST /api/v1/adjust_mask``, ``POST /api/v1/run_plugin_gen_image`` (the
RealESRGAN plugin, run by the farm's upscaler), ``POST /api/v1/run_plugin_gen_mask`` (no mask
plugin: IOPaint's own 422) and ``POST /api/v1/gen-info``. Errors have IOPaint's shapes:
``{"error", "detail", "body", "errors"}`` for its HTTPExceptions, ``{"detail": [...]}`` (FastAPI's)
for fields of the wrong type.

What the farm does differently, always said rather than silently misapplied: fields that change the
result and that the farm cannot do (ControlNet, BrushNet, the outpainting extender...) are refused
with 422 naming the field; fields that have no effect on the current model are listed in the
``X-Farm-Ignored`` answer header (IOPaint ignores them too). ``X-Farm-Worker`` names the worker
that made the result. Concurrent requests run at once, spread over the farm's workers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import io
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from aiohttp import web
from PIL import Image, ImageOps, UnidentifiedImageError

from farm.core.descriptor import EngineDescriptor
from farm.core.params import ParamValue
from farm.core.spec import EditSpec, HdStrategy, HdStrategyName, OutputFormat, OutputSpec
from farm.errors import FarmError, ImageError, SpecError
from farm.imaging.codec import decode_image

from .edits import EditFailed, Edits

API = "/api/v1"
RESULT_QUALITY = 95  # IOPaint's --quality default
MAX_KERNEL = 256
IOPAINT_SEED_MAX = 99_999_999  # IOPaint's random seed for sd_seed = -1: random.randint(1, 99999999)

# IOPaint's SDSampler values -> the farm's sd-inpaint schedulers; the others are refused by name.
SAMPLERS: dict[str, str] = {
    "UniPC": "unipc",
    "DPM++ 2M": "dpm++",
    "DPM++ 2M Karras": "dpm++_karras",
    "Euler": "euler",
    "Euler a": "euler_a",
    "DDIM": "ddim",
    "PNDM": "pndm",
}
HD_STRATEGIES: dict[str, HdStrategyName] = {"Original": "original", "Resize": "resize", "Crop": "crop"}
CV2_FLAGS = {"INPAINT_NS": "ns", "INPAINT_TELEA": "telea"}
REALESRGAN = "RealESRGAN"  # IOPaint's RealESRGANUpscaler.name
REALESRGAN_MODELS = ["realesr-general-x4v3", "RealESRGAN_x4plus", "RealESRGAN_x4plus_anime_6B"]
REMOVE_BG_MODELS = [
    "u2net",
    "u2netp",
    "u2net_human_seg",
    "u2net_cloth_seg",
    "silueta",
    "isnet-general-use",
    "briaai/RMBG-1.4",
]
INTERACTIVE_SEG_MODELS = ["vit_b", "vit_l", "vit_h", "sam_hq_vit_b", "sam_hq_vit_l", "sam_hq_vit_h", "mobile_sam"]
NOT_OFFERED = ("/inputimage", "/save_image", "/switch_plugin_model")
SD_ENGINE = "sd-inpaint"

# InpaintRequest's fields (iopaint/schema.py): name -> (kind, default).
Kind = str
FIELDS: dict[str, tuple[Kind, Any]] = {
    "image": ("str?", None),
    "mask": ("str?", None),
    "ldm_steps": ("int", 20),
    "ldm_sampler": ("str", "plms"),
    "zits_wireframe": ("bool", True),
    "hd_strategy": ("str", "Crop"),
    "hd_strategy_crop_trigger_size": ("int", 800),
    "hd_strategy_crop_margin": ("int", 128),
    "hd_strategy_resize_limit": ("int", 1280),
    "prompt": ("str", ""),
    "negative_prompt": ("str", ""),
    "use_croper": ("bool", False),
    "croper_x": ("int", 0),
    "croper_y": ("int", 0),
    "croper_height": ("int", 512),
    "croper_width": ("int", 512),
    "use_extender": ("bool", False),
    "extender_x": ("int", 0),
    "extender_y": ("int", 0),
    "extender_height": ("int", 640),
    "extender_width": ("int", 640),
    "sd_scale": ("float", 1.0),
    "sd_mask_blur": ("int", 11),
    "sd_strength": ("float", 1.0),
    "sd_steps": ("int", 50),
    "sd_guidance_scale": ("float", 7.5),
    "sd_sampler": ("str", "UniPC"),
    "sd_seed": ("int", 42),
    "sd_match_histograms": ("bool", False),
    "sd_outpainting_softness": ("float", 20.0),
    "sd_outpainting_space": ("float", 20.0),
    "sd_lcm_lora": ("bool", False),
    "sd_keep_unmasked_area": ("bool", True),
    "cv2_flag": ("str", "INPAINT_NS"),
    "cv2_radius": ("int", 4),
    "paint_by_example_example_image": ("str?", None),
    "p2p_image_guidance_scale": ("float", 1.5),
    "enable_controlnet": ("bool", False),
    "controlnet_conditioning_scale": ("float", 0.4),
    "controlnet_method": ("str", "lllyasviel/control_v11p_sd15_canny"),
    "enable_brushnet": ("bool", False),
    "brushnet_method": ("str", "random_mask"),
    "brushnet_conditioning_scale": ("float", 1.0),
    "enable_powerpaint_v2": ("bool", False),
    "powerpaint_task": ("str", "text-guided"),
    "fitting_degree": ("float", 1.0),
}
HD_FIELDS = ("hd_strategy", "hd_strategy_crop_trigger_size", "hd_strategy_crop_margin", "hd_strategy_resize_limit")
SD_FIELDS = ("prompt", "negative_prompt", "sd_steps", "sd_guidance_scale", "sd_strength", "sd_sampler", "sd_seed")
CV2_FIELDS = ("cv2_flag", "cv2_radius")
# Stable Diffusion switches the farm's engine cannot do: refused (422) when set for an SD model.
SD_REFUSED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "use_croper": (bool, "the cropper"),
    "use_extender": (bool, "outpainting (the extender)"),
    "enable_controlnet": (bool, "ControlNet"),
    "enable_brushnet": (bool, "BrushNet"),
    "enable_powerpaint_v2": (bool, "PowerPaint v2"),
    "sd_lcm_lora": (bool, "the LCM LoRA"),
    "sd_match_histograms": (bool, "histogram matching"),
    "sd_keep_unmasked_area": (lambda v: not v, "changing unmasked pixels (sd_keep_unmasked_area false)"),
    "sd_scale": (lambda v: v != 1.0, "sd_scale below 1"),
}


# ---------------------------------------------------------------------- errors in IOPaint's shapes
class IopaintError(Exception):
    """An IOPaint HTTPException: ``{"error", "detail", "body", "errors"}`` with its status."""

    def __init__(self, status: int, detail: str, error: str = "HTTPException") -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.error = error

    def response(self) -> web.Response:
        body = {"error": self.error, "detail": self.detail, "body": "", "errors": f"{self.status}: {self.detail}"}
        return web.json_response(body, status=self.status, headers=CORS)


class FieldError(Exception):
    """A field of the wrong type or range: FastAPI's 422 ``{"detail": [{"type", "loc", "msg", "input"}]}``."""

    def __init__(self, field: str, msg: str, value: Any = None, kind: str = "value_error") -> None:
        super().__init__(f"{field}: {msg}")
        self.field, self.msg, self.value, self.kind = field, msg, value, kind

    def response(self) -> web.Response:
        value = self.value if isinstance(self.value, int | float | bool | None) else str(self.value)[:100]
        detail = [{"type": self.kind, "loc": ["body", self.field], "msg": self.msg, "input": value}]
        return web.json_response({"detail": detail}, status=422, headers=CORS)


CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "X-Seed, X-Farm-Worker, X-Farm-Ignored"}


# ---------------------------------------------------------------------- request parsing
def decode_base64(text: Any, field: str) -> bytes:
    """IOPaint's decode_base64_to_image rule: a ``data:image/...;base64,`` prefix is dropped, then base64."""
    if not isinstance(text, str) or not text:
        raise FieldError(field, "Input should be a valid string", text, "string_type")
    if text.startswith("data:"):
        head, sep, text = text.partition(",")
        if not sep or ";base64" not in head:
            raise IopaintError(400, f"{field}: a data URL must be base64 (data:image/png;base64,...)", "ImageError")
    text = "".join(text.split())  # line-wrapped base64 (MIME style) is still base64
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise IopaintError(400, f"{field}: not valid base64 ({len(text)} characters)", "ImageError") from None
    if not data:
        raise IopaintError(400, f"{field}: empty image", "ImageError")
    return data


def _typed(name: str, kind: Kind, value: Any) -> Any:
    if kind == "str?":
        if value is None or isinstance(value, str):
            return value
        raise FieldError(name, "Input should be a valid string", value, "string_type")
    if kind == "str":
        if isinstance(value, str):
            return value
        raise FieldError(name, "Input should be a valid string", value, "string_type")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if value in (0, 1) or value in ("true", "false", "True", "False", "0", "1"):
            return value in (1, "true", "True", "1")
        raise FieldError(name, "Input should be a valid boolean", value, "bool_type")
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = float(value) if kind == "float" else int(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        kind_name = "an integer" if kind == "int" else "a valid number"
        raise FieldError(name, f"Input should be {kind_name}", value, f"{kind}_type")
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise FieldError(name, "Input should be a valid integer, got a number with a fractional part", value)
        return int(value)
    return float(value)


def parse_fields(body: Any) -> dict[str, Any]:
    """Every InpaintRequest field, typed, with IOPaint's defaults; plus ``_given``: the names sent."""
    if not isinstance(body, dict):
        raise FieldError("body", "Input should be a valid dictionary or object", None, "model_attributes_type")
    out: dict[str, Any] = {}
    for name, (kind, default) in FIELDS.items():
        out[name] = _typed(name, kind, body[name]) if name in body and body[name] is not None else default
    if not 0.0 < out["sd_scale"] <= 1.0:
        raise FieldError("sd_scale", "Input should be greater than 0 and at most 1", out["sd_scale"])
    if out["sd_strength"] > 1.0:
        raise FieldError("sd_strength", "Input should be less than or equal to 1", out["sd_strength"])
    if out["cv2_flag"] not in CV2_FLAGS:
        raise FieldError("cv2_flag", "Input should be 'INPAINT_NS' or 'INPAINT_TELEA'", out["cv2_flag"], "enum")
    if out["sd_seed"] == -1:  # IOPaint's validator: a random seed, reported in X-Seed
        out["sd_seed"] = random.randint(1, IOPAINT_SEED_MAX)
    out["_given"] = [k for k in body if k in FIELDS and k not in ("image", "mask")]
    return out


# ---------------------------------------------------------------------- models
@dataclass(frozen=True, slots=True)
class IopaintModel:
    """An IOPaint model name and the farm engine (and model file) that runs it."""

    name: str
    engine: str
    model: str | None
    model_type: str  # IOPaint's ModelType

    @property
    def sd(self) -> bool:
        return self.engine == SD_ENGINE

    def info(self) -> dict[str, Any]:
        """IOPaint's ModelInfo with its computed fields, as the farm can honour them."""
        return {
            "name": self.name,
            "path": self.model or self.engine,
            "model_type": self.model_type,
            "is_single_file_diffusers": bool(self.model and self.model.endswith((".safetensors", ".ckpt"))),
            "need_prompt": self.sd,
            "controlnets": [],
            "brushnets": [],
            "support_strength": self.sd,
            "support_outpainting": False,
            "support_lcm_lora": False,
            "support_controlnet": False,
            "support_brushnet": False,
            "support_powerpaint_v2": False,
        }


def farm_models(engines: list[EngineDescriptor]) -> list[IopaintModel]:
    """The farm's inpaint engines under IOPaint's names: ``cv2``, ``lama``, each SD model by its name."""
    out = []
    for d in engines:
        if "inpaint" not in d.operations or not d.available:
            continue
        if d.id == SD_ENGINE:
            for m in d.models:
                kind = "diffusers_sdxl_inpaint" if "xl" in m.lower() else "diffusers_sd_inpaint"
                out.append(IopaintModel(m, d.id, m, kind))
        else:
            out.append(IopaintModel(d.id, d.id, None, "inpaint"))
    return out


def spec_for(req: Mapping[str, Any], model: IopaintModel, output: OutputFormat) -> tuple[EditSpec, list[str]]:
    """The farm edit for an InpaintRequest on ``model``, and the fields sent that have no effect on it."""
    params: dict[str, ParamValue] = {}
    used: set[str] = set()
    hd = HdStrategy(strategy="original")
    if model.sd:  # IOPaint runs diffusion models on the whole image (its hd_strategy is for erase models)
        for name, (refused, what) in SD_REFUSED.items():
            if refused(req[name]):
                raise IopaintError(422, f"{name}: the farm's Stable Diffusion engine cannot do {what}", "Unsupported")
        sampler = SAMPLERS.get(req["sd_sampler"])
        if sampler is None:
            raise FieldError(
                "sd_sampler", f"the farm has no sampler {req['sd_sampler']!r} (it has: {', '.join(SAMPLERS)})"
            )
        params.update(
            prompt=req["prompt"],
            negative_prompt=req["negative_prompt"],
            steps=req["sd_steps"],
            guidance=req["sd_guidance_scale"],
            strength=req["sd_strength"],
            seed=req["sd_seed"],
            scheduler=sampler,
        )
        used.update(SD_FIELDS)
    else:
        strategy = HD_STRATEGIES.get(req["hd_strategy"])
        if strategy is None:
            raise FieldError("hd_strategy", "Input should be 'Original', 'Resize' or 'Crop'", req["hd_strategy"])
        trigger = req["hd_strategy_crop_trigger_size"] if strategy == "crop" else req["hd_strategy_resize_limit"]
        try:
            hd = HdStrategy.from_dict(
                {
                    "strategy": strategy,
                    "trigger": trigger,
                    "margin": req["hd_strategy_crop_margin"],
                    "resize_limit": req["hd_strategy_resize_limit"],
                }
            )
        except SpecError as exc:
            raise FieldError("hd_strategy", str(exc)) from None
        used.update(HD_FIELDS)
        if model.engine == "cv2":
            radius = req["cv2_radius"]
            if not 1 <= radius <= 64:
                raise FieldError("cv2_radius", "the farm's OpenCV engine takes a radius from 1 to 64", radius)
            params.update(method=CV2_FLAGS[req["cv2_flag"]], radius=radius)
            used.update(CV2_FIELDS)
    used.add("sd_seed")  # always answered in X-Seed, as IOPaint does
    spec = EditSpec(
        op="inpaint",
        engine=model.engine,
        model=model.model,
        params=params,
        hd=hd,
        output=OutputSpec(format=output, quality=RESULT_QUALITY),
    )
    ignored = [name for name in req["_given"] if name not in used]
    return spec, ignored


# ---------------------------------------------------------------------- images
FORMATS: dict[str, OutputFormat] = {"PNG": "png", "JPEG": "jpeg", "WEBP": "webp"}


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    format: str  # Pillow's name: PNG, JPEG...
    width: int
    height: int


def inspect_image(data: bytes, field: str, max_pixels: int) -> Upload:
    """Decode as the farm will (validated, EXIF-oriented) to learn the size; ImageError says what is wrong."""
    try:
        pic = decode_image(data, max_pixels=max_pixels)
        fmt = Image.open(io.BytesIO(data)).format or "PNG"
    except ImageError as exc:
        raise IopaintError(400, f"{field}: {exc}", "ImageError") from None
    return Upload(data, fmt, pic.width, pic.height)


def load_grey(data: bytes, field: str, max_pixels: int) -> np.ndarray:
    """IOPaint's decode_base64_to_image(gray=True): EXIF-transposed, converted to L."""
    try:
        image: Image.Image = Image.open(io.BytesIO(data))
        if image.width * image.height > max_pixels:
            raise IopaintError(400, f"{field}: {image.width}x{image.height} is over the farm's limit", "ImageError")
        image = ImageOps.exif_transpose(image) or image
        return np.array(image.convert("L"))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise IopaintError(400, f"{field}: not an image ({exc})", "ImageError") from None


def adjust_mask(mask: np.ndarray, kernel_size: int, operate: str) -> bytes:
    """IOPaint's helper.adjust_mask: binarise, then expand / shrink (ellipse 2k+1) or reverse; answered
    as IOPaint's front-end mask (RGBA, ffcb00 at 73 % where the mask is)."""
    mask = np.where(mask >= 127, 255, 0).astype(np.uint8)
    if operate == "reverse":
        mask = 255 - mask
    else:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * kernel_size + 1, 2 * kernel_size + 1))
        mask = cv2.dilate(mask, kernel, iterations=1) if operate == "expand" else cv2.erode(mask, kernel, iterations=1)
    res = np.zeros((mask.shape[0], mask.shape[1], 4), dtype=np.uint8)
    res[mask > 128] = [255, 203, 0, int(255 * 0.73)]
    rgba = cv2.cvtColor(res, cv2.COLOR_BGRA2RGBA)
    ok, buf = cv2.imencode(".png", rgba, [int(cv2.IMWRITE_PNG_COMPRESSION), 0])
    assert ok
    return buf.tobytes()


def scaled_png(data: bytes, width: int, height: int, scale: float) -> bytes:
    """Real-ESRGAN's ``outscale``: the model's result resized to ``scale`` x the input (Lanczos)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if image is None or (image.shape[1], image.shape[0]) == size:
        return data
    ok, buf = cv2.imencode(".png", cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4))
    assert ok
    return buf.tobytes()


# ---------------------------------------------------------------------- the routes
class IopaintApi:
    """IOPaint's routes over :class:`Edits`; ``model`` is the current model (IOPaint's is server-wide)."""

    def __init__(self, edits: Edits, *, model: str | None = None, max_pixels: int = 100_000_000) -> None:
        self.edits = edits
        self.max_pixels = max_pixels
        self._model = model
        self.on_finish: list[Callable[[], None]] = []

    @property
    def farm(self) -> Any:
        return self.edits.farm

    def models(self) -> list[IopaintModel]:
        return farm_models(self.farm.engines())

    def current(self) -> IopaintModel:
        models = {m.name: m for m in self.models()}
        for name in (self._model, "lama", "cv2"):
            if name and name in models:
                return models[name]
        if self._model:
            return IopaintModel(self._model, self._model, None, "inpaint")  # gone from the farm: said at inpaint
        raise IopaintError(503, "the farm has no inpainting engine right now", "NoModel")

    def routes(self) -> list[web.RouteDef]:
        r = [
            web.get(f"{API}/server-config", self.server_config),
            web.get(f"{API}/model", self.get_model),
            web.post(f"{API}/model", self.switch_model),
            web.post(f"{API}/inpaint", self.inpaint),
            web.get(f"{API}/samplers", self.samplers),
            web.post(f"{API}/samplers", self.samplers),  # IOPaint's web UI posts to its GET route
            web.post(f"{API}/adjust_mask", self.adjust_mask),
            web.post(f"{API}/run_plugin_gen_image", self.plugin_gen_image),
            web.post(f"{API}/run_plugin_gen_mask", self.plugin_gen_mask),
            web.post(f"{API}/gen-info", self.gen_info),
        ]
        r += [web.route("*", f"{API}{path}", self.not_offered) for path in NOT_OFFERED]
        return r

    def plugins(self) -> list[dict[str, Any]]:
        have = any(d.id == "upscale" and d.available for d in self.farm.engines())
        return [{"name": REALESRGAN, "support_gen_image": True, "support_gen_mask": False}] if have else []

    async def server_config(self, request: web.Request) -> web.Response:
        return _json(
            {
                "plugins": self.plugins(),
                "modelInfos": [m.info() for m in self.models()],
                "removeBGModel": "briaai/RMBG-1.4",
                "removeBGModels": REMOVE_BG_MODELS,
                "realesrganModel": REALESRGAN_MODELS[0],
                "realesrganModels": REALESRGAN_MODELS,
                "interactiveSegModel": INTERACTIVE_SEG_MODELS[0],
                "interactiveSegModels": INTERACTIVE_SEG_MODELS,
                "enableFileManager": False,
                "enableAutoSaving": False,
                "enableControlnet": False,
                "controlnetMethod": None,
                "disableModelSwitch": False,
                "isDesktop": False,
                "samplers": list(SAMPLERS),
            }
        )

    async def get_model(self, request: web.Request) -> web.Response:
        return _json(self.current().info())

    async def switch_model(self, request: web.Request) -> web.Response:
        body = await _body(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise FieldError("name", "Field required", None, "missing")
        models = {m.name: m for m in self.models()}
        if name not in models and name.rsplit("/", 1)[-1] in models:  # IOPaint's Hugging Face id of a model
            name = name.rsplit("/", 1)[-1]  # the farm has as a folder: runwayml/stable-diffusion-inpainting
        if name not in models:
            known = ", ".join(models) or "none"
            raise IopaintError(422, f"Unsupported model: {name} (the farm has: {known})", "UnsupportedModel")
        self._model = name
        return _json(models[name].info())

    async def samplers(self, request: web.Request) -> web.Response:
        return _json(list(SAMPLERS))

    async def inpaint(self, request: web.Request) -> web.Response:
        req = parse_fields(await _body(request))
        for name in ("image", "mask"):
            if req[name] is None:
                raise FieldError(name, "Field required (a base64 or data-URL image)", None, "missing")
        image_b = decode_base64(req["image"], "image")
        mask_b = decode_base64(req["mask"], "mask")
        image = await asyncio.to_thread(inspect_image, image_b, "image", self.max_pixels)
        mask = await asyncio.to_thread(load_grey, mask_b, "mask", self.max_pixels)
        if (image.height, image.width) != mask.shape[:2]:
            raise IopaintError(
                400, f"Image size({(image.height, image.width)}) and mask size({mask.shape[:2]}) not match."
            )
        model = self.current()
        if model.name not in {m.name for m in self.models()}:
            raise IopaintError(503, f"model {model.name} is on no worker of the farm now", "NoModel")
        spec, ignored = spec_for(req, model, FORMATS.get(image.format, "png"))
        ok, mask_png = cv2.imencode(".png", np.where(mask > 127, 255, 0).astype(np.uint8))
        assert ok
        try:
            data, job = await self.edits.run(image_b, image.format, mask_png.tobytes(), spec)
        except EditFailed as exc:
            raise IopaintError(500, f"the farm could not make this edit: {exc}", "EditFailed") from None
        finally:
            for listener in list(self.on_finish):
                listener()
        headers = {"X-Seed": str(req["sd_seed"]), "X-Farm-Worker": self.edits.worker_name(job), **CORS}
        if ignored:
            headers["X-Farm-Ignored"] = ", ".join(ignored)
        return web.Response(body=data, content_type=f"image/{spec.output.format}", headers=headers)

    async def adjust_mask(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict) or "mask" not in body:
            raise FieldError("mask", "Field required", None, "missing")
        operate = body.get("operate")
        if operate not in ("expand", "shrink", "reverse"):
            raise FieldError("operate", "Input should be 'expand', 'shrink' or 'reverse'", operate, "literal_error")
        kernel = _typed("kernel_size", "int", body.get("kernel_size", 5))
        if not 0 <= kernel <= MAX_KERNEL:
            raise FieldError("kernel_size", f"the farm takes a kernel size from 0 to {MAX_KERNEL}", kernel)
        mask = await asyncio.to_thread(load_grey, decode_base64(body["mask"], "mask"), "mask", self.max_pixels)
        data = await asyncio.to_thread(adjust_mask, mask, kernel, operate)
        return web.Response(body=data, content_type="image/png", headers=CORS)

    async def plugin_gen_image(self, request: web.Request) -> web.Response:
        body = await _body(request)
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str):
            raise FieldError("name", "Field required", None, "missing")
        if name not in {p["name"] for p in self.plugins()}:
            raise IopaintError(422, "Plugin not found" + self._offered())
        if "image" not in body:
            raise FieldError("image", "Field required", None, "missing")
        scale = _typed("scale", "float", body.get("scale", 2.0))
        if not 0 < scale <= 8:
            raise FieldError("scale", "the farm upscales by more than 0 and at most 8", scale)
        image_b = decode_base64(body["image"], "image")
        image = await asyncio.to_thread(inspect_image, image_b, "image", self.max_pixels)
        spec = EditSpec(op="upscale", engine="upscale", output=OutputSpec(format="png"))
        try:
            data, job = await self.edits.run(image_b, image.format, None, spec)
        except EditFailed as exc:
            raise IopaintError(500, f"the farm could not upscale this image: {exc}", "EditFailed") from None
        data = await asyncio.to_thread(scaled_png, data, image.width, image.height, scale)
        headers = {"X-Farm-Worker": self.edits.worker_name(job), **CORS}
        return web.Response(body=data, content_type="image/png", headers=headers)

    async def plugin_gen_mask(self, request: web.Request) -> web.Response:
        body = await _body(request)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise FieldError("name", "Field required", None, "missing")
        if body["name"] == REALESRGAN:
            raise IopaintError(422, "Plugin does not support output image")
        raise IopaintError(422, "Plugin not found" + self._offered() + "; the farm has no mask plugin")

    async def gen_info(self, request: web.Request) -> web.Response:
        """IOPaint's api_geninfo: the prompt and negative prompt an SD tool wrote in a PNG's ``parameters``."""
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge as exc:
            raise IopaintError(413, f"request body over the serve's limit ({exc.text})", "TooLarge") from None
        field = form.get("file")
        if not isinstance(field, web.FileField):
            raise FieldError("file", "Field required (an uploaded image)", None, "missing")
        data = field.file.read()

        def read() -> str:
            try:
                return str(Image.open(io.BytesIO(data)).info.get("parameters", ""))
            except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
                raise IopaintError(400, f"file: not an image ({exc})", "ImageError") from None

        parts = (await asyncio.to_thread(read)).split("Negative prompt: ")
        negative = parts[1].split("\n")[0].strip() if len(parts) > 1 else ""
        return _json({"prompt": parts[0].strip(), "negative_prompt": negative})

    async def not_offered(self, request: web.Request) -> web.Response:
        raise IopaintError(501, f"{request.path} is part of IOPaint's API that LAN Farm does not offer", "NotOffered")

    def _offered(self) -> str:
        names = [p["name"] for p in self.plugins()]
        return f" (the farm offers: {', '.join(names) or 'no plugin'})"


async def _body(request: web.Request) -> Any:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise IopaintError(413, f"request body over the serve's limit ({exc.text})", "TooLarge") from None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise FieldError("body", "JSON decode error", None, "json_invalid") from None


def _json(data: Any) -> web.Response:
    return web.json_response(data, headers=CORS)


@web.middleware
async def iopaint_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """IOPaint's error shapes for its routes; a farm error no route expected is a 500 in the same shape."""
    if not request.path.startswith(API):
        return await handler(request)
    if request.method == "OPTIONS":  # CORS preflight, as IOPaint's CORSMiddleware answers it
        return web.Response(
            headers={
                **CORS,
                "Access-Control-Allow-Methods": "*",
                "Access-Control-Allow-Headers": request.headers.get("Access-Control-Request-Headers", "*"),
            }
        )
    try:
        return await handler(request)
    except (IopaintError, FieldError) as exc:
        return exc.response()
    except FarmError as exc:
        return IopaintError(500, str(exc), type(exc).__name__).response()
    except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:  # FastAPI's {"detail": "Not Found"}
        return web.json_response({"detail": exc.reason}, status=exc.status, headers=CORS)
