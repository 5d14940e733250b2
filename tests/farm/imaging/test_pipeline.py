from __future__ import annotations

import cv2
import numpy as np
import pytest

from farm import EditSpec, ImageError, default_registry, execute
from farm.core.spec import HdStrategy
from farm.engines import simulated
from farm.engines.base import CancelToken
from farm.engines.registry import EngineEntry, Registry
from farm.errors import JobCancelled
from farm.imaging.codec import encode_image
from farm.imaging.pipeline import plan_region, prepare, run
from tests.conftest import box_mask, png_bytes, scene


def _decode(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


@pytest.mark.parametrize("strategy", ["original", "crop", "resize"])
def test_inpaint_changes_only_the_masked_area(strategy: str) -> None:
    w, h = 1200, 900  # over the 800 px trigger, so crop and resize really apply
    img = scene(w, h, seed=3)
    img[400:500, 500:700] = (255, 255, 255)  # a white blob to remove
    mask = box_mask(w, h, (500, 400, 700, 500))
    spec = EditSpec(hd=HdStrategy(strategy, trigger=800, margin=64, resize_limit=600))  # type: ignore[arg-type]
    out = _decode(execute(png_bytes(img), png_bytes(mask), spec, default_registry()))
    keep = mask == 0
    assert np.array_equal(out[keep], img[keep]), "an unmasked pixel changed"
    assert out[mask > 0].mean() < 200, "the white blob is still there"


def test_crop_plans_a_box_around_the_mask_with_margin() -> None:
    mask = box_mask(2000, 1000, (900, 400, 1000, 500))
    box, scale = plan_region(2000, 1000, mask, HdStrategy("crop", trigger=800, margin=50, resize_limit=1280))
    assert (box.x0, box.y0, box.x1, box.y1) == (850, 350, 1050, 550) and scale == 1.0
    box, scale = plan_region(2000, 1000, mask, HdStrategy("resize", trigger=800, resize_limit=1000))
    assert (box.x1, box.y1) == (2000, 1000) and scale == 0.5
    small = plan_region(640, 480, mask[:480, :640], HdStrategy("crop"))
    assert small[0].x1 == 640 and small[1] == 1.0  # under the trigger: whole image


def test_16_bit_unmasked_pixels_are_untouched() -> None:
    img16 = scene(200, 150).astype(np.uint16) * 257 + 3
    mask = box_mask(200, 150, (50, 50, 90, 90))
    out = _decode(execute(png_bytes(img16), png_bytes(mask), EditSpec(), default_registry()))
    assert out.dtype == np.uint16
    assert np.array_equal(out[mask == 0], img16[mask == 0])


def test_alpha_is_kept() -> None:
    bgra = np.dstack([scene(), np.full((120, 160), 200, np.uint8)])
    out = _decode(execute(png_bytes(bgra), png_bytes(box_mask()), EditSpec(), default_registry()))
    assert out.shape == (120, 160, 4) and (out[:, :, 3] == 200).all()


def test_empty_mask_returns_the_image_and_missing_mask_is_an_error() -> None:
    img = scene()
    out = _decode(execute(png_bytes(img), png_bytes(np.zeros((120, 160), np.uint8)), EditSpec(), default_registry()))
    assert np.array_equal(out, img)
    with pytest.raises(ImageError, match="needs a mask"):
        execute(png_bytes(img), None, EditSpec(), default_registry())


def test_simulated_engine_is_only_there_when_asked() -> None:
    assert "sim" not in default_registry().ids()
    reg = default_registry(simulate=True)
    assert reg.descriptor("sim").simulated
    out = _decode(
        execute(png_bytes(scene()), png_bytes(box_mask()), EditSpec(engine="sim", params={"seconds_per_mp": 0.0}), reg)
    )
    assert out.shape == (120, 160, 3)


def _cases() -> list[tuple[str, bytes, bytes | None, EditSpec, bool]]:
    """(name, image, mask, spec, simulate): the edits the tests above run through ``execute``."""
    w, h = 1200, 900
    big = scene(w, h, seed=3)
    big[400:500, 500:700] = (255, 255, 255)
    big_mask = png_bytes(box_mask(w, h, (500, 400, 700, 500)))
    cases: list[tuple[str, bytes, bytes | None, EditSpec, bool]] = [
        (
            f"inpaint-{s}",
            png_bytes(big),
            big_mask,
            EditSpec(hd=HdStrategy(s, trigger=800, margin=64, resize_limit=600)),
            False,
        )  # type: ignore[arg-type]
        for s in ("original", "crop", "resize")
    ]
    cases += [
        (
            "16-bit",
            png_bytes(scene(200, 150).astype(np.uint16) * 257 + 3),
            png_bytes(box_mask(200, 150, (50, 50, 90, 90))),
            EditSpec(),
            False,
        ),
        (
            "alpha",
            png_bytes(np.dstack([scene(), np.full((120, 160), 200, np.uint8)])),
            png_bytes(box_mask()),
            EditSpec(),
            False,
        ),
        ("empty-mask", png_bytes(scene()), png_bytes(np.zeros((120, 160), np.uint8)), EditSpec(), False),
        (
            "sim",
            png_bytes(scene()),
            png_bytes(box_mask()),
            EditSpec(engine="sim", params={"seconds_per_mp": 0.0}),
            True,
        ),
    ]
    return cases


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_execute_is_prepare_run_encode(case: tuple[str, bytes, bytes | None, EditSpec, bool]) -> None:
    _name, image, mask, spec, simulate = case
    reg = default_registry(simulate=simulate)
    whole = execute(image, mask, spec, reg)
    prepared = prepare(image, mask, spec, reg)
    assert encode_image(run(prepared, reg), spec.output) == whole


def test_prepare_checks_inputs_without_loading_an_engine_and_run_honours_cancel() -> None:
    built: list[str | None] = []
    engine = simulated.SimulatedEngine()
    reg = Registry([EngineEntry(simulated.DESCRIPTOR, lambda model: (built.append(model), engine)[1])])
    spec = EditSpec(engine="sim", params={"seconds_per_mp": 0.0})
    with pytest.raises(ImageError, match="needs a mask"):
        prepare(png_bytes(scene()), None, spec, reg)
    with pytest.raises(ImageError):
        prepare(b"not an image", png_bytes(box_mask()), spec, reg)
    prepared = prepare(png_bytes(scene()), png_bytes(box_mask()), spec, reg)
    assert not built, "prepare must not touch the engine"
    assert prepared.mask is not None and prepared.picture.width == 160 and prepared.params["seconds_per_mp"] == 0.0
    token = CancelToken()
    token.cancel()
    with pytest.raises(JobCancelled):
        run(prepared, reg, cancel=token)
    assert not built, "a job cancelled before its engine starts never loads it"
    assert run(prepared, reg).width == 160 and built == [None]
