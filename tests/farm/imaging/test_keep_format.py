"""``--format keep`` (the default): an edit of a JPEG is a JPEG of about the same quality with its EXIF,
a WebP stays WebP (lossless stays lossless), anything else becomes PNG."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from farm.core.spec import OutputSpec, SpecError, kept_format
from farm.imaging.codec import decode_image, encode_image
from farm.imaging.jpeg_quality import estimate_quality
from farm.runtime.planning import OutputNamer
from tests.conftest import scene

KEEP = OutputSpec("keep")


def _jpeg(quality: int, *, orientation: int | None = None) -> bytes:
    im = Image.fromarray(cv2.cvtColor(scene(), cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x010F] = "LAN Farm test camera"  # Make
    if orientation is not None:
        exif[0x0112] = orientation
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("quality", [20, 55, 75, 85, 92, 100])
def test_the_quality_of_a_jpeg_is_read_back_from_its_tables(quality: int) -> None:
    tables = Image.open(io.BytesIO(_jpeg(quality))).quantization
    assert abs(estimate_quality(tables[0]) - quality) <= 1


def test_a_jpeg_stays_a_jpeg_of_its_quality_with_its_exif_upright() -> None:
    source = _jpeg(80, orientation=6)  # stored on its side: the pixels are turned on decode
    pic = decode_image(source)
    assert pic.width == 120 and pic.height == 160
    out = encode_image(pic, KEEP)
    im = Image.open(io.BytesIO(out))
    assert im.format == "JPEG" and im.size == (120, 160)
    assert abs(estimate_quality(im.quantization[0]) - 80) <= 1
    exif = im.getexif()
    assert exif[0x010F] == "LAN Farm test camera"
    assert exif.get(0x0112, 1) == 1  # turned once, never twice
    assert len(out) < 3 * len(source)  # about the input's size, not a PNG's


def test_webp_keeps_lossless_and_others_become_png() -> None:
    _ok, lossless = cv2.imencode(".webp", scene(), [cv2.IMWRITE_WEBP_QUALITY, 101])
    pic = decode_image(lossless.tobytes())
    again = encode_image(pic, KEEP)
    assert Image.open(io.BytesIO(again)).format == "WEBP"
    assert np.array_equal(cv2.imdecode(np.frombuffer(again, np.uint8), cv2.IMREAD_COLOR), scene())
    _ok, bmp = cv2.imencode(".bmp", scene())
    assert Image.open(io.BytesIO(encode_image(decode_image(bmp.tobytes()), KEEP))).format == "PNG"
    deep = (scene().astype(np.uint16) * 257)[:, :, :3]
    _ok, png16 = cv2.imencode(".png", deep)
    kept = cv2.imdecode(np.frombuffer(encode_image(decode_image(png16.tobytes()), KEEP), np.uint8), -1)
    assert kept.dtype == np.uint16 and np.array_equal(kept, deep)


def test_an_explicit_format_still_wins() -> None:
    out = encode_image(decode_image(_jpeg(80)), OutputSpec("png"))
    assert Image.open(io.BytesIO(out)).format == "PNG"
    assert kept_format("MPO") == "jpeg" and kept_format(None) == "png"
    with pytest.raises(SpecError, match="keep, png, jpeg or webp"):
        OutputSpec.from_dict({"format": "tiff"})


def test_outputs_are_named_by_the_format_in_the_header(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(_jpeg(90))
    (tmp_path / "scan.tif").write_bytes(cv2.imencode(".tiff", scene())[1].tobytes())
    (tmp_path / "lies.jpg").write_bytes(cv2.imencode(".png", scene())[1].tobytes())  # a PNG named .jpg
    namer = OutputNamer(tmp_path / "out", KEEP)
    assert namer.name_for(tmp_path / "photo.jpg").name == "photo.jpg"
    assert namer.name_for(tmp_path / "scan.tif").name == "scan.png"
    assert namer.name_for(tmp_path / "lies.jpg").name == "lies.png"  # what is written is a PNG
    assert OutputNamer(tmp_path / "o2", OutputSpec("webp")).name_for(tmp_path / "photo.jpg").name == "photo.webp"
