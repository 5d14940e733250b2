"""IOPaint's routes, called with the bodies its clients send, against a real farm over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
import pytest
import socketio
from PIL import Image, PngImagePlugin

from farm.api.iopaint import SAMPLERS, FieldError, IopaintError, IopaintModel, parse_fields, spec_for
from farm.engines.installed import default_registry
from tests.farm.api import clients
from tests.farm.api.helpers import Served, box, decode, encode, scene, serving

API = "/api/v1"


async def post(s: Served, path: str, body: Any) -> tuple[int, dict[str, str], bytes]:
    """POST ``body`` as JSON (streamed: bodies of megabytes are what these clients send)."""
    data = io.BytesIO(json.dumps(body).encode())
    async with s.http.post(s.url + API + path, data=data, headers={"Content-Type": "application/json"}) as r:
        return r.status, dict(r.headers), await r.read()


async def test_krita_plugin_inpaints_an_rgba_layer_and_keeps_every_unmasked_pixel(tmp_path: Path) -> None:
    layer = cv2.cvtColor(scene(), cv2.COLOR_BGR2BGRA)
    layer[:, :, 3] = np.tile(np.linspace(40, 255, 1024, dtype=np.uint8), (768, 1))  # real alpha
    mask = box()
    async with serving(tmp_path) as s:
        status, headers, data = await post(s, "/inpaint", clients.krita_inpaint(encode(layer), encode(mask)))
    assert status == 200, data
    assert headers["Content-Type"] == "image/png" and headers["X-Seed"] == "42"
    out = decode(data)
    assert out.shape == (768, 1024, 4)
    keep = mask == 0
    assert np.array_equal(out[keep], layer[keep])  # unmasked pixels, alpha too, byte for byte
    assert np.array_equal(out[:, :, 3], layer[:, :, 3])
    assert not np.array_equal(out[~keep][:, :3], layer[~keep][:, :3])  # the masked area was filled
    # the fill is OpenCV's Navier-Stokes inpaint of the masked box (radius 4, IOPaint's default)
    assert np.abs(out[~keep][:, :3].astype(int) - layer[~keep][:, :3]).mean() > 5


async def test_mcp_inpaint_of_a_jpeg_answers_a_jpeg_and_the_seed(tmp_path: Path) -> None:
    image = encode(scene(640, 480), ".jpg")
    mask = encode(box(640, 480, (100, 100, 200, 200)))
    body = clients.mcp_inpaint(image, Path("photo.jpg"), mask, Path("photo_mask.png"))
    assert body["image"].startswith("data:image/jpeg;base64,")
    async with serving(tmp_path) as s:
        status, headers, data = await post(s, "/inpaint", body)
    assert status == 200, data
    assert headers["Content-Type"] == "image/jpeg" and data[:3] == b"\xff\xd8\xff"
    assert headers["X-Seed"] == "42" and decode(data).shape == (480, 640, 3)
    # prompt, negative_prompt, sd_steps and sd_strength have no effect on cv2: said, not hidden
    assert set(headers["X-Farm-Ignored"].split(", ")) == {"prompt", "negative_prompt", "sd_steps", "sd_strength"}


async def test_web_ui_body_runs_with_its_typos_and_a_random_seed(tmp_path: Path) -> None:
    img, mask = scene(320, 240), box(320, 240, (50, 50, 120, 120))
    async with serving(tmp_path) as s:
        status, headers, data = await post(s, "/inpaint", clients.web_ui_inpaint(encode(img), encode(mask)))
    assert status == 200, data
    seed = int(headers["X-Seed"])
    assert 1 <= seed <= 99_999_999  # sd_seed -1: IOPaint's validator picks one and answers it
    out = decode(data)
    assert np.array_equal(out[mask == 0], img[mask == 0])
    ignored = headers["X-Farm-Ignored"].split(", ")
    assert "sd_mask_blur" in ignored and "ldm_steps" in ignored and "cv2_radius" not in ignored


async def test_cv2_flag_and_radius_are_honoured(tmp_path: Path) -> None:
    img, mask = scene(200, 160), box(200, 160, (60, 40, 140, 120))
    body = clients.krita_inpaint(encode(img), encode(mask))
    async with serving(tmp_path) as s:
        results = {}
        for flag, radius in (("INPAINT_NS", 4), ("INPAINT_TELEA", 4), ("INPAINT_TELEA", 12)):
            status, _, data = await post(s, "/inpaint", {**body, "cv2_flag": flag, "cv2_radius": radius})
            assert status == 200
            results[flag, radius] = decode(data)
    flags = {"INPAINT_NS": cv2.INPAINT_NS, "INPAINT_TELEA": cv2.INPAINT_TELEA}
    for (flag, radius), out in results.items():  # each is exactly OpenCV's own result with those settings
        expected = cv2.inpaint(img, mask, radius, flags[flag])
        assert np.array_equal(out, expected), (flag, radius)


async def test_image_and_mask_of_different_sizes_get_iopaints_400(tmp_path: Path) -> None:
    body = clients.krita_inpaint(encode(scene(1024, 768)), encode(box(512, 384)))
    async with serving(tmp_path) as s:
        status, _, data = await post(s, "/inpaint", body)
        assert s.farm.jobs == {}  # nothing reached the farm
    assert status == 400
    detail = "Image size((768, 1024)) and mask size((384, 512)) not match."
    assert json.loads(data) == {"error": "HTTPException", "detail": detail, "body": "", "errors": f"400: {detail}"}


async def test_bad_input_gets_a_clear_error_and_the_serve_goes_on(tmp_path: Path) -> None:
    good = clients.krita_inpaint(encode(scene(64, 48)), encode(box(64, 48, (10, 10, 20, 20))))
    async with serving(tmp_path, max_body=1 << 20) as s:
        status, _, data = await post(s, "/inpaint", {**good, "image": "data:image/png;base64,!!not base64!!"})
        assert status == 400 and "image: not valid base64" in json.loads(data)["detail"]
        not_png = base64.b64encode(b"hello, not an image").decode()
        status, _, data = await post(s, "/inpaint", {**good, "mask": not_png})
        assert status == 400 and json.loads(data)["detail"].startswith("mask: not an image")
        status, _, data = await post(s, "/inpaint", {**good, "cv2_radius": "wide"})
        assert status == 422 and json.loads(data)["detail"][0]["loc"] == ["body", "cv2_radius"]
        status, _, data = await post(s, "/inpaint", {"mask": good["mask"]})
        assert status == 422 and json.loads(data)["detail"][0]["loc"] == ["body", "image"]
        async with s.http.post(s.url + API + "/inpaint", data=b"{not json") as r:
            assert r.status == 422 and (await r.json())["detail"][0]["type"] == "json_invalid"
        huge = {**good, "image": "A" * (2 << 20)}
        status, _, data = await post(s, "/inpaint", huge)
        assert status == 413 and json.loads(data)["error"] == "TooLarge"
        assert s.farm.jobs == {}
        wrapped = base64.encodebytes(base64.b64decode(good["image"].split(",", 1)[1])).decode()  # 76-char lines
        status, _, data = await post(s, "/inpaint", {**good, "image": wrapped})
        assert status == 200
        status, _, data = await post(s, "/inpaint", good)  # and the next good request works
        assert status == 200 and decode(data).shape == (48, 64, 3)


async def test_server_config_model_and_samplers(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        async with s.http.get(s.url + API + "/server-config") as r:
            config = await r.json()
        names = [m["name"] for m in config["modelInfos"]]
        assert "cv2" in names and "sim" in names  # this registry: OpenCV and the simulated engine
        for key in ("plugins", "removeBGModel", "realesrganModels", "interactiveSegModel", "enableFileManager"):
            assert key in config
        assert config["samplers"] == list(SAMPLERS) and config["plugins"] == []  # no upscaler model here
        async with s.http.get(s.url + API + "/model") as r:
            assert (await r.json())["name"] == "cv2"  # no lama here: cv2 is the default
        status, _, data = await post(s, "/model", clients.mcp_switch_model("sim"))
        assert status == 200 and json.loads(data)["name"] == "sim"
        async with s.http.get(s.url + API + "/model") as r:
            assert (await r.json())["name"] == "sim"
        status, _, data = await post(s, "/model", clients.mcp_switch_model("someone/cv2"))  # a Hugging Face id
        assert status == 200 and json.loads(data)["name"] == "cv2"
        status, _, data = await post(s, "/model", clients.mcp_switch_model("ldm"))
        assert status == 422 and "Unsupported model: ldm" in json.loads(data)["detail"]
        for method in (s.http.get, s.http.post):  # IOPaint's route is GET; its web UI posts
            async with method(s.url + API + "/samplers") as r:
                assert r.status == 200 and await r.json() == list(SAMPLERS)


async def test_the_switched_model_runs_the_next_inpaint(tmp_path: Path) -> None:
    img, mask = scene(100, 80), box(100, 80, (20, 20, 60, 60))
    async with serving(tmp_path) as s:
        assert (await post(s, "/model", {"name": "sim"}))[0] == 200
        status, _, data = await post(s, "/inpaint", clients.krita_inpaint(encode(img), encode(mask)))
    assert status == 200
    expected = img.copy()
    expected[mask > 0] = 255 - expected[mask > 0]  # the simulated engine inverts the masked pixels
    assert np.array_equal(decode(data), expected)


@pytest.mark.parametrize(("operate", "kernel"), [("expand", 5), ("shrink", 5), ("reverse", 5), ("expand", 12)])
async def test_adjust_mask_matches_iopaints_helper(tmp_path: Path, operate: str, kernel: int) -> None:
    mask = box(200, 150, (50, 40, 150, 110))
    body = clients.mcp_adjust_mask(encode(mask), operate, kernel)
    async with serving(tmp_path) as s:
        status, headers, data = await post(s, "/adjust_mask", body)
    assert status == 200 and headers["Content-Type"] == "image/png"
    out = cv2.cvtColor(decode(data), cv2.COLOR_BGRA2RGBA)
    assert out.shape == (150, 200, 4)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * kernel + 1, 2 * kernel + 1))
    want = {"expand": cv2.dilate(mask, k), "shrink": cv2.erode(mask, k), "reverse": 255 - mask}[operate]
    on = want > 128
    assert np.array_equal(out[on], np.tile([255, 203, 0, 186], (int(on.sum()), 1)))  # IOPaint's ffcb00 at 73 %
    assert not out[~on].any()


async def test_web_ui_adjust_mask_and_its_refusals(tmp_path: Path) -> None:
    async with serving(tmp_path) as s:
        status, _, _ = await post(s, "/adjust_mask", clients.web_ui_adjust_mask(encode(box(64, 64)), "expand"))
        assert status == 200
        status, _, data = await post(s, "/adjust_mask", clients.mcp_adjust_mask(encode(box(64, 64)), "blur"))
        assert status == 422 and json.loads(data)["detail"][0]["loc"] == ["body", "operate"]
        status, _, data = await post(s, "/adjust_mask", clients.mcp_adjust_mask(encode(box(64, 64)), "expand", 10**6))
        assert status == 422 and json.loads(data)["detail"][0]["loc"] == ["body", "kernel_size"]


async def test_plugins_the_farm_lacks_get_iopaints_422(tmp_path: Path) -> None:
    image = encode(scene(64, 64))
    async with serving(tmp_path) as s:
        status, _, data = await post(s, "/run_plugin_gen_image", clients.mcp_plugin_image("RealESRGAN", image))
        assert status == 422 and json.loads(data)["detail"].startswith("Plugin not found")  # no upscaler model
        status, _, data = await post(s, "/run_plugin_gen_mask", clients.mcp_plugin_mask("InteractiveSeg", image))
        assert status == 422 and "no mask plugin" in json.loads(data)["detail"]
        async with s.http.post(s.url + API + "/save_image") as r:
            assert r.status == 501 and (await r.json())["error"] == "NotOffered"


async def test_gen_info_reads_the_prompt_an_sd_tool_wrote(tmp_path: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red boat on a lake\nNegative prompt: blurry, text\nSteps: 30, Sampler: Euler")
    buf = io.BytesIO()
    Image.new("RGB", (32, 32)).save(buf, format="PNG", pnginfo=info)
    async with serving(tmp_path) as s:
        form = aiohttp.FormData()  # web_app/src/lib/api.ts getGenInfo: FormData with "file"
        form.add_field("file", io.BytesIO(buf.getvalue()), filename="gen.png", content_type="image/png")
        async with s.http.post(s.url + API + "/gen-info", data=form) as r:
            assert r.status == 200
            assert await r.json() == {"prompt": "a red boat on a lake", "negative_prompt": "blurry, text"}
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(b"nope"), filename="x.png")
        async with s.http.post(s.url + API + "/gen-info", data=form) as r:
            assert r.status == 400


def test_stable_diffusion_fields_map_and_what_it_cannot_do_is_refused() -> None:
    sd = IopaintModel("sd-inpainting", "sd-inpaint", "sd-inpainting", "diffusers_sd_inpaint")
    body = clients.web_ui_inpaint(b"", b"", seed_fixed=True)
    body.update(prompt="a red boat", negative_prompt="blurry", sd_steps=20, sd_guidance_scale=5.5, sd_strength=0.8)
    spec, ignored = spec_for(parse_fields(body), sd, "png")
    assert (spec.engine, spec.model, spec.hd.strategy) == ("sd-inpaint", "sd-inpainting", "original")
    assert dict(spec.params) == {
        "prompt": "a red boat",
        "negative_prompt": "blurry",
        "steps": 20,
        "guidance": 5.5,
        "strength": 0.8,
        "seed": 42,
        "scheduler": "dpm++",  # "DPM++ 2M"
    }
    assert "sd_mask_blur" in ignored and "hd_strategy" in ignored and "prompt" not in ignored
    for field, value in (("enable_controlnet", True), ("use_extender", True), ("sd_keep_unmasked_area", False)):
        with pytest.raises(IopaintError, match=field):
            spec_for(parse_fields({**body, field: value}), sd, "png")
    with pytest.raises(FieldError, match="no sampler 'LMS'"):
        spec_for(parse_fields({**body, "sd_sampler": "LMS"}), sd, "png")
    cv = IopaintModel("cv2", "cv2", None, "inpaint")
    spec, _ = spec_for(parse_fields({**body, "hd_strategy": "Resize", "hd_strategy_resize_limit": 1024}), cv, "webp")
    assert (spec.hd.strategy, spec.hd.resize_limit, spec.output.format) == ("resize", 1024, "webp")


async def test_socketio_clients_get_progress_and_finish_events(tmp_path: Path) -> None:
    img, mask = scene(400, 300), box(400, 300, (50, 50, 150, 150))
    async with serving(tmp_path) as s:
        sio = socketio.AsyncClient()
        seen: list[tuple[str, Any]] = []
        finished = asyncio.Event()
        sio.on("diffusion_progress", lambda data: seen.append(("progress", data)))

        def finish(*_args: Any) -> None:
            seen.append(("finish", None))
            finished.set()

        sio.on("diffusion_finish", finish)
        await sio.connect(s.url, transports=["websocket"])
        try:
            assert (await post(s, "/model", {"name": "sim"}))[0] == 200
            status, _, _ = await post(s, "/inpaint", clients.krita_inpaint(encode(img), encode(mask)))
            assert status == 200
            await asyncio.wait_for(finished.wait(), 30)
        finally:
            await sio.disconnect()
    progress = [d for kind, d in seen if kind == "progress"]
    assert progress and all(isinstance(d["step"], int) for d in progress)  # the simulated engine's 10 steps
    assert seen[-1] == ("finish", None)


async def test_a_caller_that_hangs_up_cancels_its_edit(tmp_path: Path) -> None:
    img, mask = scene(1000, 1000), box(1000, 1000, (0, 0, 1000, 1000))
    slow = default_registry(simulate=True, sim_slowdown=100.0)  # 1 MP x 0.1 s/MP x 100: 10 s, in 1 s steps
    async with serving(tmp_path, registry=slow) as s:
        assert (await post(s, "/model", {"name": "sim"}))[0] == 200
        body = {**clients.krita_inpaint(encode(img), encode(mask)), "hd_strategy": "Original"}
        request = asyncio.ensure_future(post(s, "/inpaint", body))
        async with asyncio.timeout(30):
            while not s.farm.jobs or next(iter(s.farm.jobs.values())).state.value != "running":
                await asyncio.sleep(0.02)
        [job] = s.farm.jobs.values()
        request.cancel()  # the client closes its connection
        async with asyncio.timeout(30):
            while not job.state.finished:
                await asyncio.sleep(0.02)
        assert job.state.value == "cancelled"


def test_realesrgan_scale_resizes_the_upscalers_result_as_outscale_does() -> None:
    from farm.api.iopaint import scaled_png

    four_x = encode(scene(400, 300))  # what a 4x model makes of a 100x75 input
    assert decode(scaled_png(four_x, 100, 75, 2.0)).shape == (150, 200, 3)
    assert scaled_png(four_x, 100, 75, 4.0) == four_x  # already the asked size: untouched
