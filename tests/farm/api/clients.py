"""The request bodies real IOPaint clients send, built the way each client builds them.

Each builder copies one client's code path (field names, value types, the data-URL form, the
defaults it sends); the docstring says where it came from. Images are passed in as encoded bytes.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import Path
from typing import Any


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def krita_inpaint(image_png: bytes, mask_png: bytes) -> dict[str, Any]:
    """chayleaf/krita-iopaint, krita_iopaint/krita_iopaint.py (commit 327a0c6d): ``img2b64`` is
    ``"data:image/png;base64," + QBuffer PNG``; the layer is saved as ARGB32 (with alpha), the
    selection as Grayscale8; ``requests.post(URL, json={"image": img_b64, "mask": mask_b64})`` to
    ``http://127.0.0.1:8080/api/v1/inpaint``; the answer is read with ``QImage.fromData(data, "png")``."""
    return {"image": "data:image/png;base64," + _b64(image_png), "mask": "data:image/png;base64," + _b64(mask_png)}


def _mcp_data_url(raw: bytes, path: Path) -> str:
    """MrGood4U/iopaint-mcp, src/iopaint_mcp/client.py (commit a19ce1a0) ``_as_data_url``."""
    mime = mimetypes.guess_type(str(path))[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def mcp_inpaint(image: bytes, image_path: Path, mask: bytes, mask_path: Path) -> dict[str, Any]:
    """iopaint-mcp ``inpaint_image`` tool (src/iopaint_mcp/server.py, commit 114b96c8) with its
    defaults, through ``IOPaintClient.inpaint`` (client.py): data URLs typed by file suffix, then the
    options ``hd_strategy``, ``hd_strategy_crop_margin``, ``prompt``, ``negative_prompt``,
    ``sd_steps``, ``sd_strength``, ``sd_seed``; the result is saved with the image's suffix."""
    return {
        "image": _mcp_data_url(image, image_path),
        "mask": _mcp_data_url(mask, mask_path),
        "hd_strategy": "Crop",
        "hd_strategy_crop_margin": 128,
        "prompt": "",
        "negative_prompt": "",
        "sd_steps": 50,
        "sd_strength": 1.0,
        "sd_seed": 42,
    }


def mcp_erase_regions(image: bytes, image_path: Path, mask: bytes, margin: int = 8) -> dict[str, Any]:
    """iopaint-mcp ``erase_regions`` (server.py): its own mask PNG, ``hd_strategy="Crop"``,
    ``hd_strategy_crop_margin=max(32, margin * 4)``, ``sd_seed=42``."""
    return {
        "image": _mcp_data_url(image, image_path),
        "mask": _mcp_data_url(mask, Path("mask.png")),
        "hd_strategy": "Crop",
        "hd_strategy_crop_margin": max(32, margin * 4),
        "sd_seed": 42,
    }


def mcp_switch_model(name: str) -> dict[str, Any]:
    """iopaint-mcp ``IOPaintClient.switch_model``: ``POST /api/v1/model`` ``{"name": name}``."""
    return {"name": name}


def mcp_adjust_mask(mask: bytes, operation: str, kernel_size: int = 5) -> dict[str, Any]:
    """iopaint-mcp ``IOPaintClient.adjust_mask``: ``{"mask", "operate", "kernel_size"}`` (default 5)."""
    return {"mask": _mcp_data_url(mask, Path("mask.png")), "operate": operation, "kernel_size": kernel_size}


def mcp_plugin_image(plugin: str, image: bytes, scale: float = 2.0) -> dict[str, Any]:
    """iopaint-mcp ``IOPaintClient.plugin_image``: ``{"name", "image", "scale"}`` (default 2.0)."""
    return {"name": plugin, "image": _mcp_data_url(image, Path("image.png")), "scale": scale}


def mcp_plugin_mask(plugin: str, image: bytes, clicks: list[list[int]] | None = None) -> dict[str, Any]:
    """iopaint-mcp ``IOPaintClient.plugin_mask``: ``{"name", "image", "clicks"}``."""
    return {"name": plugin, "image": _mcp_data_url(image, Path("image.png")), "clicks": clicks or []}


def web_ui_inpaint(image_png: bytes, mask_png: bytes, *, seed_fixed: bool = False) -> dict[str, Any]:
    """IOPaint's own web UI: Sanster/IOPaint web_app/src/lib/api.ts ``inpaint()`` (commit 017a3d68),
    every field it sends (its typos ``hd_strategy_crop_triger_size`` and ``hd_trategy_resize_imit``
    included), with the settings it starts with (web_app/src/lib/states.ts: cv2Radius 5, sdMaskBlur
    12, sdSteps 50, sdSampler "DPM++ 2M", seed 42 not fixed, so ``sd_seed`` -1). ``convertToBase64``
    gives data URLs."""
    return {
        "image": "data:image/png;base64," + _b64(image_png),
        "mask": "data:image/png;base64," + _b64(mask_png),
        "ldm_steps": 30,
        "ldm_sampler": "ddim",
        "zits_wireframe": True,
        "cv2_flag": "INPAINT_NS",
        "cv2_radius": 5,
        "hd_strategy": "Crop",
        "hd_strategy_crop_triger_size": 640,
        "hd_strategy_crop_margin": 128,
        "hd_trategy_resize_imit": 2048,
        "prompt": "",
        "negative_prompt": "",
        "use_croper": False,
        "croper_x": 0,
        "croper_y": 0,
        "croper_height": 512,
        "croper_width": 512,
        "use_extender": False,
        "extender_x": 0,
        "extender_y": 0,
        "extender_height": 512,
        "extender_width": 512,
        "sd_mask_blur": 12,
        "sd_strength": 1.0,
        "sd_steps": 50,
        "sd_guidance_scale": 7.5,
        "sd_sampler": "DPM++ 2M",
        "sd_seed": 42 if seed_fixed else -1,
        "sd_match_histograms": False,
        "sd_lcm_lora": False,
        "paint_by_example_example_image": None,
        "p2p_image_guidance_scale": 1.5,
        "enable_controlnet": False,
        "controlnet_conditioning_scale": 0.4,
        "controlnet_method": "lllyasviel/control_v11p_sd15_canny",
        "enable_brushnet": False,
        "brushnet_method": "random_mask",
        "brushnet_conditioning_scale": 1.0,
        "powerpaint_task": "text-guided",
    }


def web_ui_adjust_mask(mask_png: bytes, operate: str, kernel_size: int = 12) -> dict[str, Any]:
    """web_app/src/lib/api.ts ``postAdjustMask``: ``{"mask", "operate", "kernel_size"}``; the UI's
    ``adjustMaskKernelSize`` starts at 12."""
    return {"mask": "data:image/png;base64," + _b64(mask_png), "operate": operate, "kernel_size": kernel_size}
