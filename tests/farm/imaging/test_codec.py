from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image, ImageCms

from farm import ImageError
from farm.core.spec import OutputSpec
from farm.imaging.codec import decode_image, decode_mask, encode_image
from farm.local.files import write_atomic
from tests.conftest import png_bytes, png_header_only, scene


def test_rgba_keeps_alpha_through_png() -> None:
    bgra = np.dstack([scene(), np.full((120, 160), 77, np.uint8)])
    pic = decode_image(png_bytes(bgra))
    assert pic.alpha is not None and int(pic.alpha[0, 0]) == 77
    again = cv2.imdecode(np.frombuffer(encode_image(pic, OutputSpec()), np.uint8), cv2.IMREAD_UNCHANGED)
    assert again.shape == (120, 160, 4)
    assert np.array_equal(again, bgra)


def test_greyscale_stays_greyscale() -> None:
    grey = scene()[:, :, 0]
    pic = decode_image(png_bytes(grey))
    assert pic.grey and pic.color.shape == (120, 160, 3)
    out = cv2.imdecode(np.frombuffer(encode_image(pic, OutputSpec()), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.ndim == 2 and np.array_equal(out, grey)


def test_palette_with_transparency_becomes_rgba() -> None:
    im = Image.new("P", (20, 10))
    im.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    im.paste(1, (0, 0, 10, 10))
    buf = io.BytesIO()
    im.save(buf, format="PNG", transparency=0)
    pic = decode_image(buf.getvalue())
    assert pic.alpha is not None
    assert int(pic.alpha[0, 15]) == 0 and int(pic.alpha[0, 0]) == 255
    assert tuple(int(v) for v in pic.color[0, 0]) == (0, 255, 0)  # BGR of green


def test_16_bit_survives_losslessly() -> None:
    arr = (np.arange(120 * 160 * 3, dtype=np.uint32).reshape(120, 160, 3) * 37 % 65536).astype(np.uint16)
    pic = decode_image(png_bytes(arr))
    assert pic.color.dtype == np.uint16
    out = cv2.imdecode(np.frombuffer(encode_image(pic, OutputSpec()), np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and np.array_equal(out, arr)


def test_exif_orientation_is_applied() -> None:
    rgb = np.zeros((10, 20, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)  # left half red
    im = Image.fromarray(rgb)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes(), quality=100)
    pic = decode_image(buf.getvalue())
    assert (pic.width, pic.height) == (10, 20)
    top, bottom = pic.color[2, 5], pic.color[17, 5]
    assert top[2] > 200 and bottom[2] < 60  # red (BGR index 2) ended on top


def test_icc_profile_is_kept_in_png_and_jpeg() -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buf = io.BytesIO()
    Image.fromarray(scene()[:, :, ::-1].copy()).save(buf, format="PNG", icc_profile=icc)
    pic = decode_image(buf.getvalue())
    assert pic.icc == icc
    for fmt in ("png", "jpeg", "webp"):
        out = Image.open(io.BytesIO(encode_image(pic, OutputSpec(fmt))))  # type: ignore[arg-type]
        assert out.info.get("icc_profile") == icc, fmt


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not an image"),
        (png_bytes(scene())[:200], "corrupt"),
        (png_header_only(20000, 10000), r"20000x10000 \(200.0 MP\), over the 100 MP limit"),
    ],
)
def test_bad_images_give_one_clear_line(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message) as info:
        decode_image(data)
    assert "\n" not in str(info.value)


def test_unsupported_format_is_named() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="ICO")
    with pytest.raises(ImageError, match="unsupported image format ICO"):
        decode_image(buf.getvalue())


def test_mask_of_wrong_size_is_refused_or_resized_on_request() -> None:
    small = np.zeros((60, 80), np.uint8)
    small[10:20, 10:20] = 255
    with pytest.raises(ImageError, match="mask is 80x60 but the image is 160x120"):
        decode_mask(png_bytes(small), 160, 120)
    mask = decode_mask(png_bytes(small), 160, 120, resize=True)
    assert mask.shape == (120, 160) and mask[30, 30] == 255 and mask[0, 0] == 0


def test_mask_rules_threshold_and_transparency() -> None:
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[:, :2] = (255, 255, 255, 255)  # white, opaque: edit
    bgra[:, 2] = (255, 255, 255, 0)  # white but transparent: keep
    bgra[:, 3] = (100, 100, 100, 255)  # dark grey: keep
    mask = decode_mask(png_bytes(bgra), 4, 4)
    assert mask[:, :2].min() == 255 and mask[:, 2:].max() == 0


def test_a_mask_shared_by_a_batch_is_decoded_once_and_each_caller_gets_its_own_copy(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One mask for many images (``--mask FILE``): decoded once (a 24 MP mask takes 0.15 s), and an
    edit that changes its mask array changes no other edit's."""
    from farm.imaging import codec

    decoded: list[int] = []
    real = codec._decode_mask
    monkeypatch.setattr(codec, "_decode_mask", lambda data, *a, **k: decoded.append(len(data)) or real(data, *a, **k))
    codec._decoded_mask.cache_clear()
    grey = np.zeros((30, 40), np.uint8)
    grey[5:10, 5:10] = 255
    data = png_bytes(grey)
    first = decode_mask(data, 40, 30)
    first[:] = 0  # an edit drawing on its mask
    second = decode_mask(bytes(data), 40, 30)  # the same file read again: equal bytes, another object
    assert decoded == [len(data)]
    assert second[5:10, 5:10].min() == 255 and second.flags.writeable
    with pytest.raises(ImageError, match="mask is 40x30"):
        decode_mask(data, 80, 60)  # another size: decoded again, and refused


def test_write_atomic_never_overwrites_without_permission(tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "out.png"
    write_atomic(target, b"one")
    with pytest.raises(FileExistsError):
        write_atomic(target, b"two")
    assert target.read_bytes() == b"one"
    write_atomic(target, b"three", overwrite=True)
    assert target.read_bytes() == b"three"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
